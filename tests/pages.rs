//! The merged lists in pages (`gateway.page_size`) and their 2026-07-28 caching hints, through the
//! real binary with its demo servers as upstreams.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::*;
use serde_json::{json, Value};

const LISTS: [(&str, &str); 4] = [
    ("tools/list", "tools"),
    ("prompts/list", "prompts"),
    ("resources/list", "resources"),
    ("resources/templates/list", "resourceTemplates"),
];

/// The published demo keys of config/examples/secured.toml; here `other` is a second admin.
const ADMIN: &str = "Bearer sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";
const READER: &str = "Bearer sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";
const OTHER_ADMIN: &str = "Bearer sy_7QBlo3sX_8FD7q7EoONimby2yTyxqb70IGauItnjh";

fn keyed(page_size: usize) -> String {
    format!(
        r#"page_size = {page_size}

[roles.admin]

[roles.reader]
allowed_tools = ["notes/*", "util/echo"]

[[auth.keys]]
id = "8jLUckKg"
hash = "$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0"
role = "admin"

[[auth.keys]]
id = "7QBlo3sX"
hash = "$argon2id$v=19$m=19456,t=2,p=1$p+bXIPtqFZ+B625hGCZQOA$K1qEh6JrxfNY4grEqHyBsUk2ts50uu3LJ1sr4jLKgLs"
role = "admin"

[[auth.keys]]
id = "tgrhVzZ0"
hash = "$argon2id$v=19$m=19456,t=2,p=1$mT7HwxNbvg9R/kaSjvotYw$HNhMlJuX5ax5JPBPL4JAq1SwIe72VwY+3hCATx/x0y8"
role = "reader"

{DEMOS}"#
    )
}

/// A caller: a legacy session, or a 2026-07-28 client; with or without a key.
struct Caller {
    addr: SocketAddr,
    auth: Option<&'static str>,
    session: Option<String>,
}

impl Caller {
    fn legacy(addr: SocketAddr, auth: Option<&'static str>) -> Caller {
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let sid = initialize_as(addr, &h);
        Caller {
            addr,
            auth,
            session: Some(sid),
        }
    }

    fn modern(addr: SocketAddr, auth: Option<&'static str>) -> Caller {
        Caller {
            addr,
            auth,
            session: None,
        }
    }

    /// One list request; status and the JSON-RPC response.
    fn list(&self, method: &str, cursor: Option<&Value>) -> (u16, Value) {
        let mut params = json!({});
        if let Some(c) = cursor {
            params["cursor"] = c.clone();
        }
        let mut h: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = self.auth {
            h.push(("Authorization", a));
        }
        match &self.session {
            Some(sid) => h.push(("Mcp-Session-Id", sid)),
            None => {
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                });
                h.push(("MCP-Protocol-Version", "2026-07-28"));
                h.push(("Mcp-Method", method));
            }
        }
        let (s, _, v) = post(
            self.addr,
            &h,
            &json!({"jsonrpc":"2.0","id":7,"method":method,"params":params}),
        );
        (s, v)
    }

    /// Every page of a list: the entries' ids, the pages' sizes, the last page's result.
    fn walk(&self, method: &str, key: &str) -> (Vec<String>, Vec<usize>, Value) {
        let ident = if key.starts_with("resource") {
            if key == "resources" {
                "uri"
            } else {
                "uriTemplate"
            }
        } else {
            "name"
        };
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..100 {
            let (s, v) = self.list(method, cursor.as_ref());
            assert_eq!(s, 200, "{v}");
            let r = v["result"].clone();
            let entries = r[key].as_array().unwrap_or_else(|| panic!("{v}"));
            sizes.push(entries.len());
            ids.extend(
                entries
                    .iter()
                    .map(|e| e[ident].as_str().unwrap().to_owned()),
            );
            match r.get("nextCursor") {
                Some(c) => cursor = Some(c.clone()),
                None => return (ids, sizes, r),
            }
        }
        panic!("{method}: pagination never ended");
    }
}

