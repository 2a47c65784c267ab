//! The one random stream every draw of the provider comes from.

use alloc::sync::Arc;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, Rng, SeedableRng};
use spin::Mutex;
use zeroize::Zeroizing;

/// A ChaCha20 stream seeded by the caller, shared by every clone.
///
/// mls-rs calls the provider through `&self`, so the generator sits behind a spin lock
/// (no OS, no 64-bit atomics needed). Clones share the stream: a draw through one clone
/// advances all of them. The lock is held only for the copy of the drawn bytes; on a
/// board, do not draw from an interrupt handler that may preempt a draw (a spin lock
/// cannot be taken twice on one core). The ChaCha20 state itself is not wiped on drop
/// (`rand_chacha` offers no zeroizing); the seeds handed in are.
#[derive(Clone)]
pub(super) struct SharedRng(Arc<Mutex<ChaCha20Rng>>);

impl SharedRng {
    /// A stream seeded with `seed`.
    pub(super) fn from_seed(seed: [u8; 32]) -> SharedRng {
        let seed = Zeroizing::new(seed);
        SharedRng(Arc::new(Mutex::new(ChaCha20Rng::from_seed(*seed))))
    }

    /// A stream seeded with 32 bytes drawn from `rng`.
    pub(super) fn from_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> SharedRng {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        SharedRng::from_seed(*seed)
    }

    /// Fills `out` with the next bytes of the stream.
    pub(super) fn fill(&self, out: &mut [u8]) {
        self.0.lock().fill_bytes(out);
    }

    /// The next 32 bytes of the stream, in a buffer zeroized on drop.
    pub(super) fn bytes32(&self) -> Zeroizing<[u8; 32]> {
        let mut b = Zeroizing::new([0u8; 32]);
        self.fill(&mut b[..]);
        b
    }
}

impl core::fmt::Debug for SharedRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedRng(..)")
    }
}
