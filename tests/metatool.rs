//! Meta-tool mode end to end with the built-in demo servers: three meta-tools instead of the list,
//! `find_tools` finds by intent only what the caller's role may use, `call_tool` reaches the real
//! tool through the same policy as a direct call, `list_categories` counts per server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";
const READER: &str = "sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";

fn config() -> String {
    format!(
        "[router]\nmode = \"metatool\"\n\n[roles.admin]\n[roles.reader]\nallowed_tools = [\"notes/*\", \"util/echo\", \"util/word_count\"]\nblocked_tools = [\"notes/delete_*\", \"notes/add_*\"]\n\n\
         [[auth.keys]]\nid = \"8jLUckKg\"\nhash = \"$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0\"\nrole = \"admin\"\n\n\
         [[auth.keys]]\nid = \"tgrhVzZ0\"\nhash = \"$argon2id$v=19$m=19456,t=2,p=1$mT7HwxNbvg9R/kaSjvotYw$HNhMlJuX5ax5JPBPL4JAq1SwIe72VwY+3hCATx/x0y8\"\nrole = \"reader\"\n\n{DEMOS}"
    )
}

fn rpc(gw: &Gateway, key: &str, method: &str, name: Option<&str>, mut params: Value) -> Value {
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    if let Some(n) = name {
        params["name"] = n.into();
    }
    let auth = format!("Bearer {key}");
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
        ("Authorization", auth.as_str()),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    let (s, _, v) = post(
        gw.addr,
        &h,
        &json!({"jsonrpc":"2.0","id":7,"method":method,"params":params}),
    );
    assert!(s == 200 || s == 404, "{s}: {v}");
    v
}

fn found(v: &Value) -> Vec<String> {
    v["result"]["structuredContent"]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// find_tools, retried while the first index is still being built off-core.
fn find(gw: &Gateway, key: &str, query: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = rpc(
            gw,
            key,
            "tools/call",
            Some("find_tools"),
            json!({"arguments": {"query": query, "top_k": 5}}),
        );
        if !found(&v).is_empty() || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn meta_tools_find_and_call_within_the_role() {
    let gw = start(&config(), 2);
    let v = rpc(&gw, READER, "tools/list", None, json!({}));
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["find_tools", "call_tool", "list_categories"], "{v}");

    // By intent, not by name; the result carries the full schema.
    let v = find(&gw, ADMIN, "add two numbers together");
    let hits = found(&v);
    assert!(hits.contains(&"util__add".to_owned()), "{v}");
    let add = v["result"]["structuredContent"]["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "util__add"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(add["inputSchema"]["type"], "object", "{add}");

    // A role never sees what it may not use.
    let v = find(&gw, READER, "delete a note permanently");
    let hits = found(&v);
    assert!(!hits.is_empty(), "{v}");
    for h in &hits {
        assert!(
            !h.contains("delete") && !h.contains("add_note") && !h.starts_with("util__add"),
            "{h} leaked to the reader: {v}"
        );
    }

    // call_tool reaches the real tool…
    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("call_tool"),
        json!({"arguments": {"name": "util__add", "arguments": {"a": 2, "b": 3}}}),
    );
    assert_eq!(v["result"]["structuredContent"]["sum"], 5, "{v}");
    // …and refuses, exactly like an unknown tool, what the role may not use.
    let v = rpc(
        &gw,
        READER,
        "tools/call",
        Some("call_tool"),
        json!({"arguments": {"name": "notes__delete_note", "arguments": {"id": "1"}}}),
    );
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Unknown tool"),
        "{v}"
    );

    // Categories count only the caller's tools.
    let v = rpc(
        &gw,
        READER,
        "tools/call",
        Some("list_categories"),
        json!({"arguments": {}}),
    );
    let cats = v["result"]["structuredContent"]["categories"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let count = |n: &str| {
        cats.iter()
            .find(|c| c["name"] == n)
            .and_then(|c| c["tools"].as_u64())
    };
    assert_eq!((count("util"), count("notes")), (Some(2), Some(3)), "{v}");
}
