//! Tool routing: query latency per strategy at 1,000 and 10,000 tools, and the index build.
//!
//! Catalog: `tests/data/routing/synthetic-10k.json` (the 589 real tools of `catalog.json` first,
//! then synthetic look-alikes up to 10,000; `tests/routing/synth_catalog.py` writes it). The 1,000
//! tool catalog is its first 1,000 tools. Queries: the 405 of `tests/data/routing/queries.jsonl`,
//! one per iteration, in turn.
//!
//! `hybrid_no_cover` is hybrid without the second stage's query coverage: the same run's baseline
//! for what that signal costs.
//!
//! Besides criterion's per-iteration estimate (a mean over a sample of queries), the bench prints
//! the per-query p50/p99 of one timed pass per configuration, and the time the builder thread takes
//! to publish a 10,000-tool index.
//!
//! Run (one core, as a shard has): taskset -c 1 cargo bench --bench router -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use switchyard::router::eval::{load_queries, Catalog};
use switchyard::router::{
    IndexBuilder, IndexConfig, RerankWeights, RouterHandle, RouterIndex, SearchOptions, Strategy,
    ToolDoc,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn data(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/routing")
        .join(file)
}

fn load() -> (Vec<ToolDoc>, Vec<String>) {
    let catalog = match Catalog::load(&data("synthetic-10k.json")) {
        Ok(c) => c,
        Err(e) => panic!("{e} (run tests/routing/synth_catalog.py)"),
    };
    let cases = match load_queries(&data("queries.jsonl"), &catalog, None) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    (catalog.docs, cases.into_iter().map(|c| c.query).collect())
}

fn percentiles(index: &RouterIndex, queries: &[String], opts: &SearchOptions) -> (f64, f64) {
    let mut times = Vec::with_capacity(queries.len() * 5);
    for pass in 0..6 {
        for q in queries {
            let t = Instant::now();
            black_box(index.search_with(q, opts, |_| true));
            if pass > 0 {
                times.push(t.elapsed());
            }
        }
    }
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

fn bench(c: &mut Criterion) {
    let (docs, queries) = load();
    let config = IndexConfig::default();
    for size in [1_000usize, 10_000] {
        let index = RouterIndex::build(1, &docs[..size.min(docs.len())], config);
        let mut group = c.benchmark_group(format!("query_{size}"));
        for strategy in Strategy::ALL {
            let opts = SearchOptions {
                strategy,
                top_k: 5,
                min_score: 0.0,
            };
            let (p50, p99) = percentiles(&index, &queries, &opts);
            eprintln!("query_{size}/{strategy}: per-query p50 {p50:.1} µs, p99 {p99:.1} µs");
            let mut i = 0usize;
            group.bench_function(BenchmarkId::from_parameter(strategy), |b| {
                b.iter(|| {
                    i = (i + 1) % queries.len();
                    black_box(index.search_with(&queries[i], &opts, |t| t % 7 != 3))
                })
            });
        }
        // The same run's baseline for the second stage's query coverage: hybrid without it (the
        // default before 2026-11-25).
        let baseline = IndexConfig {
            rerank: RerankWeights {
                cover: 0.0,
                head: 0.0,
                ..config.rerank
            },
            ..config
        };
        let index = RouterIndex::build(1, &docs[..size.min(docs.len())], baseline);
        let opts = SearchOptions {
            strategy: Strategy::Hybrid,
            top_k: 5,
            min_score: 0.0,
        };
        let (p50, p99) = percentiles(&index, &queries, &opts);
        eprintln!("query_{size}/hybrid_no_cover: per-query p50 {p50:.1} µs, p99 {p99:.1} µs");
        let mut i = 0usize;
        group.bench_function(BenchmarkId::from_parameter("hybrid_no_cover"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.search_with(&queries[i], &opts, |t| t % 7 != 3))
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for size in [1_000usize, 10_000] {
        let docs = &docs[..size.min(docs.len())];
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| black_box(RouterIndex::build(1, docs, config)))
        });
    }
    group.finish();

    // Off-core: the builder thread builds and swaps; the caller only sends.
    let handle = RouterHandle::empty(config);
    let builder = match IndexBuilder::spawn(handle.clone()) {
        Ok(b) => b,
        Err(e) => panic!("spawn: {e}"),
    };
    for generation in 1..=3u64 {
        let copy = docs.clone();
        let t = Instant::now();
        if builder.rebuild(generation, copy).is_err() {
            panic!("builder gone");
        }
        let sent = t.elapsed();
        let ok = handle.wait_for(generation, Duration::from_secs(60));
        eprintln!(
            "builder thread: {} tools, rebuild() returned in {:.1} µs, swapped in after {:.0} ms (ok: {ok})",
            docs.len(),
            sent.as_secs_f64() * 1e6,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    builder.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
