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
    let gw = start_file("config/examples/secured.toml", 2);

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
            (401, Some(-32054)),
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
    assert_eq!((s, v["error"]["code"].as_i64()), (403, Some(-32055)), "{v}");

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
    let gw = start_file("config/examples/secured.toml", 2);
    // The reader's bucket: 2/s, bursts of 5. New connections spread over both shards: the limit
    // is one bucket across them.
    let mut codes = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let (s, h, v) = call(&gw, Some(READER), "tools/list", None, json!({}));
        if s == 429 {
            assert_eq!(v["error"]["code"], -32056, "{v}");
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
