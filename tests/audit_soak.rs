//! The audit log under load: 100,000 calls with rotation every 300 KB lose no line, every line is
//! JSON; and in strict mode a SIGKILL mid-load loses no line of any call that was answered.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Count the lines of every audit file, checking each is JSON with the fields a line must have.
fn lines_on_disk(dir: &std::path::Path) -> (usize, usize) {
    let mut lines = 0;
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
            lines += 1;
        }
    }
    (lines, files)
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"util__echo","arguments":{"message":"soak"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
const HEADERS: [(&str, &str); 3] = [
    ("MCP-Protocol-Version", "2026-07-28"),
    ("Mcp-Method", "tools/call"),
    ("Mcp-Name", "util__echo"),
];

/// Drive calls from `threads` connections until `stop` or `each` calls each; counts answers.
fn load(gw: &Gateway, threads: usize, each: usize, stop: Arc<AtomicBool>) -> usize {
    let answered = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, answered, stop) = (gw.addr, answered.clone(), stop.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = KeepAlive::connect(addr) else {
                    return;
                };
                for _ in 0..each {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match c.post(&HEADERS, CALL) {
                        Ok((200, body)) if body.windows(9).any(|w| w == b"\"result\":") => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((s, body)) => {
                            panic!("unexpected answer {s}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(_) => return, // the gateway went away
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    answered.load(Ordering::Relaxed)
}

#[test]
fn hundred_thousand_calls_rotated_every_300kb_lose_no_line() {
    let dir = audit_dir("batched");
    let mut gw = start(&config(&dir, "batched"), 2);
    let started = Instant::now();
    let answered = load(&gw, 4, 25_000, Arc::new(AtomicBool::new(false)));
    let took = started.elapsed();
    assert_eq!(answered, 100_000);
    // A graceful stop drains the queues.
    // Safety: signalling our own child.
    unsafe { libc::kill(gw.child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (lines, files) = lines_on_disk(&dir);
    eprintln!("{answered} calls in {took:?}; {lines} audit lines in {files} files");
    assert_eq!(lines, answered, "lines on disk = calls answered");
    assert!(files > 10, "rotation happened ({files} files)");
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
    let (lines, _) = lines_on_disk(&dir);
    eprintln!("answered {answered}, lines on disk {lines}");
    assert!(answered > 100, "the load ran ({answered})");
    // Every answered call has its line; calls in flight at the kill may have one too.
    assert!(
        lines >= answered,
        "lost lines: {answered} answered, {lines} on disk"
    );
}
