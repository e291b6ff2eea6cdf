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

/// The shard (1 or 2) named by the audit line with trace id `trace`, once the writer has it.
fn shard_of(audit: &std::path::Path, trace: &str) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(audit).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|a| a["trace_id"] == trace);
        if let Some(a) = found {
            let shard = a["shard"].as_u64().unwrap_or(0) as usize;
            assert!((1..=2).contains(&shard), "{a}");
            return shard;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit line for trace {trace}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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

    // 401: no key, a malformed key, an unknown id, a wrong secret, expired, revoked; each audited
    // as denied, naming the key id when the key has one (never its secret).
    let wrong_secret = format!("{}x", &READER[..READER.len() - 1]);
    for (key, id, why) in [
        (None, None, "required"),
        (Some("nonsense"), None, "invalid API key"),
        (Some("sy_zzzzzzzz_abc"), Some("zzzzzzzz"), "invalid API key"),
        (
            Some(wrong_secret.as_str()),
            Some("tgrhVzZ0"),
            "invalid API key",
        ),
        (Some(EXPIRED), Some("J4gk88jz"), "expired"),
        (Some(REVOKED), Some("leMngXW4"), "revoked"),
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
        let a = last_line(&audit);
        assert_eq!(
            (
                a["event"].as_str(),
                a["status"].as_u64(),
                a["code"].as_i64(),
                a["key"].as_str()
            ),
            (Some("denied"), Some(401), Some(-31054), id),
            "{key:?}: {a}"
        );
        assert!(
            a["reason"].as_str().is_some_and(|r| r.contains(why)),
            "{key:?}: {a}"
        );
        assert!(
            a.get("role").is_none(),
            "no role before a key is valid: {a}"
        );
        assert_eq!(a["method"], "tools/list", "refused, still named: {a}");
        if let Some(k) = key {
            let secret = k.rsplit('_').next().unwrap_or(k);
            assert!(
                !a.to_string().contains(secret),
                "the secret is never logged: {a}"
            );
        }
    }
    // A refused call names the server and the upstream's own tool, as an admitted one does.
    let (s, _, _) = call(
        &gw,
        None,
        "tools/call",
        Some("notes__delete_note"),
        json!({"arguments": {"id": 1}}),
    );
    assert_eq!(s, 401);
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["method"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str()
        ),
        (
            Some("denied"),
            Some("tools/call"),
            Some("notes"),
            Some("delete_note")
        ),
        "{a}"
    );
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

    assert_eq!(last_line(&audit)["key"], "8jLUckKg");

    // 403: a valid key whose role may use nothing.
    let (s, _, v) = call(&gw, Some(NOTHING), "tools/list", None, json!({}));
    assert_eq!((s, v["error"]["code"].as_i64()), (403, Some(-31055)), "{v}");
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["status"].as_u64(),
            a["code"].as_i64(),
            a["key"].as_str(),
            a["role"].as_str()
        ),
        (
            Some("denied"),
            Some(403),
            Some(-31055),
            Some("7QBlo3sX"),
            Some("nothing")
        ),
        "{a}"
    );

    // Roles: the reader sees a strict subset of the admin's tools, and never the hidden ones.
    let (s, _, v) = call(&gw, Some(ADMIN), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let admin = tool_names(&v);
    let (s, _, v) = call(&gw, Some(READER), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let reader = tool_names(&v);
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["status"].as_u64(),
            a["key"].as_str(),
            a["role"].as_str(),
            a["method"].as_str()
        ),
        (
            Some("request"),
            Some(200),
            Some("tgrhVzZ0"),
            Some("reader"),
            Some("tools/list")
        ),
        "{a}"
    );
    assert!(a.get("code").is_none(), "{a}");
    assert!(
        admin.contains(&"notes__delete_note".to_owned()) && admin.contains(&"util__add".to_owned()),
        "{admin:?}"
    );
    assert!(
        !reader.is_empty()
            && reader.len() < admin.len()
            && reader.iter().all(|t| admin.contains(t)),
        "not a strict subset: {reader:?} vs {admin:?}"
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
    // A hidden tool is refused exactly like a tool that does not exist (200 with a JSON-RPC
    // error); the audit line says blocked, and what.
    let (s1, _, hidden) = call(
        &gw,
        Some(READER),
        "tools/call",
        Some("notes__delete_note"),
        json!({"arguments":{"id":"1"}}),
    );
    assert_eq!(s1, 200, "{hidden}");
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["status"].as_u64(),
            a["code"].as_i64(),
            a["key"].as_str(),
            a["method"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str()
        ),
        (
            Some("blocked"),
            Some(200),
            Some(-32602),
            Some("tgrhVzZ0"),
            Some("tools/call"),
            Some("notes"),
            Some("delete_note")
        ),
        "{a}"
    );
    assert!(
        a["reason"].as_str().is_some_and(|r| r.contains("reader")),
        "{a}"
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
    assert_eq!(
        last_line(&audit)["event"],
        "request",
        "a tool that does not exist is no policy refusal"
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
                (
                    a["event"].as_str(),
                    a["status"].as_u64(),
                    a["code"].as_i64()
                ),
                (Some("denied"), Some(429), Some(-31056)),
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
    // the kernel spreads over 2 shards for 3 seconds: one bucket, one atomic, no lock. The audit
    // log (each line names its shard) shows both shards admitted calls.
    let dir = std::env::temp_dir().join(format!("sy-sec-spread-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let audit = dir.join("audit.jsonl");
    let servers = format!(
        "[audit]\nenabled = true\npath = \"{}\"\ndurability = \"batched\"\nfsync_interval_ms = 20\n\n[roles.admin]\nrate_per_s = 200\nburst = 1\n\n[[auth.keys]]\nid = \"8jLUckKg\"\nhash = \"$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0\"\nrole = \"admin\"\n\n{DEMOS}",
        audit.display()
    );
    let gw = start(&servers, 2);
    let auth = format!("Bearer {ADMIN}");
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}}).to_string();
    let h = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
        ("Authorization", auth.as_str()),
    ];
    // Three kept-alive connections on each shard, told apart by a probe call whose audit line
    // (found by its trace id) names the shard; the kernel picks a connection's shard. The probes
    // also warm the key into both shards' caches, so Argon2 time is not in the window.
    let mut on_shard: [Vec<KeepAlive>; 3] = Default::default();
    let mut probes = 0u32;
    while on_shard[1].len() < 3 || on_shard[2].len() < 3 {
        probes += 1;
        assert!(probes <= 64, "64 connections never filled both shards");
        let mut c = KeepAlive::connect(gw.addr).expect("connect");
        let trace = format!("{probes:032x}");
        let tp = format!("00-{trace}-00000000000000aa-01");
        let mut probe = h.to_vec();
        probe.push(("traceparent", tp.as_str()));
        let (s, _) = c.post(&probe, body.as_bytes()).expect("probe");
        assert!(s == 200 || s == 429, "{s}");
        let shard = shard_of(&audit, &trace);
        if on_shard[shard].len() < 3 {
            on_shard[shard].push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let window = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let [_, one, two] = on_shard;
    let handles: Vec<_> = one
        .into_iter()
        .chain(two)
        .map(|mut c| {
            let (auth, body) = (auth.clone(), body.clone());
            std::thread::spawn(move || {
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

    // Every answer of the window has its line (batched: give the writer a moment); the admitted
    // ones came from both shards.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let window_lines = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|a: &Value| a["time_ms"].as_u64() >= Some(started_ms))
            .collect();
        if lines.len() >= ok + limited || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(window_lines.len(), ok + limited, "one line per answer");
    let mut admitted_by_shard = [0usize; 3];
    for a in &window_lines {
        let shard = a["shard"].as_u64().expect("the line names its shard") as usize;
        assert!((1..=2).contains(&shard), "{a}");
        if a["status"] == 200 {
            admitted_by_shard[shard] += 1;
        } else {
            assert_eq!(
                (a["status"].as_u64(), a["event"].as_str()),
                (Some(429), Some("denied"))
            );
        }
    }
    eprintln!(
        "admitted by shard 1: {}, by shard 2: {}",
        admitted_by_shard[1], admitted_by_shard[2]
    );
    assert_eq!(admitted_by_shard[1] + admitted_by_shard[2], ok);
    assert!(
        admitted_by_shard[1] > 0 && admitted_by_shard[2] > 0,
        "both shards admitted calls: {admitted_by_shard:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 2026-07-28 `resources/read` of `uri` with a bearer key; (status, body).
fn read(gw: &Gateway, key: &str, uri: &str) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", uri),
            ("Authorization", &auth),
        ],
        &json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":uri,"_meta":meta()}}),
    );
    (s, v)
}

/// The audit line's (event, status, code, key, role, server, tool).
type Summary<'a> = (
    Option<&'a str>,
    Option<u64>,
    Option<i64>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn summary(a: &Value) -> Summary<'_> {
    (
        a["event"].as_str(),
        a["status"].as_u64(),
        a["code"].as_i64(),
        a["key"].as_str(),
        a["role"].as_str(),
        a["server"].as_str(),
        a["tool"].as_str(),
    )
}

#[test]
fn a_server_for_admins_only_does_not_exist_for_the_reader() {
    // secured.toml's `ops` server (a second util) has allowed_roles = ["admin"] and blocks its own
    // `fail` tool for everyone.
    let (gw, audit) = secured("server");
    let (s, _, v) = call(&gw, Some(ADMIN), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let admin = tool_names(&v);
    assert!(
        admin.contains(&"ops__echo".to_owned()) && admin.contains(&"util__fail".to_owned()),
        "{admin:?}"
    );
    assert!(
        !admin.contains(&"ops__fail".to_owned()),
        "a server's blocked_tools bind the admin too: {admin:?}"
    );
    let (s, _, v) = call(&gw, Some(READER), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let reader = tool_names(&v);
    assert!(
        reader.contains(&"util__echo".to_owned()) && !reader.iter().any(|t| t.starts_with("ops__")),
        "{reader:?}"
    );

    // The reader's call: the answer of a tool that does not exist; audited as blocked, naming ops.
    let (s, _, v) = call(
        &gw,
        Some(READER),
        "tools/call",
        Some("ops__echo"),
        json!({"arguments":{"message":"hi"}}),
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (200, Some(-32602)), "{v}");
    assert_eq!(v["error"]["message"], "Unknown tool: ops__echo", "{v}");
    let a = last_line(&audit);
    assert_eq!(
        summary(&a),
        (
            Some("blocked"),
            Some(200),
            Some(-32602),
            Some("tgrhVzZ0"),
            Some("reader"),
            Some("ops"),
            Some("echo")
        ),
        "{a}"
    );
    let (s, _, missing) = call(
        &gw,
        Some(READER),
        "tools/call",
        Some("ops__no_such_tool"),
        json!({"arguments":{}}),
    );
    assert_eq!(
        (s, missing["error"]["code"].as_i64()),
        (200, Some(-32602)),
        "{missing}"
    );
    assert_eq!(
        missing["error"]["message"], "Unknown tool: ops__no_such_tool",
        "{missing}"
    );

    // The admin may call it.
    let (s, _, v) = call(
        &gw,
        Some(ADMIN),
        "tools/call",
        Some("ops__echo"),
        json!({"arguments":{"message":"hi"}}),
    );
    assert_eq!(s, 200, "{v}");
    assert!(v["result"].is_object() && v.get("error").is_none(), "{v}");
    let a = last_line(&audit);
    assert_eq!(
        summary(&a),
        (
            Some("request"),
            Some(200),
            None,
            Some("8jLUckKg"),
            Some("admin"),
            Some("ops"),
            Some("echo")
        ),
        "{a}"
    );
    // … but not the tool the server blocks for everyone.
    let (s, _, v) = call(
        &gw,
        Some(ADMIN),
        "tools/call",
        Some("ops__fail"),
        json!({"arguments":{}}),
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (200, Some(-32602)), "{v}");
    assert_eq!(v["error"]["message"], "Unknown tool: ops__fail", "{v}");
    let a = last_line(&audit);
    assert_eq!(
        summary(&a),
        (
            Some("blocked"),
            Some(200),
            Some(-32602),
            Some("8jLUckKg"),
            Some("admin"),
            Some("ops"),
            Some("fail")
        ),
        "{a}"
    );
}

#[test]
fn hidden_prompts_and_resources_answer_like_missing_ones() {
    // The reader: blocked_prompts = ["util/*"], blocked_resources = ["util/util://config"].
    let (gw, audit) = secured("items");
    let names = |v: &Value, list: &str, field: &str| -> Vec<String> {
        v["result"][list]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p[field].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let (s, _, v) = call(&gw, Some(ADMIN), "prompts/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(
        names(&v, "prompts", "name").contains(&"util__explain".to_owned()),
        "{v}"
    );
    let (s, _, v) = call(&gw, Some(READER), "prompts/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let prompts = names(&v, "prompts", "name");
    assert!(
        prompts.contains(&"notes__summarize_notes".to_owned())
            && !prompts.iter().any(|p| p.starts_with("util__")),
        "{prompts:?}"
    );
    let (s, _, hidden) = call(
        &gw,
        Some(READER),
        "prompts/get",
        Some("util__explain"),
        json!({"arguments":{"topic":"tls"}}),
    );
    assert_eq!(
        (s, hidden["error"]["code"].as_i64()),
        (200, Some(-32602)),
        "{hidden}"
    );
    assert_eq!(
        hidden["error"]["message"], "Unknown prompt: util__explain",
        "{hidden}"
    );
    let a = last_line(&audit);
    assert_eq!(
        summary(&a),
        (
            Some("blocked"),
            Some(200),
            Some(-32602),
            Some("tgrhVzZ0"),
            Some("reader"),
            Some("util"),
            Some("explain")
        ),
        "{a}"
    );
    let (s, _, missing) = call(
        &gw,
        Some(READER),
        "prompts/get",
        Some("util__no_such_prompt"),
        json!({"arguments":{}}),
    );
    assert_eq!(
        (s, missing["error"]["code"].as_i64()),
        (200, Some(-32602)),
        "{missing}"
    );
    assert_eq!(
        missing["error"]["message"], "Unknown prompt: util__no_such_prompt",
        "{missing}"
    );

    // The reader's bucket is 2/s, bursts of 5: let it refill before the next four calls.
    std::thread::sleep(Duration::from_millis(1600));
    let (s, _, v) = call(&gw, Some(ADMIN), "resources/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(
        names(&v, "resources", "uri").contains(&"util://config".to_owned()),
        "{v}"
    );
    let (s, _, v) = call(&gw, Some(READER), "resources/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let uris = names(&v, "resources", "uri");
    assert!(
        uris.contains(&"util://about".to_owned())
            && !uris.contains(&"util://config".to_owned())
            && !uris.iter().any(|u| u.starts_with("ops+")),
        "{uris:?}"
    );
    let (s, hidden) = read(&gw, READER, "util://config");
    assert_eq!(
        (s, hidden["error"]["code"].as_i64()),
        (200, Some(-32602)),
        "{hidden}"
    );
    let a = last_line(&audit);
    assert_eq!(
        summary(&a),
        (
            Some("blocked"),
            Some(200),
            Some(-32602),
            Some("tgrhVzZ0"),
            Some("reader"),
            Some("util"),
            Some("util://config")
        ),
        "{a}"
    );
    let (s, missing) = read(&gw, READER, "util://no-such-thing");
    assert_eq!(
        (s, &missing["error"]["code"], &missing["error"]["message"]),
        (200, &hidden["error"]["code"], &hidden["error"]["message"]),
        "{missing} vs {hidden}"
    );
    assert_eq!(hidden["error"]["data"]["uri"], "util://config");
    let (s, v) = read(&gw, READER, "util://about");
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["contents"].is_array(), "{v}");
    let (s, v) = read(&gw, ADMIN, "util://config");
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["contents"].is_array(), "{v}");
}

#[test]
fn every_demo_key_in_secured_toml_does_what_its_comment_says() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/secured.toml");
    let text = std::fs::read_to_string(path).expect("secured.toml");
    // `# demo key (role NAME): KEY`, then optionally `<- what happens: STATUS`.
    let mut keys = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("# demo key")) {
        let parsed = line
            .strip_prefix("# demo key (role ")
            .and_then(|r| r.split_once("): "))
            .filter(|(role, _)| !role.is_empty() && role.bytes().all(|b| b.is_ascii_lowercase()));
        let Some((role, rest)) = parsed else {
            panic!("not of the form `# demo key (role NAME): KEY`: {line:?}");
        };
        let (key, note) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        assert!(!key.is_empty(), "{line:?}");
        let note = note.trim().strip_prefix("<-").unwrap_or("").trim();
        let status: u16 = match note.rsplit_once(": ") {
            Some((_, s)) => s.parse().unwrap_or_else(|_| panic!("status in {line:?}")),
            None => 200,
        };
        keys.push((role, key, note, status));
    }
    let roles: Vec<&str> = keys.iter().map(|k| k.0).collect();
    assert!(
        keys.len() >= 5 && roles.contains(&"admin") && roles.contains(&"reader"),
        "{keys:?}"
    );

    let (gw, audit) = secured("demo-keys");
    for (role, key, note, status) in keys {
        let (s, _, v) = call(&gw, Some(key), "tools/list", None, json!({}));
        assert_eq!(s, status, "{key} ({note}): {v}");
        let a = last_line(&audit);
        let id = key.split('_').nth(1);
        assert_eq!(
            (a["status"].as_u64(), a["key"].as_str()),
            (Some(u64::from(status)), id),
            "{a}"
        );
        match status {
            200 => {
                assert_eq!(
                    (a["event"].as_str(), a["role"].as_str()),
                    (Some("request"), Some(role))
                );
                assert!(!tool_names(&v).is_empty(), "{v}");
            }
            401 | 403 => {
                assert_eq!(a["event"], "denied", "{a}");
                // The comment's first word is what the refusal says: expired, revoked, …
                let word = note
                    .split(|c: char| !c.is_alphabetic())
                    .next()
                    .unwrap_or("");
                assert!(!word.is_empty(), "{key}: the comment says what happens");
                let message = v["error"]["message"].as_str().unwrap_or("");
                assert!(message.contains(word), "{note:?} vs {message:?}");
                if status == 403 {
                    assert_eq!(a["role"].as_str(), Some(role), "{a}");
                }
            }
            other => panic!("undocumented status {other}"),
        }
    }
}

#[test]
fn only_allowed_networks_may_connect() {
    // A loopback client is outside 10.0.0.0/8: its connection is closed before any request, so
    // nothing is answered and nothing audited.
    let dir = std::env::temp_dir().join(format!("sy-sec-cidr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let audit = dir.join("audit.jsonl");
    let gw = start_bare(&format!(
        "allowed_networks = [\"10.0.0.0/8\"]\n\n[audit]\nenabled = true\npath = \"{}\"\ndurability = \"strict\"\n",
        audit.display()
    ));
    let list =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}}).to_string();
    for (method, path, body) in [
        ("GET", "/health", None),
        ("POST", "/mcp", Some(list.as_bytes())),
    ] {
        let r = request(gw.addr, method, path, &JSON, body);
        assert!(
            matches!(r, Err(_) | Ok((0, _, _))),
            "{path}: a client outside the allowed networks got an answer: {:?}",
            r.map(|(s, _, _)| s)
        );
    }
    assert_eq!(
        std::fs::read_to_string(&audit).unwrap_or_default(),
        "",
        "nothing audited"
    );
    drop(gw);

    // Inside 127.0.0.0/8 it is served.
    let gw = start(
        &format!("allowed_networks = [\"192.168.0.0/16\", \"127.0.0.0/8\"]\n\n{DEMOS}"),
        1,
    );
    let (s, _, v) = call(&gw, None, "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(!tool_names(&v).is_empty(), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_without_a_key_are_limited_per_ip() {
    let dir = std::env::temp_dir().join(format!("sy-sec-ip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let audit = dir.join("audit.jsonl");
    // No keys (auth off on a loopback listener): the limit is per client IP, 1/s, bursts of 3.
    let gw = start(
        &format!(
            "[auth]\nip_rate_per_s = 1\nip_burst = 3\n\n[audit]\nenabled = true\npath = \"{}\"\ndurability = \"strict\"\n\n{DEMOS}",
            audit.display()
        ),
        2,
    );
    let mut codes = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let (s, h, v) = call(&gw, None, "tools/list", None, json!({}));
        let a = last_line(&audit);
        assert_eq!(a["status"].as_u64(), Some(u64::from(s)), "{a}");
        assert!(a.get("key").is_none(), "{a}");
        if s == 429 {
            assert_eq!(v["error"]["code"], -31056, "{v}");
            assert_eq!(
                (
                    a["event"].as_str(),
                    a["code"].as_i64(),
                    a["reason"].as_str()
                ),
                (Some("denied"), Some(-31056), Some("rate limited")),
                "{a}"
            );
            refused = header(&h, "retry-after").map(str::to_owned);
        } else {
            assert_eq!((s, a["event"].as_str()), (200, Some("request")), "{v}");
        }
        codes.push(s);
    }
    let ok = codes.iter().filter(|&&s| s == 200).count();
    assert!(
        (3..=4).contains(&ok),
        "burst of 3 (+1 refilled at most): {codes:?}"
    );
    let secs: u64 = refused
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("a 429 with Retry-After seconds");
    assert_eq!(secs, 1, "{codes:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _, _) = call(&gw, None, "tools/list", None, json!({}));
    assert_eq!(s, 200, "a token came back after the wait");
    let _ = std::fs::remove_dir_all(&dir);
}
