//! Helpers for structured inputs: a compact byte-string type, and a writer that produces
//! the bytes `arbitrary` 1.x decodes into a given value (used to make seed corpora).
//!
//! The format `arbitrary` reads, which [`ArbWriter`] mirrors: integers are little-endian
//! (missing bytes read as zero), `bool` is the low bit of a byte, an enum is a `u32`
//! mapped onto its variants as `(x * count) >> 32`, and a `Vec<T>` is a sequence of
//! `true, T` pairs ended by `false` or by the end of the input. Round-trip tests in each
//! target module check that the two agree, so a change of format is caught at once.

use arbitrary::{Arbitrary, Result, Unstructured};

/// An opaque byte string: a little-endian `u16` length, then that many bytes (or as many
/// as are left). Cheaper for the fuzzer to mutate than `Vec<u8>`, which spends a
/// continuation byte per element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = usize::from(u16::arbitrary(u)?);
        let take = len.min(u.len());
        Ok(Bytes(u.bytes(take)?.to_vec()))
    }
}

/// Writes values in the byte format `arbitrary` reads. See the module docs.
#[derive(Debug, Default)]
pub struct ArbWriter {
    /// The bytes written so far.
    pub out: Vec<u8>,
}

impl ArbWriter {
    /// An empty writer.
    pub fn new() -> ArbWriter {
        ArbWriter::default()
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// The tag of variant `index` of an enum with `count` variants.
    pub fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        assert!(index < count, "variant {index} of {count}");
        // The smallest x with (x * count) >> 32 == index.
        let x = ((u64::from(index) << 32).div_ceil(u64::from(count))) as u32;
        debug_assert_eq!((u64::from(x) * u64::from(count)) >> 32, u64::from(index));
        self.u32(x)
    }

    /// A [`Bytes`].
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let len = u16::try_from(b.len()).expect("Bytes are at most 65535 long");
        self.u16(len);
        self.out.extend_from_slice(b);
        self
    }

    /// A `Vec<T>`: each item preceded by `true`, then `false`.
    pub fn vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        for i in items {
            self.bool(true);
            item(self, i);
        }
        self.bool(false)
    }

    /// The bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }
}

/// A value that can be written in the format its derived `Arbitrary` reads.
pub trait ToArb {
    /// Appends `self` to `w`.
    fn write(&self, w: &mut ArbWriter);

    /// `self` as a whole input.
    fn to_arb_bytes(&self) -> Vec<u8> {
        let mut w = ArbWriter::new();
        self.write(&mut w);
        w.finish()
    }
}

impl ToArb for Bytes {
    fn write(&self, w: &mut ArbWriter) {
        w.bytes(&self.0);
    }
}

impl ToArb for u8 {
    fn write(&self, w: &mut ArbWriter) {
        w.u8(*self);
    }
}

impl ToArb for u16 {
    fn write(&self, w: &mut ArbWriter) {
        w.u16(*self);
    }
}

impl ToArb for u32 {
    fn write(&self, w: &mut ArbWriter) {
        w.u32(*self);
    }
}

impl ToArb for u64 {
    fn write(&self, w: &mut ArbWriter) {
        w.u64(*self);
    }
}

impl ToArb for bool {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(*self);
    }
}

impl<const N: usize> ToArb for [u8; N] {
    fn write(&self, w: &mut ArbWriter) {
        for b in self {
            w.u8(*b);
        }
    }
}

impl<T: ToArb> ToArb for Vec<T> {
    fn write(&self, w: &mut ArbWriter) {
        w.vec(self, |w, x| x.write(w));
    }
}

/// Decodes a whole input as `T` (what every structured target does first).
pub fn decode<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(data)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Arbitrary, Debug, PartialEq)]
    enum E {
        A,
        B(u8),
        C { x: u16, y: bool },
    }

    impl ToArb for E {
        fn write(&self, w: &mut ArbWriter) {
            match self {
                E::A => {
                    w.variant(0, 3);
                }
                E::B(b) => {
                    w.variant(1, 3).u8(*b);
                }
                E::C { x, y } => {
                    w.variant(2, 3).u16(*x).bool(*y);
                }
            }
        }
    }

    #[test]
    fn writer_matches_arbitrary() {
        let v = vec![
            E::C { x: 513, y: true },
            E::A,
            E::B(7),
            E::C { x: 0, y: false },
        ];
        let bytes = v.to_arb_bytes();
        assert_eq!(decode::<Vec<E>>(&bytes), Some(v));
        let b = (Bytes(vec![1, 2, 3]), 0xdead_beef_u32);
        let mut w = ArbWriter::new();
        b.0.write(&mut w);
        b.1.write(&mut w);
        let bytes = w.finish();
        assert_eq!(decode::<(Bytes, u32)>(&bytes), Some(b));
        for count in 1..=40u32 {
            for index in 0..count {
                let x = ArbWriter::new().variant(index, count).finish();
                let x = u32::from_le_bytes(x.try_into().unwrap());
                assert_eq!((u64::from(x) * u64::from(count)) >> 32, u64::from(index));
            }
        }
    }

    #[test]
    fn short_bytes_take_what_is_left() {
        let data = [10, 0, 1, 2];
        assert_eq!(decode::<Bytes>(&data), Some(Bytes(vec![1, 2])));
    }
}
