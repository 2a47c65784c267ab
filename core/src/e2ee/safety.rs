//! Safety numbers: what two people compare, out of band, to know each other's keys.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::sha256;

/// Domain separation of the safety-number hash.
const SAFETY_LABEL: &[u8] = b"cove safety number v1";

/// How a party enters the hash: `u32 big-endian len(name) ‖ name ‖ key`.
fn encode(name: &str, key: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + name.len() + 32);
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(key);
    v
}

/// The safety number of two parties (name, Ed25519 key): 60 decimal digits in 12 groups
/// of 5 separated by spaces, the same whichever party computes it.
///
/// Derivation (part of the protocol; changing it is a new version of the label):
///
/// 1. Each party is encoded as `u32_be(len(name)) ‖ name ‖ key` (32-byte key).
/// 2. The two encodings are sorted bytewise: `lo ≤ hi`.
/// 3. For block `i` in 0 and 1: `d_i = SHA-256("cove safety number v1" ‖ u8(i) ‖ lo ‖ hi)`.
/// 4. Each `d_i` gives 6 groups: bytes `5j .. 5j+5` (j = 0..6) read as a 40-bit big-endian
///    integer, modulo 100000, written as 5 digits with leading zeros.
/// 5. The 12 groups (block 0's, then block 1's) are joined with single spaces.
pub fn safety_number(a: (&str, &[u8; 32]), b: (&str, &[u8; 32])) -> String {
    let ea = encode(a.0, a.1);
    let eb = encode(b.0, b.1);
    let (lo, hi) = if ea <= eb { (ea, eb) } else { (eb, ea) };
    let mut out = String::with_capacity(71);
    for block in 0u8..2 {
        let d = sha256(&[SAFETY_LABEL, &[block], &lo, &hi]);
        for chunk in d.chunks_exact(5).take(6) {
            let v = chunk.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)) % 100_000;
            if !out.is_empty() {
                out.push(' ');
            }
            push_five_digits(&mut out, v);
        }
    }
    out
}

fn push_five_digits(out: &mut String, v: u64) {
    let mut digits = [b'0'; 5];
    let mut n = v;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for d in digits {
        out.push(char::from(d));
    }
}
