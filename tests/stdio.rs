//! `switchyard stdio` driven over its pipes with raw JSON-RPC lines (what no SDK sends on purpose):
//! stdout carries only JSON-RPC, bad lines get errors with a null id, cancellation drops a request,
//! both eras on one process, keys from `SWITCHYARD_API_KEY` or `auth.stdio_role`, audit lines, and
//! a clean exit (children gone) when stdin closes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TempDir, BIN, DEMOS};
use serde_json::{json, Value};

const READER: &str = "sy_tgrhVzZ0_W4Un6cuLnaiCYkgG0J5mRvDEQd8ReZDU";
const REVOKED: &str = "sy_leMngXW4_kR1xKy9jD8KuNKemA2ZPG8l82AyyaUzA";

/// A running `switchyard stdio` and what it wrote to stdout, line by line.
struct Stdio1 {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Drop for Stdio1 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> (TempDir, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sy-stdio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    (TempDir(dir.clone()), dir)
}

/// Start `switchyard stdio` on a config text written into a fresh folder.
fn start(name: &str, config: &str, env: &[(&str, &str)]) -> Stdio1 {
    let (guard, dir) = temp_dir(name);
    let cfg = dir.join("switchyard.toml");
    std::fs::write(&cfg, config).expect("config");
    let stderr = dir.join("stderr.log");
    let mut child = Command::new(BIN)
        .env_remove("SWITCHYARD_API_KEY")
        .env("SWITCHYARD_AUDIT", dir.join("audit.jsonl"))
        .envs(env.iter().copied())
        .args(["stdio", "--config"])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start switchyard stdio");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    Stdio1 {
        stdin: child.stdin.take(),
        child,
        lines: rx,
        stderr,
        _dir: guard,
    }
}

fn demos() -> String {
    format!("[gateway]\nlisten = \"127.0.0.1:1\"\n\n{DEMOS}")
}

fn secured(extra_auth: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/secured.toml");
    let text = std::fs::read_to_string(path).expect("secured.toml");
    format!("[auth]\n{extra_auth}\n\n{text}")
}

impl Stdio1 {
    fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    fn send(&mut self, v: &Value) {
        self.send_raw(&v.to_string());
    }

    /// The next stdout line, parsed; every line must be one JSON-RPC message.
    fn next(&self, within: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(within).ok()?;
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line:?}"));
        assert_eq!(v["jsonrpc"], "2.0", "not JSON-RPC: {line}");
        Some(v)
    }

    /// Messages until the answer with `id` (which is last).
    fn until_id(&self, id: Value) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(v) = self.next(Duration::from_millis(200)) {
                let done = v["id"] == id && v.get("method").is_none();
                seen.push(v);
                if done {
                    return seen;
                }
            }
        }
        panic!(
            "no answer with id {id}; got {seen:?}\nstderr:\n{}",
            self.stderr()
        );
    }

    fn answer(&self, id: Value) -> Value {
        self.until_id(id).pop().unwrap_or(Value::Null)
    }

    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}));
        self.answer(json!(id))
    }

    fn initialize(&mut self) -> Value {
        let r = self.request(
            1,
            "initialize",
            json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
        );
        self.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        r
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Wait for the process to exit; its status.
    fn exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The child processes (upstreams) of the gateway.
    fn children(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let tasks = format!("/proc/{}/task", self.child.id());
        for t in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        out
    }
}

fn modern_meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}})
}

