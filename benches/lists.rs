//! Serving a merged list: the whole list (what every tools/list cost before pages: one copy of
//! pre-serialized bytes), the same through `ListBody::write_page`, and a page of 20 with its
//! cursor sealed (first page) or opened and sealed (a later page).
//!
//! `cargo bench --bench lists`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use switchyard::catalog::{Hint, ListBody};
use switchyard::mcp::lists::{ListKind, Page};
use switchyard::mcp::state::StateKey;
use switchyard::policy::Principal;

/// 200 tools of about 400 bytes each, like a gateway in front of a dozen servers.
fn tools() -> Vec<Value> {
    (0..200)
        .map(|i| {
            json!({
                "name": format!("server{}__tool_{i}", i % 12),
                "description": "Does one thing to one object of the service, with a description of realistic length.",
                "inputSchema": {"type": "object", "properties": {
                    "id": {"type": "string", "description": "The identifier"},
                    "limit": {"type": "integer", "description": "Most results"}}},
                "_meta": {"switchyard.dev/server": format!("server{}", i % 12), "switchyard.dev/name": format!("tool_{i}")}
            })
        })
        .collect()
}

fn envelope(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":17,\"result\":");
}

fn lists(c: &mut Criterion) {
    let body = ListBody::new(
        "tools",
        &tools(),
        Hint {
            ttl_ms: 0,
            public: false,
        },
    );
    let whole = body.whole(true);
    c.bench_function("lists/whole, copy of pre-serialized bytes (before)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(whole.len() + 64);
            envelope(&mut out);
            out.extend_from_slice(black_box(&whole));
            out.push(b'}');
            black_box(out)
        })
    });
    let key = StateKey::new(None).unwrap_or_else(|e| panic!("{e}"));
    let who = Principal {
        key: Some(3),
        role: 1,
        owner: 99,
    };
    let page = |page_size| Page {
        key: &key,
        who: &who,
        kind: ListKind::Tools,
        page_size,
    };
    let answer = |p: &Page<'_>, cursor: Option<&str>| {
        let mut out = Vec::with_capacity(body.bytes_hint() + 64);
        envelope(&mut out);
        if p.write(&mut out, &body, true, cursor).is_err() {
            unreachable!("a cursor of this list");
        }
        out.push(b'}');
        out
    };
    let all = page(0);
    c.bench_function("lists/whole, write_page (page_size 0)", |b| {
        b.iter(|| black_box(answer(&all, None)))
    });
    let twenty = page(20);
    c.bench_function("lists/first page of 20, cursor sealed", |b| {
        b.iter(|| black_box(answer(&twenty, None)))
    });
    let first: Value = serde_json::from_slice(&answer(&twenty, None)).unwrap_or_default();
    let cursor = first["result"]["nextCursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.bench_function("lists/second page of 20, cursor opened and sealed", |b| {
        b.iter(|| black_box(answer(&twenty, Some(&cursor))))
    });
}

criterion_group!(benches, lists);
criterion_main!(benches);
