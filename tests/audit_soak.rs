//! The audit log under load: 100,000 calls with rotation every 300 KB lose no line, every line is
//! JSON; and in strict mode a SIGKILL mid-load loses no line of any call that was answered — each
//! call carries its own W3C trace id, and every answered one is found on disk.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn config(dir: &std::path::Path, durability: &str) -> String {
    format!(
        "[audit]\nenabled = true\npath = \"{}\"\ndurability = \"{durability}\"\nmax_bytes = 300000\nkeep = 100000\nfsync_interval_ms = 50\n\n{DEMOS}",
        dir.join("audit.jsonl").display()
    )
}

fn audit_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sy-soak-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// The trace ids of every line of every audit file, checking each line is JSON with the fields a
/// line must have; and the number of files.
fn traces_on_disk(dir: &std::path::Path) -> (Vec<String>, usize) {
    let mut traces = Vec::new();
    let mut files = 0;
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        files += 1;
        let text = std::fs::read_to_string(e.path()).expect("read");
        for l in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|err| panic!("not JSON ({err}): {l:?}"));
            assert!(
                v["time_ms"].is_u64() && v["status"].is_u64() && v["event"].is_string(),
                "{l}"
            );
            let t = v["trace_id"]
                .as_str()
                .unwrap_or_else(|| panic!("every call sent a traceparent: {l}"));
            traces.push(t.to_owned());
        }
    }
    (traces, files)
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"util__echo","arguments":{"message":"soak"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

/// Drive calls from `threads` connections until `stop` or `each` calls each, every call with its
/// own trace id; the trace ids of the calls answered.
fn load(gw: &Gateway, threads: usize, each: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, stop) = (gw.addr, stop.clone());
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                let Ok(mut c) = KeepAlive::connect(addr) else {
                    return answered;
                };
                for i in 0..each {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let trace = format!("{:08x}{:024x}", t + 1, i);
                    let tp = format!("00-{trace}-00000000000000ab-01");
                    let headers = [
                        ("MCP-Protocol-Version", "2026-07-28"),
                        ("Mcp-Method", "tools/call"),
                        ("Mcp-Name", "util__echo"),
                        ("traceparent", tp.as_str()),
                    ];
                    match c.post(&headers, CALL) {
                        Ok((200, body)) if body.windows(9).any(|w| w == b"\"result\":") => {
                            answered.push(trace);
                        }
                        Ok((s, body)) => {
                            panic!("unexpected answer {s}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(_) => break, // the gateway went away
                    }
                }
                answered
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect()
}

#[test]
fn hundred_thousand_calls_rotated_every_300kb_lose_no_line() {
    let dir = audit_dir("batched");
    let mut gw = start(&config(&dir, "batched"), 2);
    let started = Instant::now();
    let answered = load(&gw, 4, 25_000, Arc::new(AtomicBool::new(false)));
    let took = started.elapsed();
    assert_eq!(answered.len(), 100_000);
    // A graceful stop drains the queues.
    // Safety: signalling our own child.
    unsafe { libc::kill(gw.child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut traces, files) = traces_on_disk(&dir);
    let lines = traces.len();
    eprintln!(
        "{} calls in {took:?}; {lines} audit lines in {files} files",
        answered.len()
    );
    assert_eq!(lines, answered.len(), "lines on disk = calls answered");
    assert!(files > 10, "rotation happened ({files} files)");
    // … and they are those calls' lines, once each.
    let mut answered = answered;
    traces.sort_unstable();
    answered.sort_unstable();
    assert!(
        traces == answered,
        "the lines on disk are not the answered calls'"
    );
}

#[test]
fn strict_mode_loses_no_answered_line_to_sigkill() {
    let dir = audit_dir("strict");
    let mut gw = start(&config(&dir, "strict"), 2);
    let stop = Arc::new(AtomicBool::new(false));
    let pid = gw.child.id();
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            // Safety: SIGKILL to our own child, mid-load.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            stop.store(true, Ordering::Relaxed);
        })
    };
    let answered = load(&gw, 4, usize::MAX, stop);
    let _ = killer.join();
    let _ = gw.child.wait();
    let (traces, _) = traces_on_disk(&dir);
    eprintln!(
        "answered {}, lines on disk {}",
        answered.len(),
        traces.len()
    );
    assert!(answered.len() > 100, "the load ran ({})", answered.len());
    // Every answered call has its line (found by its trace id); calls in flight at the kill may
    // have one too.
    let on_disk: std::collections::HashSet<&str> = traces.iter().map(String::as_str).collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|t| !on_disk.contains(t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} answered calls have no line, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert!(traces.len() >= answered.len());
}
