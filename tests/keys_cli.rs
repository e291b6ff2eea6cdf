//! `switchyard keys new`, run as a user would: the printed key verifies against the printed hash
//! once the printed entry is pasted into a config (a call through the gateway answers 200), and
//! `--role`, `--description` and `--expires` are honoured; a bad `--expires` is refused.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// A minted key: the key, its id, and the `[[auth.keys]]` entry printed to paste.
struct Minted {
    key: String,
    id: String,
    entry: String,
}

fn keys_new(args: &[&str]) -> Minted {
    let out = Command::new(BIN)
        .args(["keys", "new"])
        .args(args)
        .output()
        .expect("run switchyard keys new");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    // The key is shown once, alone on an indented line.
    let keys: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("sy_"))
        .collect();
    assert_eq!(keys.len(), 1, "one key printed: {text}");
    let key = keys[0].to_owned();
    let entry = text
        .split_once("[[auth.keys]]\n")
        .map(|(_, e)| format!("[[auth.keys]]\n{e}"))
        .unwrap_or_else(|| panic!("no entry to paste: {text}"));
    let id = key.split('_').nth(1).expect("sy_ID_SECRET").to_owned();
    Minted { key, id, entry }
}

/// `field = "value"` of an entry.
fn field<'a>(entry: &'a str, name: &str) -> Option<&'a str> {
    entry.lines().find_map(|l| {
        l.strip_prefix(name)?
            .trim_start()
            .strip_prefix("= ")?
            .strip_prefix('"')?
            .strip_suffix('"')
    })
}

fn list(gw: &Gateway, key: &str) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/list"),
            ("Authorization", &auth),
        ],
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}),
    );
    (s, v)
}

fn last_line(audit: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(audit).expect("audit file");
    serde_json::from_str(text.lines().last().expect("an audit line")).expect("JSON")
}

#[test]
fn a_minted_key_works_once_its_entry_is_pasted() {
    let reader = keys_new(&["--role", "reader", "--description", "cli test"]);
    let admin = keys_new(&["--role", "admin", "--expires", "2099-01-01"]);
    let expired = keys_new(&["--role", "admin", "--expires", "2020-01-01T00:00:00Z"]);

    // The entry holds the hash, never the key; the options are in it.
    for m in [&reader, &admin, &expired] {
        assert!(!m.entry.contains(&m.key), "{}", m.entry);
        assert_eq!(field(&m.entry, "id"), Some(m.id.as_str()), "{}", m.entry);
        assert!(
            field(&m.entry, "hash").is_some_and(|h| h.starts_with("$argon2id$")),
            "{}",
            m.entry
        );
    }
    assert_eq!(field(&reader.entry, "role"), Some("reader"));
    assert_eq!(field(&reader.entry, "description"), Some("cli test"));
    assert_eq!(field(&reader.entry, "expires"), None);
    assert_eq!(field(&admin.entry, "role"), Some("admin"));
    assert_eq!(field(&admin.entry, "expires"), Some("2099-01-01"));
    assert_eq!(
        field(&expired.entry, "expires"),
        Some("2020-01-01T00:00:00Z")
    );
    assert!(
        reader.key != admin.key && reader.id != admin.id,
        "every run mints a new key"
    );

    let dir = std::env::temp_dir().join(format!("sy-keys-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let audit = dir.join("audit.jsonl");
    let config = format!(
        "[audit]\nenabled = true\npath = \"{}\"\ndurability = \"strict\"\n\n[roles.admin]\n\n[roles.reader]\nallowed_tools = [\"util/echo\"]\n\n{}\n{}\n{}\n{DEMOS}",
        audit.display(),
        reader.entry,
        admin.entry,
        expired.entry
    );
    let gw = start(&config, 1);

    // The printed key verifies against the printed hash; its role applies.
    let (s, v) = list(&gw, &reader.key);
    assert_eq!(s, 200, "{v}");
    let tools: Vec<&str> = v["result"]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(tools, ["util__echo"], "the reader role's view");
    let a = last_line(&audit);
    assert_eq!(
        (a["key"].as_str(), a["role"].as_str(), a["status"].as_u64()),
        (Some(reader.id.as_str()), Some("reader"), Some(200)),
        "{a}"
    );

    let (s, v) = list(&gw, &admin.key);
    assert_eq!(s, 200, "{v}");
    assert!(
        v["result"]["tools"].as_array().map_or(0, Vec::len) > 1,
        "the admin's view: {v}"
    );
    assert_eq!(last_line(&audit)["role"], "admin");

    // Past its --expires: 401, audited.
    let (s, v) = list(&gw, &expired.key);
    assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(-31054)), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{v}"
    );
    let a = last_line(&audit);
    assert_eq!(
        (a["event"].as_str(), a["key"].as_str(), a["status"].as_u64()),
        (Some("denied"), Some(expired.id.as_str()), Some(401)),
        "{a}"
    );

    // The hash binds the whole key: the right id with another secret is refused.
    let forged = format!("sy_{}_{}", reader.id, "A".repeat(33));
    let (s, v) = list(&gw, &forged);
    assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(-31054)), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_expiry_or_role_is_refused() {
    for args in [
        &["--role", "reader", "--expires", "next tuesday"][..],
        &["--role", "", "--description", "x"][..],
    ] {
        let out = Command::new(BIN)
            .args(["keys", "new"])
            .args(args)
            .output()
            .expect("run switchyard keys new");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "no key printed for {args:?}");
        assert!(err.contains("--expires") || err.contains("--role"), "{err}");
    }
}
