//! Keys in a separate `keys_file`, and SIGHUP reloading `[auth]` and `[roles]` without a restart:
//! a revoked key stops working while the others (and requests in flight) carry on; a role's rate
//! and globs change; a reload that adds a role is refused and the old policy stays.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";
const READER: &str = "sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";
const ADMIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0";
const READER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$mT7HwxNbvg9R/kaSjvotYw$HNhMlJuX5ax5JPBPL4JAq1SwIe72VwY+3hCATx/x0y8";

fn keys_file(reader_revoked: bool) -> String {
    format!(
        "[[keys]]\nid = \"8jLUckKg\"\nhash = \"{ADMIN_HASH}\"\nrole = \"admin\"\n\n[[keys]]\nid = \"tgrhVzZ0\"\nhash = \"{READER_HASH}\"\nrole = \"reader\"\nrevoked = {reader_revoked}\n"
    )
}

/// The main config: roles (with the reader's tools and rate), the keys file, extra lines, demos.
fn main_config(reader_tools: &str, reader_rate: u32, extra: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:3100\"\n\n[roles.admin]\n\n[roles.reader]\nallowed_tools = [{reader_tools}]\nrate_per_s = {reader_rate}\nburst = {reader_rate}\n{extra}\n[auth]\nkeys_file = \"keys.toml\"\n\n{DEMOS}"
    )
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}})
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
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}}),
    );
    (s, v)
}

fn names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn sighup(gw: &Gateway) {
    // Safety: kill(2) on our own child's pid with a valid signal number.
    let rc = unsafe { libc::kill(gw.child.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP delivered");
}

/// Wait (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str) {
    // Write then rename, as an editor or a deploy tool would: the gateway never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn sighup_revokes_a_key_from_the_keys_file_without_a_restart() {
    let dir = Dir(std::env::temp_dir().join(format!("sy-reload-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("dir");
    let (cfg, keys) = (dir.0.join("gw.toml"), dir.0.join("keys.toml"));
    write(&keys, &keys_file(false));
    write(&cfg, &main_config("\"util/echo\"", 100, ""));
    let gw = start_file(cfg.to_str().unwrap_or_default(), 2);

    // Both keys from the keys file work (several connections: both shards cache them).
    for _ in 0..4 {
        assert_eq!(list(&gw, ADMIN).0, 200);
        assert_eq!(list(&gw, READER).0, 200);
    }
    assert_eq!(names(&list(&gw, READER).1), ["util__echo"]);

    // Load with the admin key runs across every reload below: no request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (addr, stop) = (gw.addr, stop.clone());
        std::thread::spawn(move || {
            let auth = format!("Bearer {ADMIN}");
            let body =
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":meta()}})
                    .to_string();
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut c = KeepAlive::connect(addr).expect("connect");
                for _ in 0..20 {
                    let r = c.post(
                        &[
                            ("MCP-Protocol-Version", "2026-07-28"),
                            ("Mcp-Method", "tools/list"),
                            ("Authorization", auth.as_str()),
                        ],
                        body.as_bytes(),
                    );
                    statuses.push(r.map(|(s, _)| s).unwrap_or(0));
                }
            }
            statuses
        })
    };

    // Revoke the reader in the keys file and send SIGHUP: the reader gets 401, the admin does not.
    write(&keys, &keys_file(true));
    sighup(&gw);
    eventually("the revoked key is refused", || list(&gw, READER).0 == 401);
    for _ in 0..6 {
        let (s, v) = list(&gw, READER);
        assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(-31054)), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("revoked"),
            "{v}"
        );
        assert_eq!(list(&gw, ADMIN).0, 200);
    }

    // Un-revoke it and change the reader's role in the main config: more tools, a rate of 1/s.
    write(&keys, &keys_file(false));
    write(&cfg, &main_config("\"util/echo\", \"util/add\"", 1, ""));
    sighup(&gw);
    eventually("the reader sees util__add", || {
        let (s, v) = list(&gw, READER);
        s == 200 && names(&v).contains(&"util__add".to_owned())
    });
    eventually("the reader's new rate holds", || list(&gw, READER).0 == 429);

    // Adding a role needs a restart: the reload is refused and the policy in force stays.
    write(&keys, &keys_file(true));
    write(
        &cfg,
        &main_config("\"util/echo\"", 100, "\n[roles.extra]\n"),
    );
    sighup(&gw);
    // Time for the reload to be tried, and for the reader's 1/s bucket to refill.
    std::thread::sleep(Duration::from_millis(1600));
    let (s, v) = list(&gw, READER);
    assert_eq!(s, 200, "the refused reload revoked nothing: {v}");
    assert!(names(&v).contains(&"util__add".to_owned()));

    stop.store(true, Ordering::Relaxed);
    let statuses = load.join().expect("load thread");
    assert!(statuses.len() > 20, "the load ran: {}", statuses.len());
    assert!(
        statuses.iter().all(|&s| s == 200),
        "requests across reloads: {:?}",
        statuses.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
}
