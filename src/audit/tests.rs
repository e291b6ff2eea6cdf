//! Tests of the audit log: lines, rotation, and that nothing queued is lost at stop.

use super::*;

fn cfg(dir: &std::path::Path, durability: Durability, max_bytes: u64) -> config::Audit {
    config::Audit {
        enabled: true,
        path: dir.join("audit.jsonl").to_string_lossy().into_owned(),
        durability,
        fsync_interval_ms: 5,
        max_bytes,
        keep: 3,
        queue: 8,
    }
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sy-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn count_lines(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|t| {
            for l in t.lines() {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["event"], "request");
            }
            t.lines().count()
        })
        .sum()
}

fn run_through(durability: Durability, n: usize, max_bytes: u64, name: &str) -> std::path::PathBuf {
    let dir = tmpdir(name);
    let (log, handle) = AuditLog::start(&cfg(&dir, durability, max_bytes), 2)
        .unwrap()
        .unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..n {
            let f = Fields {
                method: Some("tools/call".into()),
                tool: Some(format!("t{i}")),
                ..Default::default()
            };
            let o = Outcome {
                status: 200,
                code: None,
                duration: Duration::from_micros(5),
                bytes_in: 10,
                bytes_out: 20,
            };
            log.record(i % 2, line(&f, &o)).await;
        }
    });
    log.stop();
    handle.join().unwrap();
    assert_eq!(log.written.load(Ordering::Relaxed), n as u64);
    dir
}

#[test]
fn batched_queue_smaller_than_the_load_loses_nothing() {
    // A queue of 8 and 5,000 lines: the recorder must wait for room, never drop.
    let dir = run_through(Durability::Batched, 5000, 1 << 30, "batched");
    assert_eq!(count_lines(&dir), 5000);
}

#[test]
fn strict_lines_are_on_disk_before_record_returns() {
    let dir = run_through(Durability::Strict, 300, 1 << 30, "strict");
    assert_eq!(count_lines(&dir), 300);
}

#[test]
fn rotation_keeps_n_files() {
    let dir = run_through(Durability::Batched, 3000, 16 << 10, "rotate");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 4, "the live file and 3 rotated ones");
    // The oldest lines are gone (only 3 rotated files are kept), the rest are whole.
    let kept = count_lines(&dir);
    assert!(kept > 0 && kept < 3000, "{kept}");
}
