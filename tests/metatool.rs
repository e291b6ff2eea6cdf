//! Meta-tool mode end to end with the built-in demo servers: three meta-tools instead of the list,
//! `find_tools` finds by intent only what the caller's role may use, `call_tool` reaches the real
//! tool through the same policy and audit as a direct call, `list_categories` counts per server;
//! configured names and prefix, and an upstream tool that shares a meta-tool's name.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";
const READER: &str = "sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";

fn config() -> String {
    config_with("")
}

/// The two roles and keys, the demo servers, and `extra` (more `[router]` keys, other sections).
fn config_with(extra: &str) -> String {
    format!(
        "[router]\nmode = \"metatool\"\n{extra}\n\n[roles.admin]\n[roles.reader]\nallowed_tools = [\"notes/*\", \"util/echo\", \"util/word_count\"]\nblocked_tools = [\"notes/delete_*\", \"notes/add_*\"]\n\n\
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
    find_with(gw, key, "find_tools", query)
}

/// `find` through a meta-tool named `find_tools`.
fn find_with(gw: &Gateway, key: &str, find_tools: &str, query: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = rpc(
            gw,
            key,
            "tools/call",
            Some(find_tools),
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

    // A role never sees what it may not use: the admin's same search finds the forbidden tools,
    // so the reader's would too if the filter broke.
    let reader_may = |n: &str| {
        (n.starts_with("notes__") && !n.contains("delete_") && !n.contains("add_"))
            || n == "util__echo"
            || n == "util__word_count"
    };
    for query in ["delete a note permanently", "add two numbers together"] {
        let all = found(&find(&gw, ADMIN, query));
        assert!(
            all.iter().any(|n| !reader_may(n)),
            "{query}: the admin finds {all:?}"
        );
        // The index is up (the admin's search used it): one search, no retries.
        let v = rpc(
            &gw,
            READER,
            "tools/call",
            Some("find_tools"),
            json!({"arguments": {"query": query, "top_k": 5}}),
        );
        let hits = found(&v);
        assert!(v["result"].is_object(), "{v}");
        for h in &hits {
            assert!(reader_may(h), "{query}: {h} leaked to the reader: {v}");
        }
    }
    // …while it does find what it may use.
    let v = find(&gw, READER, "count the words in a text");
    assert!(found(&v).contains(&"util__word_count".to_owned()), "{v}");

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

fn listed(v: &Value) -> Vec<&str> {
    v["result"]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

fn refused_as_unknown(v: &Value) -> bool {
    v["error"]["code"] == -32602
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unknown tool"))
}

#[test]
fn configured_prefix_and_names() {
    let gw = start(
        &config_with("prefix = \"gw_\"\nlist_categories_name = \"servers\""),
        1,
    );
    let v = rpc(&gw, ADMIN, "tools/list", None, json!({}));
    assert_eq!(
        listed(&v),
        ["gw_find_tools", "gw_call_tool", "gw_servers"],
        "{v}"
    );
    // The descriptions point at the configured names.
    let about_find = v["result"]["tools"][0]["description"]
        .as_str()
        .unwrap_or("");
    assert!(about_find.contains("gw_call_tool"), "{about_find}");

    let v = find_with(&gw, ADMIN, "gw_find_tools", "add two numbers together");
    assert!(found(&v).contains(&"util__add".to_owned()), "{v}");
    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("gw_call_tool"),
        json!({"arguments": {"name": "util__add", "arguments": {"a": 4, "b": 5}}}),
    );
    assert_eq!(v["result"]["structuredContent"]["sum"], 9, "{v}");
    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("gw_servers"),
        json!({"arguments": {}}),
    );
    assert_eq!(
        v["result"]["structuredContent"]["categories"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{v}"
    );
    // The default names are nothing here: unknown tools.
    for plain in ["call_tool", "find_tools", "list_categories", "servers"] {
        let v = rpc(
            &gw,
            ADMIN,
            "tools/call",
            Some(plain),
            json!({"arguments": {"name": "util__add", "arguments": {"a": 1, "b": 1}, "query": "add"}}),
        );
        assert!(refused_as_unknown(&v), "{plain}: {v}");
    }
    // call_tool runs real tools only, whatever the meta-tools are called.
    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("gw_call_tool"),
        json!({"arguments": {"name": "gw_servers"}}),
    );
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("gw_call_tool calls real tools")),
        "{v}"
    );
}

