//! The gateway's limits from the outside: request-head size, slow and idle clients, connections per
//! shard, per-server concurrency caps and per-key rates — each checked on the wire (status, JSON-RPC
//! code, headers) and, where the gateway audits, in its audit line.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Everything the connection sends until it closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> String {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A GET /health head padded with one header to about `size` bytes.
fn padded_head(size: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
    let pad = size.saturating_sub(start.len() + 4);
    let mut h = start.as_bytes().to_vec();
    h.extend(std::iter::repeat_n(b'a', pad));
    h.extend_from_slice(b"\r\n\r\n");
    h
}

#[test]
fn a_whole_head_over_the_limit_in_one_read_gets_431() {
    let gw = start("max_header_bytes = 1024\n", 1);
    // 1,500 bytes fit the first read (the connection's buffer starts at 2 KB): the head is complete
    // at once, and still over the limit.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.write_all(&padded_head(1500)).expect("write");
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    // Under the limit, the same request is served.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.write_all(&padded_head(1000)).expect("write");
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// A 2026-07-28 request (no session needed), with `extra` headers; (status, headers, body).
fn call(
    addr: std::net::SocketAddr,
    extra: &[(&str, &str)],
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Vec<(String, String)>, Value) {
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        params["name"] = n.into();
        h.push(("Mcp-Name", n));
    }
    h.extend_from_slice(extra);
    post(
        addr,
        &h,
        &json!({"jsonrpc":"2.0","id":7,"method":method,"params":params}),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A fresh audit file path in the temp folder.
fn audit_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("sy-limits-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn audit_lines(p: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

#[test]
fn a_server_at_max_concurrent_refuses_one_more_call_at_once() {
    let audit = audit_path("concurrent");
    let gw = start(
        &format!(
            "[audit]\nenabled = true\ndurability = \"strict\"\npath = {:?}\n\n[[servers]]\nname = \"util\"\ncommand = \"${{SWITCHYARD_BIN}}\"\nargs = [\"demo-server\", \"util\"]\nmax_concurrent = 2\n",
            audit.to_string_lossy()
        ),
        2,
    );
    let addr = gw.addr;
    // Three calls at once (on two shards) to a server that takes two: the two in flight sleep
    // 1.5 s each (the demo server runs them one after the other), so the third finds it full.
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                // Staggered a little so the refused one is the last, and so it finds both taken.
                std::thread::sleep(Duration::from_millis(200 * i));
                let t = std::time::Instant::now();
                let r = call(
                    addr,
                    &[],
                    "tools/call",
                    Some("util__sleep_ms"),
                    json!({"arguments":{"ms":1500}}),
                );
                (r, t.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = calls.into_iter().map(|c| c.join().expect("call")).collect();
    let refused: Vec<_> = results.iter().filter(|((s, _, _), _)| *s == 503).collect();
    assert_eq!(refused.len(), 1, "exactly one refusal: {results:?}");
    let ((_, h, v), took) = refused[0];
    assert_eq!(v["error"]["code"], -31057, "{v}");
    assert_eq!(v["id"], 7);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("util"),
        "{v}"
    );
    assert_eq!(header(h, "retry-after"), Some("1"));
    assert!(
        *took < Duration::from_millis(1000),
        "answered promptly: {took:?}"
    );
    for ((s, _, v), _) in results.iter().filter(|((s, _, _), _)| *s != 503) {
        assert_eq!(*s, 200, "{v}");
        assert_eq!(v["result"]["content"][0]["text"], "slept 1500 ms", "{v}");
    }
    assert!(started.elapsed() >= Duration::from_millis(3000));
    // Both places are back: two more calls at once both pass.
    let again: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                call(
                    addr,
                    &[],
                    "tools/call",
                    Some("util__sleep_ms"),
                    json!({"arguments":{"ms":10}}),
                )
                .0
            })
        })
        .collect();
    for c in again {
        assert_eq!(c.join().expect("call"), 200);
    }
    let (_, _, health) = request(addr, "GET", "/health", &[], None).expect("health");
    let health: Value = serde_json::from_slice(&health).expect("json");
    assert_eq!(health["upstreams"][0]["max_concurrent"], 2);
    assert_eq!(health["upstreams"][0]["in_flight"], 0);
    // The audit log's counters (strict: all five calls' lines are written).
    assert_eq!(health["audit"]["written"], 5, "{health}");
    assert_eq!(health["audit"]["backlog"], 0);
    assert_eq!(health["audit"]["errors"], 0);
    assert!(health["audit"]["waits"].is_u64() && health["audit"]["max_wait_us"].is_u64());
    // The refusal is audited with its reason.
    let lines = audit_lines(&audit);
    let refusals: Vec<_> = lines.iter().filter(|l| l["event"] == "refused").collect();
    assert_eq!(refusals.len(), 1, "{lines:?}");
    assert_eq!(refusals[0]["status"], 503);
    assert_eq!(refusals[0]["code"], -31057);
    assert_eq!(refusals[0]["server"], "util");
    assert!(refusals[0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("max_concurrent = 2"));
    let _ = std::fs::remove_file(&audit);
}

