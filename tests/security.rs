//! The request flow's security branches against `config/examples/secured.toml` (its demo keys):
//! 401 for no, unknown, wrong, expired and revoked keys; 403 for a role that may use nothing; lists
//! and calls limited by role and by server; 429 with Retry-After past the rate; sessions bound to
//! the key that opened them.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";
const READER: &str = "sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";
const EXPIRED: &str = "sy_J4gk88jz_3bQ6oaxvXrehuvG4xx39FiWncNauQBqh";
const REVOKED: &str = "sy_leMngXW4_kR1xKy9jD8KuNKemA2ZPG8l82AyyaUzA";
const NOTHING: &str = "sy_7QBlo3sX_8FD7q7EoONimby2yTyxqb70IGauItnjh";

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}})
}

/// A 2026-07-28 request with a bearer key; (status, headers, body).
fn call(
    gw: &Gateway,
    key: Option<&str>,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Vec<(String, String)>, Value) {
    params["_meta"] = meta();
    if let Some(n) = name {
        params["name"] = n.into();
    }
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    post(
        gw.addr,
        &h,
        &json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}),
    )
}

/// The gateway on the secured example with its audit log in a fresh temp file.
fn secured(name: &str) -> (Gateway, std::path::PathBuf) {
    let audit = std::env::temp_dir().join(format!("sy-sec-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&audit);
    let gw = start_file_env(
        "config/examples/secured.toml",
        2,
        &[("SWITCHYARD_AUDIT", audit.to_str().unwrap_or_default())],
    );
    (gw, audit)
}

/// The last audit line (strict durability: on disk before the response left).
fn last_line(audit: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(audit).expect("audit file");
    let line = text.lines().last().expect("an audit line");
    serde_json::from_str(line).expect("audit lines are JSON")
}

fn tool_names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn every_branch_of_the_request_flow() {
    let (gw, audit) = secured("branches");

    // /health needs no key.
    let (s, _, _) = request(gw.addr, "GET", "/health", &[], None).expect("health");
    assert_eq!(s, 200);

    // 401: no key, a malformed key, an unknown id, a wrong secret, expired, revoked.
    let wrong_secret = format!("{}x", &READER[..READER.len() - 1]);
    for key in [
        None,
        Some("nonsense"),
        Some("sy_zzzzzzzz_abc"),
        Some(wrong_secret.as_str()),
        Some(EXPIRED),
        Some(REVOKED),
    ] {
        let (s, h, v) = call(&gw, key, "tools/list", None, json!({}));
        assert_eq!(
            (s, v["error"]["code"].as_i64()),
            (401, Some(-31054)),
            "{key:?}: {v}"
        );
        assert!(
            header(&h, "www-authenticate").is_some_and(|w| w.starts_with("Bearer")),
            "{key:?}"
        );
    }
    let (_, _, v) = call(&gw, Some(EXPIRED), "tools/list", None, json!({}));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{v}"
    );
    let (_, _, v) = call(&gw, Some(REVOKED), "tools/list", None, json!({}));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("revoked"),
        "{v}"
    );
    // X-API-Key works as well as Authorization.
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/list"),
            ("X-API-Key", ADMIN),
        ],
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}}),
    );
    assert_eq!(s, 200, "{v}");

    // 403: a valid key whose role may use nothing.
    let (s, _, v) = call(&gw, Some(NOTHING), "tools/list", None, json!({}));
    assert_eq!((s, v["error"]["code"].as_i64()), (403, Some(-31055)), "{v}");
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["status"].as_u64(),
            a["role"].as_str()
        ),
        (Some("denied"), Some(403), Some("nothing")),
        "{a}"
    );

    // Roles: the reader sees fewer tools than the admin, and never the hidden ones.
    let (_, _, v) = call(&gw, Some(ADMIN), "tools/list", None, json!({}));
    let admin = tool_names(&v);
    let (_, _, v) = call(&gw, Some(READER), "tools/list", None, json!({}));
    let reader = tool_names(&v);
    assert!(
        admin.contains(&"notes__delete_note".to_owned()) && admin.contains(&"util__add".to_owned()),
        "{admin:?}"
    );
    assert!(
        !reader.is_empty() && reader.len() < admin.len(),
        "{reader:?} vs {admin:?}"
    );
    for hidden in [
        "notes__delete_note",
        "notes__add_note",
        "util__add",
        "util__fail",
    ] {
        assert!(
            !reader.contains(&hidden.to_owned()),
            "{hidden} listed for the reader"
        );
    }
    assert!(
        reader.contains(&"util__echo".to_owned())
            && reader.contains(&"notes__list_notes".to_owned())
    );
    // A hidden tool is refused exactly like a tool that does not exist.
    let (s1, _, hidden) = call(
        &gw,
        Some(READER),
        "tools/call",
        Some("notes__delete_note"),
        json!({"arguments":{"id":"1"}}),
    );
    let (s2, _, missing) = call(
        &gw,
        Some(READER),
        "tools/call",
        Some("notes__no_such_tool"),
        json!({"arguments":{}}),
    );
    assert_eq!(
        (s1, hidden["error"]["code"].as_i64()),
        (s2, missing["error"]["code"].as_i64())
    );
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    assert!(
        hidden["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Unknown tool"),
        "{hidden}"
    );
    // Blocked prompts and visible ones.
    let (_, _, v) = call(&gw, Some(READER), "prompts/list", None, json!({}));
    let prompts: Vec<&str> = v["result"]["prompts"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        prompts.iter().all(|p| !p.starts_with("util__"))
            && prompts.iter().any(|p| p.starts_with("notes__")),
        "{prompts:?}"
    );
    // The admin may call what the reader may not.
    let (s, _, v) = call(
        &gw,
        Some(ADMIN),
        "tools/call",
        Some("util__add"),
        json!({"arguments":{"a":1,"b":2}}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["structuredContent"]["sum"], 3);
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["key"].as_str(),
            a["role"].as_str(),
            a["method"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str(),
            a["status"].as_u64()
        ),
        (
            Some("request"),
            Some("8jLUckKg"),
            Some("admin"),
            Some("tools/call"),
            Some("util"),
            Some("add"),
            Some(200)
        ),
        "{a}"
    );
    assert!(
        a["time_ms"].as_u64().is_some()
            && a["duration_us"].as_u64().is_some()
            && a["bytes_out"].as_u64() > Some(0)
    );
    assert!(
        a.get("arguments").is_none() && !a.to_string().contains("\"a\":1"),
        "no argument contents: {a}"
    );

    // Sessions belong to the key that opened them.
    let auth = format!("Bearer {ADMIN}");
    let sid = initialize_as(gw.addr, &[("Authorization", &auth)]);
    let other = format!("Bearer {READER}");
    let (s, _, _) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid), ("Authorization", &other)],
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    );
    assert_eq!(s, 404, "a session is not usable with another key");
    let (s, _, _) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid), ("Authorization", &auth)],
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    );
    assert_eq!(s, 200);
}