/// The audit lines of `path` (strict durability: each on disk before its response left).
fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn call_tool_is_audited_as_the_real_tool() {
    let audit =
        std::env::temp_dir().join(format!("sy-metatool-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&audit);
    let section = format!(
        "\n[audit]\nenabled = true\npath = \"{}\"\ndurability = \"strict\"",
        audit.display()
    );
    let gw = start(&config_with(&section), 2);

    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("call_tool"),
        json!({"arguments": {"name": "util__add", "arguments": {"a": 2, "b": 3}}}),
    );
    assert_eq!(v["result"]["structuredContent"]["sum"], 5, "{v}");
    let lines = audit_lines(&audit);
    let a = lines.last().cloned().unwrap_or_default();
    assert_eq!(
        (
            a["event"].as_str(),
            a["method"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str(),
            a["role"].as_str(),
            a["status"].as_u64()
        ),
        (
            Some("request"),
            Some("tools/call"),
            Some("util"),
            Some("add"),
            Some("admin"),
            Some(200)
        ),
        "{a}"
    );

    // Refused through call_tool: the caller hears "unknown tool", the line says what and why.
    let v = rpc(
        &gw,
        READER,
        "tools/call",
        Some("call_tool"),
        json!({"arguments": {"name": "notes__delete_note", "arguments": {"id": "1"}}}),
    );
    assert!(refused_as_unknown(&v), "{v}");
    let lines = audit_lines(&audit);
    let a = lines.last().cloned().unwrap_or_default();
    assert_eq!(
        (
            a["event"].as_str(),
            a["server"].as_str(),
            a["tool"].as_str(),
            a["role"].as_str()
        ),
        (
            Some("blocked"),
            Some("notes"),
            Some("delete_note"),
            Some("reader")
        ),
        "{a}"
    );
    assert!(
        a["reason"].as_str().is_some_and(|r| r.contains("reader")),
        "{a}"
    );
    drop(gw);
    let _ = std::fs::remove_file(&audit);
}

#[test]
fn an_upstream_tool_named_like_a_meta_tool_stays_reachable() {
    // Bare names where no other server has them, and a meta-tool that takes the name of util's
    // `echo`: the upstream tool is renamed as on a collision instead of hiding behind the meta-tool.
    let gw = start(
        &format!(
            "[naming]\npolicy = \"prefix_on_collision\"\n\n{}",
            config_with("call_tool_name = \"echo\"")
        ),
        1,
    );
    let v = rpc(&gw, ADMIN, "tools/list", None, json!({}));
    assert_eq!(listed(&v), ["find_tools", "echo", "list_categories"], "{v}");

    let v = find(&gw, ADMIN, "return my message back unchanged");
    let hits = found(&v);
    assert!(hits.contains(&"util__echo".to_owned()), "{v}");
    assert!(!hits.contains(&"echo".to_owned()), "{v}");
    // Other tools keep their bare names.
    let v = find(&gw, ADMIN, "add two numbers together");
    assert!(found(&v).contains(&"add".to_owned()), "{v}");

    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("echo"),
        json!({"arguments": {"name": "util__echo", "arguments": {"message": "still here"}}}),
    );
    assert_eq!(v["result"]["content"][0]["text"], "still here", "{v}");
    // The meta-tool's own name is not a way to the upstream tool.
    let v = rpc(
        &gw,
        ADMIN,
        "tools/call",
        Some("echo"),
        json!({"arguments": {"name": "echo", "arguments": {"message": "x"}}}),
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("calls real tools")),
        "{v}"
    );
}