/// A new key for `role` from `switchyard keys new`: (the key, its `[[auth.keys]]` entry).
fn mint(role: &str) -> (String, String) {
    let out = std::process::Command::new(BIN)
        .args(["keys", "new", "--role", role])
        .output()
        .expect("keys new");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = text
        .split_whitespace()
        .find(|w| w.starts_with("sy_"))
        .expect("a key")
        .to_owned();
    let entry = text[text.find("[[auth.keys]]").expect("an entry")..].to_owned();
    (key, entry)
}

#[test]
fn a_key_overrides_its_roles_burst() {
    let (plain, plain_entry) = mint("r");
    let (roomy, roomy_entry) = mint("r");
    let gw = start(
        &format!(
            "[roles.r]\nrate_per_s = 0.01\nburst = 2\n\n{plain_entry}\n{roomy_entry}\nburst = 4\n\n{DEMOS}"
        ),
        2,
    );
    let admitted = |key: &str| {
        let auth = format!("Bearer {key}");
        let mut n = 0;
        loop {
            let (s, h, v) = call(
                gw.addr,
                &[("Authorization", &auth)],
                "tools/list",
                None,
                json!({}),
            );
            if s != 200 {
                assert_eq!((s, v["error"]["code"].as_i64()), (429, Some(-31056)), "{v}");
                assert!(header(&h, "retry-after").is_some());
                return n;
            }
            n += 1;
            assert!(n < 10, "never limited");
        }
    };
    assert_eq!(admitted(&plain), 2, "the role's burst");
    assert_eq!(admitted(&roomy), 4, "the key's own burst");
}

#[test]
fn a_blocked_call_is_audited_with_the_rule_and_answered_as_unknown() {
    let (key, entry) = mint("r");
    let audit = audit_path("blocked");
    let gw = start(
        &format!(
            "[roles.r]\nblocked_tools = [\"util/sleep*\"]\n\n{entry}\n[audit]\nenabled = true\ndurability = \"strict\"\npath = {:?}\n\n{DEMOS}",
            audit.to_string_lossy()
        ),
        1,
    );
    let auth = format!("Bearer {key}");
    let blocked = call(
        gw.addr,
        &[("Authorization", &auth)],
        "tools/call",
        Some("util__sleep_ms"),
        json!({"arguments":{"ms":1}}),
    );
    let missing = call(
        gw.addr,
        &[("Authorization", &auth)],
        "tools/call",
        Some("util__no_such"),
        json!({"arguments":{}}),
    );
    // The client cannot tell a hidden tool from a missing one.
    assert_eq!(blocked.0, missing.0);
    assert_eq!(blocked.2["error"]["code"], missing.2["error"]["code"]);
    assert_eq!(
        blocked.2["error"]["message"],
        "Unknown tool: util__sleep_ms"
    );
    assert!(!blocked.2.to_string().contains("glob"), "{}", blocked.2);
    let lines = audit_lines(&audit);
    let line = lines
        .iter()
        .find(|l| l["event"] == "blocked")
        .expect("a blocked line");
    assert_eq!(line["tool"], "sleep_ms");
    assert!(
        line.get("arguments").is_none(),
        "arguments are off by default: {line}"
    );
    assert_eq!(
        line["reason"],
        "not visible to role \"r\": role \"r\"'s blocked_tools glob \"util/sleep*\""
    );
    let _ = std::fs::remove_file(&audit);
}

