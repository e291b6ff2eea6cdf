//! End-to-end checks of the gateway binary that need nothing but the binary: its built-in demo
//! servers are the upstreams.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn a_session_is_served_by_every_shard_until_deleted() {
    let gw = start(DEMOS, 2);
    let sid = initialize(gw.addr);
    // New connections spread over both shards (SO_REUSEPORT hashes the client port); every one
    // must know the session.
    for i in 0..40 {
        let (s, _, v) = post(
            gw.addr,
            &[("Mcp-Session-Id", &sid)],
            &json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"util__echo","arguments":{"message":format!("m{i}")}}}),
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["id"], i);
        assert_eq!(v["result"]["content"][0]["text"], format!("m{i}"));
    }
    let (s, _, _) =
        request(gw.addr, "DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], None).expect("delete");
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..20 {
        let (s, _, v) = post(
            gw.addr,
            &[("Mcp-Session-Id", &sid)],
            &json!({"jsonrpc":"2.0","id":i,"method":"tools/list"}),
        );
        assert_eq!(s, 404, "{v}");
    }
}

#[test]
fn modern_requests_need_no_session_and_are_checked_against_headers() {
    let gw = start(DEMOS, 2);
    let meta = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let call = json!({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"util__add","arguments":{"a":2,"b":40},"_meta":meta}});
    let good = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "util__add"),
    ];
    for _ in 0..10 {
        let (s, _, v) = post(gw.addr, &good, &call);
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"]["structuredContent"]["sum"], 42);
        assert_eq!(v["result"]["resultType"], "complete");
    }
    // Header disagreeing with the body, or missing.
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "util__echo"),
        ],
        &call,
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(-32020)), "{v}");
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Name", "util__add"),
        ],
        &call,
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(-32020)), "{v}");
    // A version the gateway does not speak.
    let old = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}});
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2099-01-01"),
            ("Mcp-Method", "tools/list"),
        ],
        &old,
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(-32022)), "{v}");
    assert_eq!(v["error"]["data"]["supported"][0], "2026-07-28");
    // A method the gateway does not implement is a 404 in this revision.
    let m = json!({"jsonrpc":"2.0","id":2,"method":"nope/nope","params":{"_meta":meta}});
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "nope/nope"),
        ],
        &m,
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (404, Some(-32601)), "{v}");
    // server/discover describes the gateway.
    let d = json!({"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta":meta}});
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
        &d,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["supportedVersions"][0], "2026-07-28");
    assert!(v["result"]["capabilities"]["tools"].is_object());
    assert!(v["result"]["instructions"]
        .as_str()
        .unwrap_or("")
        .contains("## util"));
}

#[test]
fn a_dead_server_is_named_in_the_error_and_the_others_still_work() {
    let servers = format!("{DEMOS}\n[[servers]]\nname = \"broken\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"exit 3\"]\n");
    let gw = start(&servers, 1);
    let (_, _, body) = request(gw.addr, "GET", "/health", &[], None).expect("health");
    let h: Value = serde_json::from_slice(&body).expect("health json");
    assert_eq!(h["status"], "degraded");
    let broken = h["upstreams"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == "broken"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(broken["state"], "down", "{h}");
    let sid = initialize(gw.addr);
    let started = Instant::now();
    let (s, _, v) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid)],
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"broken__anything","arguments":{}}}),
    );
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    assert_eq!((s, v["error"]["code"].as_i64()), (502, Some(-31050)), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"broken\""),
        "{v}"
    );
    let (s, _, v) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid)],
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes__list_notes","arguments":{}}}),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        v["result"]["structuredContent"]["notes"]
            .as_array()
            .is_some_and(|n| n.len() >= 3),
        "{v}"
    );
}

#[test]
fn sigterm_drains_an_in_flight_call_then_exits_cleanly() {
    let mut gw = start(DEMOS, 1);
    let sid = initialize(gw.addr);
    let addr = gw.addr;
    let slow = std::thread::spawn(move || {
        post(
            addr,
            &[("Mcp-Session-Id", &sid)],
            &json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"util__sleep_ms","arguments":{"ms":700}}}),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    // Safety: signalling our own child process.
    unsafe { libc::kill(gw.child.id() as libc::pid_t, libc::SIGTERM) };
    let (s, _, v) = slow.join().expect("the slow call");
    assert_eq!(s, 200, "{v}");
    assert!(v["result"].is_object(), "the in-flight call completed: {v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gw.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    // New connections are refused once it is gone.
    assert!(TcpStream::connect(gw.addr).is_err());
}

#[test]
fn garbage_never_takes_a_shard_down() {
    let gw = start(DEMOS, 1);
    let sid = initialize(gw.addr);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x00\xff\xfe".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"util__echo\",\"arguments\":".to_vec(),
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":17}}".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"zzz://none\"}}".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{\"ref\":{\"type\":\"ref/prompt\",\"name\":\"nope\"}}}".to_vec(),
        "{\"jsonrpc\":\"2.0\",\"id\":\"\u{1F600}\",\"method\":\"tools/call\",\"params\":{\"name\":\"util__echo\",\"arguments\":{\"message\":\"\\ud83d\\ude00\"}}}".as_bytes().to_vec(),
    ];
    for b in &bodies {
        let mut h: Vec<(&str, &str)> = JSON.to_vec();
        h.push(("Mcp-Session-Id", &sid));
        let (s, _, body) = request(gw.addr, "POST", "/mcp", &h, Some(b)).expect("answered");
        assert!(
            s == 200 || (400..500).contains(&s),
            "status {s} for {:?}",
            String::from_utf8_lossy(b)
        );
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("JSON body for {:?}", String::from_utf8_lossy(b)));
        assert_eq!(v["jsonrpc"], "2.0");
    }
    // Malformed HTTP.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.write_all(b"NONSENSE\r\n\r\n").expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    // Still serving.
    let (s, _, v) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid)],
        &json!({"jsonrpc":"2.0","id":5,"method":"ping"}),
    );
    assert_eq!((s, &v["result"]), (200, &json!({})));
}

/// The connection's one read timer (reset for each request): a connection in use stays open past
/// the idle timeout, a call longer than it does not end the connection, an idle one is closed
/// once the timeout has passed since its last request.
#[test]
fn the_idle_timeout_follows_each_request_of_a_connection() {
    let gw = start(&format!("idle_timeout_ms = 400\n\n{DEMOS}"), 1);
    let s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let health = |w: &mut TcpStream, r: &mut std::io::BufReader<TcpStream>| {
        w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (line, _) = read_message(r).unwrap().expect("an answer");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    };
    // 1.25 s of requests 250 ms apart on one connection: each moves the deadline.
    for _ in 0..5 {
        health(&mut w, &mut r);
        std::thread::sleep(Duration::from_millis(250));
    }
    // A call that outlasts the idle timeout, then another request on the same connection.
    let meta = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"util__sleep_ms","arguments":{"ms":700},"_meta":meta}}).to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: util__sleep_ms\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes()).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    let (line, answer) = read_message(&mut r).unwrap().expect("the call's answer");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let v: Value = serde_json::from_slice(&answer).unwrap();
    assert!(v["result"].is_object(), "{v}");
    health(&mut w, &mut r);
    // Idle now: closed after the timeout, not before.
    let idle = Instant::now();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("closed, not timed out");
    // (With an idle timeout below the 30 s request timeout the gateway says 408 as it closes.)
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest}"
    );
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}
