//! End-to-end: the real `loadtest` binary against its own native upstream.
//!
//! The main test overloads an upstream that serves one 10 ms call at a time (about 90 calls/s)
//! with 200 requests/s. An honest open-loop generator must report latencies that grow with the
//! time requests waited for their turn (seconds), while the service time of each request — what
//! a closed-loop tool would report — stays in the tens of milliseconds.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `loadtest upstream` on a free port; returns it and its URL.
fn upstream(extra: &[&str]) -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args(["upstream", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start loadtest upstream");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (guard, url)
}

fn run(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("run")
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .expect("run loadtest");
    assert!(
        out.status.success(),
        "loadtest run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn us(v: &Value, group: &str, key: &str) -> u64 {
    v[group][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{group}.{key} in {v}"))
}

#[test]
fn open_loop_latency_includes_the_time_spent_waiting() {
    let (_up, url) = upstream(&["--max-concurrent", "1"]);
    let common = [
        "--url",
        &url,
        "--agents",
        "4",
        "--warmup",
        "0s",
        "--timeout",
        "10s",
        "--mix",
        "tools/call@delay",
        "--args",
        r#"delay={"ms":10}"#,
    ];
    let mut open = common.to_vec();
    open.extend(["--rate", "200", "--duration", "3s"]);
    let v = run(&open);

    let service_p99 = us(&v, "service_us", "p99");
    let latency_p99 = us(&v, "latency_us", "p99");
    let throughput = v["throughput_rps"].as_f64().unwrap_or(0.0);
    // The server does about 90/s whatever is asked of it.
    assert!(
        throughput > 40.0 && throughput < 120.0,
        "throughput {throughput}: {v}"
    );
    assert_eq!(v["errors"], 0, "{v}");
    // Each request, once sent, waits behind at most 3 others at the server: tens of ms.
    assert!(service_p99 < 250_000, "service p99 {service_p99} µs: {v}");
    // From the intended send time, the backlog shows: over a second at p99.
    assert!(latency_p99 > 1_000_000, "latency p99 {latency_p99} µs: {v}");
    assert!(
        latency_p99 > 10 * service_p99,
        "{latency_p99} vs {service_p99}: {v}"
    );
    // Requests never sent by the end are reported, not dropped.
    assert!(v["unsent"].as_u64().unwrap_or(0) > 100, "{v}");
    // And the wait grows with time: the last second's p99 is about 3x the first's.
    let timeline = v["timeline"].as_array().expect("timeline");
    let first = timeline
        .first()
        .map_or(0, |r| r["p99_us"].as_u64().unwrap_or(0));
    let last = timeline
        .last()
        .map_or(0, |r| r["p99_us"].as_u64().unwrap_or(0));
    assert!(timeline.len() >= 3, "{v}");
    assert!(
        last > 2 * first && last > 1_000_000,
        "first {first} µs, last {last} µs: {v}"
    );

    // The same server in closed loop: no backlog can form, latency is the service time.
    let mut closed = common.to_vec();
    closed.extend(["--closed", "--duration", "1s"]);
    let c = run(&closed);
    assert!(us(&c, "latency_us", "p99") < 250_000, "{c}");
    assert!(c["unsent"] == 0 && c["mode"] == "closed", "{c}");
}

#[test]
fn both_eras_and_a_mix_against_the_native_upstream() {
    let (_up, url) = upstream(&[]);
    for era in ["2026-07-28", "legacy"] {
        let v = run(&[
            "--url",
            &url,
            "--era",
            era,
            "--agents",
            "3",
            "--connections",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rate",
            "400",
            "--mix",
            "tools/call:6,tools/list:2,tools/call@compute:1,ping:1",
        ]);
        assert_eq!(v["errors"], 0, "{era}: {v}");
        let requests = v["requests"].as_u64().unwrap_or(0);
        assert!((150..=210).contains(&requests), "{era}: {v}");
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                v["latency_us"][k].as_u64().is_some_and(|n| n > 0),
                "{era} {k}: {v}"
            );
        }
    }
    // An unknown tool is an error by kind, not a crash or a success.
    let v = run(&[
        "--url",
        &url,
        "--agents",
        "1",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--rate",
        "50",
        "--tool",
        "nope",
    ]);
    assert_eq!(v["ok"], 0, "{v}");
    assert!(
        v["errors_by_kind"]["jsonrpc_-32602"].as_u64().unwrap_or(0) >= 5,
        "{v}"
    );
}

#[test]
fn stdio_upstream_answers_discover_initialize_and_calls() {
    let mut child = Command::new(BIN)
        .args(["upstream", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start stdio upstream");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Guard(child);
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let lines = [
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#),
        r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#.to_string(),
    ];
    for l in &lines {
        writeln!(stdin, "{l}").expect("write");
    }
    stdin.flush().expect("flush");
    let mut reader = BufReader::new(stdout);
    let mut by_id = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        let v: Value = serde_json::from_str(&line).expect("JSON line");
        by_id.insert(v["id"].as_u64().unwrap_or(0), v);
    }
    assert_eq!(by_id[&1]["result"]["supportedVersions"][0], "2026-07-28");
    assert_eq!(by_id[&2]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(by_id[&3]["result"]["content"][0]["text"], "hi");
}
