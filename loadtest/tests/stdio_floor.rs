//! End-to-end: `loadtest stdio-floor` against the native upstream over stdio.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");

fn floor(extra: &[&str], server: &[&str]) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .args(["stdio-floor", "--json", "--quiet", "--warmup", "200ms"])
        .args(extra)
        .arg("--")
        .args(server)
        .output()
        .expect("run loadtest stdio-floor");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

#[test]
fn pipelined_calls_are_answered_and_checked() {
    let (ok, r, err) = floor(
        &["--inflight", "4", "--duration", "1s"],
        &[BIN, "upstream", "--stdio"],
    );
    assert!(ok, "{err}");
    assert_eq!(r["errors"], 0, "{r}");
    let done = r["ok"].as_u64().unwrap();
    assert!(done > 500, "only {done} calls in a second: {r}");
    assert!(r["throughput_rps"].as_f64().unwrap() > 500.0, "{r}");
    let lat = &r["latency_us"];
    let (p50, p99) = (lat["p50"].as_u64().unwrap(), lat["p99"].as_u64().unwrap());
    assert!(p50 >= 1 && p50 <= p99, "{r}");
    assert_eq!(r["agents"], 4);
}

#[test]
fn an_answer_without_the_sequence_number_is_a_mismatch() {
    // `delay` answers without echoing its arguments, so `${seq}` cannot come back.
    let (ok, r, err) = floor(
        &[
            "--duration",
            "300ms",
            "--tool",
            "delay",
            "--args",
            r#"{"ms":0,"note":"${seq}"}"#,
        ],
        &[BIN, "upstream", "--stdio"],
    );
    assert!(ok, "{err}");
    assert_eq!(r["ok"], 0, "{r}");
    assert!(r["errors_by_kind"]["mismatch"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn a_server_that_exits_is_an_error_not_a_result() {
    let (ok, _, err) = floor(&["--duration", "1s"], &["true"]);
    assert!(!ok);
    assert!(err.contains("exited before answering initialize"), "{err}");
}
