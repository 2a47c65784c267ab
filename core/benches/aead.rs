//! Sealing one record with each AEAD implementation cove can use, side by side in one run:
//! RustCrypto keyed afresh for every record (how sessions sealed before they kept a keyed
//! cipher), RustCrypto keyed once per direction (the no_std default), and ring keyed once
//! (the `ring` provider servers use). docs/BENCHMARKS.md reports the ratios.
//!
//! `cargo bench -p cove-core --features ring --bench aead`

use std::hint::black_box;

use cove_core::crypto::{AeadKey, CryptoProvider, KEY_LEN, RING, RUST_CRYPTO, Suite};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use zeroize::Zeroizing;

fn seal(c: &mut Criterion) {
    let key = [7u8; KEY_LEN];
    for suite in Suite::ALL {
        let mut g = c.benchmark_group(format!("seal_{}", suite.cipher_name()));
        let rust_once = AeadKey::new(&RUST_CRYPTO, suite, Zeroizing::new(key));
        let ring_once = AeadKey::new(&RING, suite, Zeroizing::new(key));
        for size in [100usize, 1024] {
            g.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![1u8; size];
            let mut n = 0u64;
            g.bench_function(BenchmarkId::new("rustcrypto_keyed_per_record", size), |b| {
                b.iter(|| {
                    n += 1;
                    RUST_CRYPTO
                        .seal(suite, &key, &suite.nonce(n), b"hdr", black_box(&mut buf))
                        .expect("seal")
                })
            });
            g.bench_function(BenchmarkId::new("rustcrypto_keyed_once", size), |b| {
                b.iter(|| {
                    n += 1;
                    rust_once
                        .seal(&suite.nonce(n), b"hdr", black_box(&mut buf))
                        .expect("seal")
                })
            });
            g.bench_function(BenchmarkId::new("ring_keyed_once", size), |b| {
                b.iter(|| {
                    n += 1;
                    ring_once
                        .seal(&suite.nonce(n), b"hdr", black_box(&mut buf))
                        .expect("seal")
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, seal);
criterion_main!(benches);
