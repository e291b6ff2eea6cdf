//! The GCRA limiter under contention: one bucket charged from every core at once (the worst case:
//! one key spread over all shards), against the uncontended single-thread cost.
//!
//! `cargo bench --bench limiter`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::policy::limiter::{Bucket, Epoch, Rate};

fn limiter(c: &mut Criterion) {
    let rate = Rate::new(1e9, 1_000_000).unwrap_or_else(|| unreachable!("a positive rate"));
    let epoch = Epoch::default();
    let bucket = Bucket::default();
    c.bench_function("limiter/charge/1 thread", |b| {
        b.iter(|| black_box(bucket.charge(&rate, epoch.now_ns())))
    });

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let shared = Arc::new(Bucket::default());
    c.bench_function(
        &format!("limiter/charge/{threads} threads, one bucket"),
        |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        let shared = shared.clone();
                        std::thread::spawn(move || {
                            for _ in 0..iters {
                                black_box(shared.charge(&rate, epoch.now_ns()));
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    let _ = h.join();
                }
                // Wall time for `iters` charges on every thread at once: the per-charge cost each
                // thread sees under contention (thread start-up is amortized over millions).
                start.elapsed()
            })
        },
    );
}

criterion_group!(benches, limiter);
criterion_main!(benches);