fn tool_names(list: &Value) -> Vec<&str> {
    list["result"]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

fn text_of(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn both_eras_on_one_process_and_only_json_rpc_on_stdout() {
    let mut s = start("eras", &demos(), &[]);
    // Before initialize: a legacy request has no session, ping is fine.
    let early = s.request(7, "tools/list", json!({}));
    assert_eq!(early["error"]["code"], -32600, "{early}");
    assert!(early["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("initialize")));
    assert_eq!(s.request(8, "ping", json!({}))["result"], json!({}));

    let init = s.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "switchyard");
    assert_eq!(
        init["result"]["capabilities"]["tools"]["listChanged"], true,
        "{init}"
    );
    assert_eq!(
        s.request(
            2,
            "initialize",
            json!({"protocolVersion":"2025-11-25","capabilities":{}})
        )["error"]["code"],
        -32600
    );
    let tools = s.request(3, "tools/list", json!({}));
    let names = tool_names(&tools);
    assert!(names.contains(&"util__echo"), "{names:?}");
    assert!(names.contains(&"notes__add_note"), "{names:?}");
    let echo = s.request(
        4,
        "tools/call",
        json!({"name":"util__echo","arguments":{"message":"legacy"}}),
    );
    assert_eq!(text_of(&echo), "legacy", "{echo}");

    // 2026-07-28 on the same process: stateless, no headers to check.
    let discover = s.request(5, "server/discover", json!({"_meta": modern_meta()}));
    assert_eq!(
        discover["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    let echo = s.request(
        6,
        "tools/call",
        json!({"name":"util__echo","arguments":{"message":"modern"},"_meta": modern_meta()}),
    );
    assert_eq!(text_of(&echo), "modern", "{echo}");
    assert_eq!(echo["result"]["resultType"], "complete");
    let old = s.request(
        9,
        "tools/list",
        json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01","io.modelcontextprotocol/clientCapabilities":{}}}),
    );
    assert_eq!(old["error"]["code"], -32022, "{old}");
    assert_eq!(old["error"]["data"]["requested"], "1900-01-01");
    let no_caps = s.request(
        10,
        "tools/list",
        json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}),
    );
    assert_eq!(no_caps["error"]["code"], -32602, "{no_caps}");
    let gone = s.request(
        11,
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"_meta": modern_meta()}),
    );
    assert_eq!(gone["error"]["code"], -32601, "{gone}");

    // Lines that are not JSON-RPC requests get an error with a null id, and the process lives on.
    for (line, code) in [
        ("not json", -32700),
        ("[1,2]", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"x\"}", -32600),
        ("\"just a string\"", -32600),
    ] {
        s.send_raw(line);
        let v = s.next(Duration::from_secs(10)).expect("an error line");
        assert_eq!(v["error"]["code"], code, "{line}: {v}");
        assert!(v["id"].is_null(), "{v}");
    }
    // A string id comes back as it was sent.
    s.send(&json!({"jsonrpc":"2.0","id":"str-id","method":"ping"}));
    assert_eq!(s.answer(json!("str-id"))["result"], json!({}));
    s.close_stdin();
    assert!(s.exit(Duration::from_secs(10)).success());
    // Nothing after the answers; the logs went to stderr.
    assert!(s.next(Duration::from_millis(100)).is_none());
    assert!(s.stderr().contains("upstream ready"), "{}", s.stderr());
}

#[test]
fn a_line_over_the_limit_is_refused_and_the_next_one_served() {
    let config = demos().replace(
        "listen = \"127.0.0.1:1\"",
        "listen = \"127.0.0.1:1\"\nmax_body_bytes = 1024",
    );
    let mut s = start("limit", &config, &[]);
    s.initialize();
    let big = "x".repeat(4000);
    s.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"util__echo","arguments":{"message":big}}}));
    // Notifications may come first (a list change of an upstream that came up meanwhile).
    let v = std::iter::from_fn(|| s.next(Duration::from_secs(10)))
        .find(|v| v.get("method").is_none())
        .expect("an error line");
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(v["id"].is_null());
    let echo = s.request(
        3,
        "tools/call",
        json!({"name":"util__echo","arguments":{"message":"small"}}),
    );
    assert_eq!(text_of(&echo), "small");
}