/// Send `parts` with `gap` between them on `s`.
fn trickle(s: &mut TcpStream, parts: &[&str], gap: Duration) {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
        }
        if s.write_all(p.as_bytes()).is_err() {
            return; // the gateway gave up on us: what the caller checks
        }
    }
}

#[test]
fn a_slow_head_gets_408_but_a_long_idle_keep_alive_does_not() {
    let gw = start("request_read_timeout_ms = 500\nidle_timeout_ms = 5000\n", 1);
    // A head trickled over ~1.2 s against a 500 ms request-read limit.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    let started = std::time::Instant::now();
    trickle(
        &mut s,
        &[
            "GET /health HTTP/1.1\r\n",
            "Host: x\r\n",
            "X-A: 1\r\n",
            "X-B: 2\r\n",
            "\r\n",
        ],
        Duration::from_millis(300),
    );
    let answer = read_all(&mut s);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(4), "closed in time");

    // A kept-alive connection idle for twice the request-read limit (within the idle timeout),
    // whose next head comes in two pieces: served, the clock starts at its first byte.
    let s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for round in 0..2 {
        trickle(
            &mut w,
            &["GET /health HTTP/1.1\r\nHo", "st: x\r\n\r\n"],
            Duration::from_millis(150),
        );
        let (line, _) = read_message(&mut r).expect("read").expect("an answer");
        assert!(line.starts_with("HTTP/1.1 200"), "round {round}: {line}");
        std::thread::sleep(Duration::from_millis(1000));
    }
}

#[test]
fn wrong_keys_spend_the_address_bucket() {
    let (key, entry) = mint("r");
    let (fresh, fresh_entry) = mint("r");
    let gw = start(
        &format!(
            "[auth]\nip_rate_per_s = 0.01\nip_burst = 2\n\n[roles.r]\n\n{entry}\n{fresh_entry}\n{DEMOS}"
        ),
        1,
    );
    let wrong = format!("Bearer {}x", &key[..key.len() - 1]);
    // The good key is verified (and remembered by the shard) before the guessing starts.
    let good = format!("Bearer {key}");
    let (s, _, _) = call(
        gw.addr,
        &[("Authorization", &good)],
        "tools/list",
        None,
        json!({}),
    );
    assert_eq!(s, 200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (s, h, v) = call(
            gw.addr,
            &[("Authorization", &wrong)],
            "tools/list",
            None,
            json!({}),
        );
        statuses.push((s, v["error"]["code"].as_i64()));
        if s == 429 {
            assert!(header(&h, "retry-after").is_some());
        }
    }
    assert_eq!(
        statuses,
        [
            (401, Some(-31054)),
            (401, Some(-31054)),
            (429, Some(-31056))
        ]
    );
    // Until the bucket refills, no key from the address is verified: one the shard has not yet
    // verified waits...
    let (s, _, v) = call(
        gw.addr,
        &[("Authorization", &format!("Bearer {fresh}"))],
        "tools/list",
        None,
        json!({}),
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (429, Some(-31056)));
    // ...but one it already verified costs nothing to check and is served (a client behind the
    // same NAT as the guesser is not locked out).
    let (s, _, _) = call(
        gw.addr,
        &[("Authorization", &good)],
        "tools/list",
        None,
        json!({}),
    );
    assert_eq!(s, 200);
}