fn invalid_cursor(s: u16, v: &Value) -> String {
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(v["id"], 7, "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

#[test]
fn every_list_pages_through_to_the_whole_list_in_both_eras() {
    let whole = start(DEMOS, 1);
    let paged = start(&format!("page_size = 2\n\n{DEMOS}"), 2);
    for (method, key) in LISTS {
        let (all, sizes, _) = Caller::legacy(whole.addr, None).walk(method, key);
        assert_eq!(sizes.len(), 1, "{method}: page_size 0 pages nothing");
        // The demos have a single resource template; every other list needs several pages.
        assert!(
            all.len() > 2 || key == "resourceTemplates",
            "{method}: the demo lists need more than one page"
        );
        for caller in [
            Caller::legacy(paged.addr, None),
            Caller::modern(paged.addr, None),
        ] {
            let (ids, sizes, last) = caller.walk(method, key);
            assert_eq!(ids, all, "{method}: same entries, same order, once each");
            assert_eq!(
                sizes.len(),
                all.len().div_ceil(2).max(1),
                "{method}: {sizes:?}"
            );
            assert!(sizes.iter().all(|n| *n <= 2 && *n > 0), "{sizes:?}");
            assert_eq!(
                last.get("resultType").is_some(),
                caller.session.is_none(),
                "{last}"
            );
        }
    }
}

#[test]
fn cursors_are_bound_to_their_list_caller_and_content() {
    let gw = start(&keyed(2), 1);
    let admin = Caller::modern(gw.addr, Some(ADMIN));
    let (s, v) = admin.list("tools/list", None);
    assert_eq!(s, 200, "{v}");
    let cursor = v["result"]["nextCursor"].clone();
    assert!(cursor.is_string(), "{v}");
    // The owner resumes, in either era.
    let (s, v) = admin.list("tools/list", Some(&cursor));
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.len() == 2));
    let (s, v) = Caller::legacy(gw.addr, Some(ADMIN)).list("tools/list", Some(&cursor));
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["tools"].is_array(), "{v}");

    // Another role, another caller of the same role, another list: refused.
    let foreign = [
        (Caller::modern(gw.addr, Some(READER)), "tools/list"),
        (Caller::legacy(gw.addr, Some(READER)), "tools/list"),
        (Caller::modern(gw.addr, Some(OTHER_ADMIN)), "tools/list"),
        (Caller::modern(gw.addr, Some(ADMIN)), "prompts/list"),
    ];
    for (caller, method) in foreign {
        let (s, v) = caller.list(method, Some(&cursor));
        assert!(
            invalid_cursor(s, &v).contains("not issued by this gateway"),
            "{v}"
        );
    }

    // Edited, truncated, made up, not a string.
    let c = cursor.as_str().unwrap();
    let mut edited = c.as_bytes().to_vec();
    let i = c.len() / 2;
    edited[i] = if edited[i] == b'x' { b'y' } else { b'x' };
    for bad in [
        json!(String::from_utf8(edited).unwrap()),
        json!(&c[..c.len() - 3]),
        json!("eyJwYWdlIjogM30="),
        json!(""),
        json!(42),
        json!({"offset": 2}),
    ] {
        let (s, v) = admin.list("tools/list", Some(&bad));
        invalid_cursor(s, &v);
        let (s, v) = Caller::legacy(gw.addr, Some(ADMIN)).list("tools/list", Some(&bad));
        invalid_cursor(s, &v);
    }

    // The reader's cursor, taken before the admin's list changes below.
    let reader = Caller::modern(gw.addr, Some(READER));
    let (_, v) = reader.list("tools/list", None);
    let reader_cursor = v["result"]["nextCursor"].clone();
    assert!(reader_cursor.is_string(), "{v}");

    // A null cursor is no cursor.
    let (s, v) = admin.list("tools/list", Some(&Value::Null));
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["tools"].is_array(), "{v}");

    // The list changes (util's toggle_converter adds a tool): the cursor has expired.
    let (s, _, v) = post(
        gw.addr,
        &[
            ("Authorization", ADMIN),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "util__toggle_converter"),
        ],
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"util__toggle_converter","arguments":{},
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}),
    );
    assert_eq!(s, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, v) = admin.list("tools/list", Some(&cursor));
        if v.get("error").is_some() {
            assert!(invalid_cursor(s, &v).contains("list changed"), "{v}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tool list never changed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The reader's tools/list did not change (it sees no util tool but echo): its cursor lives on.
    let (s, v) = reader.list("tools/list", Some(&reader_cursor));
    assert_eq!(s, 200, "{v}");
    assert!(v["result"]["tools"].is_array(), "{v}");
}

#[test]
fn page_size_zero_issues_no_cursor_and_accepts_none() {
    let gw = start(DEMOS, 1);
    for caller in [Caller::legacy(gw.addr, None), Caller::modern(gw.addr, None)] {
        for (method, key) in LISTS {
            let (s, v) = caller.list(method, None);
            assert_eq!(s, 200, "{v}");
            assert!(v["result"][key].is_array(), "{v}");
            assert!(v["result"].get("nextCursor").is_none(), "{v}");
            let (s, v) = caller.list(method, Some(&json!("c1.AAAA.AAAA")));
            invalid_cursor(s, &v);
        }
    }
}

#[test]
fn caching_hints_follow_the_upstreams_and_the_callers() {
    // Demo hints: util's tools/list 0/private (its tools can change); notes' resources/list
    // 0/private (the notes); every other list 300000/public.
    let open = start(DEMOS, 1);
    let modern = Caller::modern(open.addr, None);
    let expect = [
        ("tools/list", 0, "private"),
        ("prompts/list", 300_000, "public"),
        ("resources/list", 0, "private"),
        ("resources/templates/list", 300_000, "public"),
    ];
    for (method, ttl, scope) in expect {
        let (_, v) = modern.list(method, None);
        assert_eq!(v["result"]["ttlMs"], ttl, "{method}: {v}");
        assert_eq!(v["result"]["cacheScope"], scope, "{method}: {v}");
    }
    // Legacy clients get no hints.
    let (_, v) = Caller::legacy(open.addr, None).list("prompts/list", None);
    assert!(v["result"].get("ttlMs").is_none(), "{v}");

    // Auth on: lists depend on who asks; never public, and the same on every page.
    let keyed = start(&keyed(2), 1);
    let admin = Caller::modern(keyed.addr, Some(ADMIN));
    let mut cursor: Option<Value> = None;
    loop {
        let (_, v) = admin.list("prompts/list", cursor.as_ref());
        assert_eq!(v["result"]["ttlMs"], 300_000, "{v}");
        assert_eq!(v["result"]["cacheScope"], "private", "{v}");
        match v["result"].get("nextCursor") {
            Some(c) => cursor = Some(c.clone()),
            None => break,
        }
    }

    // A legacy upstream says nothing: its part counts private, with gateway.list_ttl_ms.
    let pinned = DEMOS.replace(
        "args = [\"demo-server\", \"notes\"]",
        "args = [\"demo-server\", \"notes\"]\nera = \"legacy\"",
    );
    assert_ne!(pinned, DEMOS);
    let mixed = start(&format!("list_ttl_ms = 60000\n\n{pinned}"), 1);
    let (_, v) = Caller::modern(mixed.addr, None).list("prompts/list", None);
    assert_eq!(v["result"]["ttlMs"], 60_000, "{v}");
    assert_eq!(v["result"]["cacheScope"], "private", "{v}");
    let (_, v) = Caller::modern(mixed.addr, None).list("resources/list", None);
    assert_eq!(v["result"]["ttlMs"], 60_000, "{v}");
}

#[test]
fn a_public_read_stays_public_only_without_auth() {
    // util's resources/read is 300000/public.
    let read = |addr, auth: Option<&'static str>| {
        let mut h = vec![
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", "util://about"),
        ];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let (s, _, v) = post(
            addr,
            &h,
            &json!({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"util://about",
                "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}),
        );
        assert_eq!(s, 200, "{v}");
        assert!(v["result"]["contents"].is_array(), "{v}");
        v["result"]["cacheScope"].clone()
    };
    let open = start(DEMOS, 1);
    assert_eq!(read(open.addr, None), "public");
    let keyed = start(&keyed(0), 1);
    assert_eq!(read(keyed.addr, Some(ADMIN)), "private");
}

#[test]
fn turning_auth_on_by_reload_makes_lists_private() {
    let dir = std::env::temp_dir().join(format!("sy-pages-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("gw.toml");
    let write = |body: &str| {
        std::fs::write(&cfg, format!("[gateway]\nlisten = \"127.0.0.1:1\"\n{body}"))
            .expect("config")
    };
    // The same roles (adding roles needs a restart), no keys: every caller sees the same lists.
    write(&format!(
        "\n[roles.admin]\n\n[roles.reader]\nallowed_tools = [\"notes/*\", \"util/echo\"]\n\n{DEMOS}"
    ));
    let gw = start_file(cfg.to_str().unwrap_or_default(), 1);
    let (_, v) = Caller::modern(gw.addr, None).list("prompts/list", None);
    assert_eq!(v["result"]["cacheScope"], "public", "{v}");
    // Keys configured, SIGHUP: the lists now depend on who asks.
    write(&keyed(0));
    // Safety: kill(2) on our own child's pid with a valid signal number.
    let rc = unsafe { libc::kill(gw.child.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP delivered");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (s, v) = Caller::modern(gw.addr, Some(ADMIN)).list("prompts/list", None);
        if s == 200 && v["result"]["cacheScope"] == "private" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {s} {v} after the reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn distinct_entries_on_every_page() {
    // No entry is repeated across pages even with a page size that does not divide the list.
    let gw = start(&format!("page_size = 3\n\n{DEMOS}"), 1);
    let (ids, _, _) = Caller::modern(gw.addr, None).walk("tools/list", "tools");
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "{ids:?}");
}