#[test]
fn cancelled_requests_are_never_answered_and_others_overlap() {
    let mut s = start("cancel", &demos(), &[]);
    s.initialize();
    s.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"util__sleep_ms","arguments":{"ms":1500}}}));
    std::thread::sleep(Duration::from_millis(200));
    s.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"changed my mind"}}));
    // Answered by the gateway itself while the upstream is still busy with the cancelled call.
    let started = Instant::now();
    let ping = s.request(3, "ping", json!({}));
    assert_eq!(ping["result"], json!({}));
    assert!(started.elapsed() < Duration::from_millis(1000));
    // The upstream got the cancellation; its late answer is dropped, the next call goes through
    // (the demo server works one call at a time, so it comes after the cancelled one's end).
    s.send(&json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"util__echo","arguments":{"message":"after"}}}));
    let mut seen = s.until_id(json!(4));
    assert_eq!(text_of(&seen[seen.len() - 1]), "after");
    s.close_stdin();
    assert!(s.exit(Duration::from_secs(10)).success());
    while let Some(v) = s.next(Duration::from_millis(100)) {
        seen.push(v);
    }
    for v in seen {
        assert_ne!(v["id"], 2, "a cancelled request was answered: {v}");
    }
}

#[test]
fn stdin_closing_drains_the_call_in_flight_then_stops_the_children() {
    let mut s = start("eof", &demos(), &[]);
    s.initialize();
    let children = s.children();
    assert_eq!(children.len(), 2, "one child per demo server");
    s.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"util__sleep_ms","arguments":{"ms":400}}}));
    s.close_stdin();
    let answer = s.answer(json!(2));
    assert_eq!(text_of(&answer), "slept 400 ms", "{answer}");
    assert!(s.exit(Duration::from_secs(10)).success());
    for pid in children {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.contains(") Z ") {
                break; // exited; only its entry is left for the reaper
            }
            assert!(
                Instant::now() < deadline,
                "child {pid} outlived the gateway"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn sigterm_stops_at_once() {
    let mut s = start("sigterm", &demos(), &[]);
    s.initialize();
    s.send(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"util__sleep_ms","arguments":{"ms":5000}}}));
    std::thread::sleep(Duration::from_millis(200));
    // Safety: signalling our own child process.
    unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) };
    let started = Instant::now();
    assert!(s.exit(Duration::from_secs(10)).success());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn keys_come_from_the_environment_and_policy_and_audit_apply() {
    // No key where keys are configured: refused at start, saying how to give one.
    let mut s = start("nokey", &secured(""), &[]);
    assert!(!s.exit(Duration::from_secs(10)).success());
    assert!(s.stderr().contains("SWITCHYARD_API_KEY"), "{}", s.stderr());

    let mut s = start("revoked", &secured(""), &[("SWITCHYARD_API_KEY", REVOKED)]);
    assert!(!s.exit(Duration::from_secs(10)).success());
    assert!(s.stderr().contains("revoked"), "{}", s.stderr());

    let mut s = start("reader", &secured(""), &[("SWITCHYARD_API_KEY", READER)]);
    s.initialize();
    let tools = s.request(2, "tools/list", json!({}));
    let names = tool_names(&tools);
    assert!(names.contains(&"util__echo"), "{names:?}");
    assert!(!names.contains(&"notes__delete_note"), "{names:?}");
    let blocked = s.request(
        3,
        "tools/call",
        json!({"name":"notes__delete_note","arguments":{"id":"1"}}),
    );
    assert_eq!(blocked["error"]["code"], -32602, "{blocked}");
    let audit_path = s._dir.0.join("audit.jsonl");
    let text = std::fs::read_to_string(&audit_path).expect("audit file");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["event"], "blocked", "{last}");
    assert_eq!(last["key"], "tgrhVzZ0");
    assert_eq!(last["role"], "reader");
    assert_eq!(last["method"], "tools/call");
    assert_eq!(last["tool"], "delete_note");
    assert_eq!(last["code"], -32602);
    // The reader's rate (2/s, burst 5) applies as over HTTP.
    let mut limited = None;
    for id in 10..30 {
        let v = s.request(id, "ping", json!({}));
        if v["error"]["code"] == -31056 {
            limited = Some(v);
            break;
        }
    }
    let limited = limited.expect("the reader's rate limit");
    assert!(limited["error"]["data"]["retryAfterMs"].as_u64().is_some());

    // auth.stdio_role: a local client without a key acts as that role.
    let mut s = start("role", &secured("stdio_role = \"reader\""), &[]);
    s.initialize();
    let tools = s.request(2, "tools/list", json!({}));
    let names = tool_names(&tools);
    assert!(
        names.contains(&"util__echo") && !names.contains(&"util__add"),
        "{names:?}"
    );
}