#[test]
fn a_connection_over_the_shard_limit_gets_503() {
    let gw = start("max_connections_per_shard = 1\n", 1);
    // One kept-alive connection, known to be served.
    let first = TcpStream::connect(gw.addr).expect("connect");
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = std::io::BufReader::new(first.try_clone().unwrap());
    let mut w = first;
    w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (line, _) = read_message(&mut r).expect("read").expect("an answer");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // A second one is answered 503 at once and closed.
    let started = std::time::Instant::now();
    let mut second = TcpStream::connect(gw.addr).expect("connect");
    let _ = second.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_all(&mut second);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
    assert!(answer.contains("-31057"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The first still works; once it is gone, a new one is served.
    w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (line, _) = read_message(&mut r).expect("read").expect("an answer");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    drop((w, r));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (s, _, _) = request(gw.addr, "GET", "/health", &[], None).expect("health");
        if s == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still refused: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn audit_include_arguments_puts_bounded_arguments_in_the_line() {
    let audit = audit_path("arguments");
    let gw = start(
        &format!(
            "[audit]\nenabled = true\ndurability = \"strict\"\ninclude_arguments = true\npath = {:?}\n\n{DEMOS}",
            audit.to_string_lossy()
        ),
        1,
    );
    let (s, _, v) = call(
        gw.addr,
        &[],
        "tools/call",
        Some("util__echo"),
        json!({"arguments":{"message":"hello"}}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "hello", "{v}");
    let long = "x".repeat(10_000);
    let (s, _, v) = call(
        gw.addr,
        &[],
        "tools/call",
        Some("util__echo"),
        json!({"arguments":{"message":long}}),
    );
    assert_eq!(s, 200, "{v}");
    let lines = audit_lines(&audit);
    let calls: Vec<_> = lines.iter().filter(|l| l["tool"] == "echo").collect();
    assert_eq!(calls.len(), 2, "{lines:?}");
    assert_eq!(calls[0]["arguments"], json!({"message":"hello"}));
    assert!(calls[0].get("arguments_truncated").is_none());
    assert_eq!(calls[1]["arguments_truncated"], true);
    let kept = calls[1]["arguments"].as_str().unwrap_or_default();
    assert_eq!(kept.len(), 4096);
    assert!(kept.starts_with(r#"{"message":"xxx"#), "{kept}");
    // Results never are.
    assert!(!lines
        .iter()
        .any(|l| l.to_string().contains("hello") && l.get("arguments").is_none()));
    let _ = std::fs::remove_file(&audit);
}

#[test]
fn a_strict_audit_line_that_cannot_be_written_fails_the_call() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    // /dev/full opens, and every write to it fails (ENOSPC).
    let gw = start(
        &format!(
            "[audit]\nenabled = true\ndurability = \"strict\"\npath = \"/dev/full\"\n\n{DEMOS}"
        ),
        1,
    );
    let (s, _, v) = call(
        gw.addr,
        &[],
        "tools/call",
        Some("util__echo"),
        json!({"arguments":{"message":"hello"}}),
    );
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], -32603);
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("audit log") && msg.contains("failed"), "{msg}");
    assert!(v.get("result").is_none());
    let (_, _, health) = request(gw.addr, "GET", "/health", &[], None).expect("health");
    let health: Value = serde_json::from_slice(&health).expect("json");
    assert!(
        health["audit"]["errors"].as_u64().unwrap_or(0) >= 1,
        "{health}"
    );
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    // One connection per shard: the stuck client holds the only place until its write times out.
    let gw = start("max_connections_per_shard = 1\nwrite_timeout_ms = 300\n", 1);
    let stuck = TcpStream::connect(gw.addr).expect("connect");
    let mut w = stuck.try_clone().expect("clone");
    // Pipelined requests whose answers are never read: once the socket buffers fill, the
    // gateway's write cannot finish.
    let writer = std::thread::spawn(move || {
        let _ = w.set_write_timeout(Some(Duration::from_secs(5)));
        let one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        for _ in 0..200 {
            if w.write_all(&batch).is_err() {
                break;
            }
        }
    });
    // Meanwhile the place is taken (503), until the gateway gives up on the stuck client.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut refused = 0;
    let served = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the stuck client kept its place ({refused} refusals)"
        );
        let mut s = TcpStream::connect(gw.addr).expect("connect");
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = read_all(&mut s);
        if answer.starts_with("HTTP/1.1 200 ") {
            break answer;
        }
        assert!(
            answer.starts_with("HTTP/1.1 503 ") || answer.is_empty(),
            "{answer}"
        );
        refused += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(served.contains("\"status\""), "{served}");
    assert!(
        refused > 0,
        "the stuck client never held the place: the test shows nothing"
    );
    drop(stuck);
    let _ = writer.join();
}