#[test]
fn over_the_rate_is_429_with_retry_after() {
    let (gw, audit) = secured("rate");
    // The reader's bucket: 2/s, bursts of 5. New connections spread over both shards: the limit
    // is one bucket across them.
    let mut codes = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let (s, h, v) = call(&gw, Some(READER), "tools/list", None, json!({}));
        if s == 429 {
            assert_eq!(v["error"]["code"], -31056, "{v}");
            let a = last_line(&audit);
            assert_eq!(
                (a["event"].as_str(), a["status"].as_u64()),
                (Some("denied"), Some(429)),
                "{a}"
            );
            retry_after = header(&h, "retry-after").map(str::to_owned);
        }
        codes.push(s);
    }
    let ok = codes.iter().filter(|&&s| s == 200).count();
    assert!(
        (5..=6).contains(&ok),
        "burst of 5 (+1 refilled at most): {codes:?}"
    );
    assert!(codes.contains(&429));
    let secs: u64 = retry_after
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&secs), "{secs}");
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _, _) = call(&gw, Some(READER), "tools/list", None, json!({}));
    assert_eq!(s, 200, "a token came back after the wait");
    // Another key has its own bucket.
    let (s, _, _) = call(&gw, Some(ADMIN), "tools/list", None, json!({}));
    assert_eq!(s, 200);
}

#[test]
fn one_key_spread_over_all_shards_gets_its_rate_and_no_more() {
    // The admin demo key, with a role limited to 200/s (burst 1), hammered from 6 connections that
    // the kernel spreads over 2 shards for 3 seconds: one bucket, one atomic, no lock.
    let servers = format!(
        "[roles.admin]\nrate_per_s = 200\nburst = 1\n\n[[auth.keys]]\nid = \"8jLUckKg\"\nhash = \"$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0\"\nrole = \"admin\"\n\n{DEMOS}"
    );
    let gw = start(&servers, 2);
    let auth = format!("Bearer {ADMIN}");
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}}).to_string();
    // Warm the key into both shards' caches first, so Argon2 time is not in the window.
    for _ in 0..8 {
        let _ = call(&gw, Some(ADMIN), "tools/list", None, json!({}));
    }
    std::thread::sleep(Duration::from_millis(100));
    let window = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (addr, auth, body) = (gw.addr, auth.clone(), body.clone());
            std::thread::spawn(move || {
                let mut c = KeepAlive::connect(addr).expect("connect");
                let h = [
                    ("MCP-Protocol-Version", "2026-07-28"),
                    ("Mcp-Method", "tools/list"),
                    ("Authorization", auth.as_str()),
                ];
                let (mut ok, mut limited) = (0usize, 0usize);
                while started.elapsed() < window {
                    match c.post(&h, body.as_bytes()) {
                        Ok((200, _)) => ok += 1,
                        Ok((429, _)) => limited += 1,
                        other => panic!("unexpected {:?}", other.map(|(s, _)| s)),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for h in handles {
        let (o, l) = h.join().expect("load thread");
        ok += o;
        limited += l;
    }
    let rate = ok as f64 / window.as_secs_f64();
    eprintln!("admitted {ok} ({rate:.1}/s), refused {limited}");
    assert!(limited > ok, "the load was well over the limit");
    assert!(
        (rate - 200.0).abs() <= 10.0,
        "admitted rate {rate:.1}/s is not within 5% of 200/s"
    );
}