#[test]
fn list_changes_reach_the_session_and_a_listen_request() {
    // A server that is `util` on its first start and `notes` after a restart.
    let (flag_dir, flag) = temp_dir("flag");
    let flag = flag.join("started-once");
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:1\"\n\n[[servers]]\nname = \"x\"\ncommand = \"sh\"\nargs = [\"-c\", \"if [ -e '{f}' ]; then exec \\\"$0\\\" demo-server notes; else touch '{f}'; exec \\\"$0\\\" demo-server util; fi\", \"${{SWITCHYARD_BIN}}\"]\n",
        f = flag.display()
    );
    let mut s = start("changes", &config, &[]);
    s.initialize();
    let tools = s.request(2, "tools/list", json!({}));
    assert!(tools.to_string().contains("x__echo"), "{tools}");
    // A 2026-07-28 listen on the same process: acknowledged at once, open until cancelled.
    s.send(
        &json!({"jsonrpc":"2.0","id":"sub","method":"subscriptions/listen","params":{
        "notifications":{"toolsListChanged":true},"_meta": modern_meta()}}),
    );
    let ack = s
        .next(Duration::from_secs(10))
        .expect("the acknowledgement");
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub"
    );
    let children = s.children();
    assert_eq!(children.len(), 1);
    // Safety: killing the gateway's child, which we just read from its /proc entry.
    unsafe { libc::kill(children[0] as libc::pid_t, libc::SIGKILL) };
    let mut heard: Vec<(String, Value)> = Vec::new();
    let told = |heard: &[(String, Value)], method: &str, sub: &Value| {
        heard.iter().any(|(m, s)| m == method && s == sub)
    };
    let tools_changed = "notifications/tools/list_changed";
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(v) = s.next(Duration::from_millis(200)) {
            let sub = v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone();
            heard.push((v["method"].as_str().unwrap_or_default().to_owned(), sub));
            if told(&heard, tools_changed, &Value::Null)
                && told(&heard, "notifications/prompts/list_changed", &Value::Null)
                && told(&heard, tools_changed, &json!("sub"))
            {
                break;
            }
        }
    }
    assert!(
        told(&heard, tools_changed, &Value::Null),
        "the session: {heard:?}\n{}",
        s.stderr()
    );
    assert!(told(
        &heard,
        "notifications/prompts/list_changed",
        &Value::Null
    ));
    assert!(
        told(&heard, tools_changed, &json!("sub")),
        "the listen: {heard:?}"
    );
    // Only what the listen asked for reaches it.
    assert!(!told(
        &heard,
        "notifications/prompts/list_changed",
        &json!("sub")
    ));
    let tools = s.request(3, "tools/list", json!({}));
    assert!(tools.to_string().contains("x__add_note"), "{tools}");
    // A standing listen does not hold the exit up (requests get a 10 s drain; this is not one),
    // and ends without an answer.
    let closed = Instant::now();
    s.close_stdin();
    assert!(s.exit(Duration::from_secs(10)).success());
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "{:?}",
        closed.elapsed()
    );
    while let Some(v) = s.next(Duration::from_millis(100)) {
        assert_ne!(v["id"], "sub", "the listen was answered: {v}");
    }
    drop(flag_dir);
}
