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
        include_arguments: false,
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

fn run_through(
    durability: Durability,
    n: usize,
    max_bytes: u64,
    name: &str,
) -> (std::path::PathBuf, Arc<AuditLog>) {
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
            log.record(i % 2, line(&f, &o)).await.unwrap();
        }
    });
    log.stop();
    handle.join().unwrap();
    assert_eq!(log.written.load(Ordering::Relaxed), n as u64);
    assert_eq!(log.errors.load(Ordering::Relaxed), 0);
    (dir, log)
}

#[test]
fn batched_queue_smaller_than_the_load_loses_nothing() {
    // A queue of 8 and 5,000 lines: the recorder must wait for room, never drop.
    let (dir, log) = run_through(Durability::Batched, 5000, 1 << 30, "batched");
    assert_eq!(count_lines(&dir), 5000);
    // The lag was counted: shards found the queue full and waited.
    assert!(log.waits.load(Ordering::Relaxed) > 0);
    assert!(log.max_wait_us.load(Ordering::Relaxed) > 0);
}

#[test]
fn strict_lines_are_on_disk_before_record_returns() {
    let (dir, _) = run_through(Durability::Strict, 300, 1 << 30, "strict");
    assert_eq!(count_lines(&dir), 300);
}

#[test]
fn rotation_keeps_n_files() {
    let (dir, _) = run_through(Durability::Batched, 3000, 16 << 10, "rotate");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 4, "the live file and 3 rotated ones");
    // The oldest lines are gone (only 3 rotated files are kept), the rest are whole.
    let kept = count_lines(&dir);
    assert!(kept > 0 && kept < 3000, "{kept}");
}

/// A line per request on a device that takes no bytes (`/dev/full`: every write fails with ENOSPC).
fn record_on_full_device(durability: Durability) -> (Vec<Result<(), AuditFailed>>, Arc<AuditLog>) {
    let mut c = cfg(std::path::Path::new("/"), durability, 1 << 30);
    c.path = "/dev/full".into();
    let (log, handle) = AuditLog::start(&c, 1).unwrap().unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..3 {
            let o = Outcome {
                status: 200,
                code: None,
                duration: Duration::from_micros(5),
                bytes_in: 1,
                bytes_out: 1,
            };
            out.push(log.record(0, line(&Fields::default(), &o)).await);
        }
        out
    });
    // Batched: give the writer an interval to try its fsync.
    std::thread::sleep(Duration::from_millis(50));
    log.stop();
    handle.join().unwrap();
    (results, log)
}

#[test]
fn strict_waiters_learn_that_their_line_is_not_on_disk() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let (results, log) = record_on_full_device(Durability::Strict);
    for r in &results {
        let e = r.as_ref().expect_err("a line on /dev/full is not durable");
        assert!(e.to_string().contains("audit log"), "{e}");
    }
    assert!(log.errors.load(Ordering::Relaxed) >= 3);
}

#[test]
fn batched_write_errors_are_counted() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let (results, log) = record_on_full_device(Durability::Batched);
    assert!(
        results.iter().all(Result::is_ok),
        "batched never waits for the disk"
    );
    assert!(log.errors.load(Ordering::Relaxed) >= 1);
}

#[test]
fn arguments_are_kept_whole_or_truncated_and_marked() {
    let o = Outcome {
        status: 200,
        code: None,
        duration: Duration::from_micros(1),
        bytes_in: 1,
        bytes_out: 1,
    };
    let parse = |f: &Fields| -> Value { serde_json::from_slice(&line(f, &o)).unwrap() };
    let none = parse(&Fields::default());
    assert!(none.get("arguments").is_none());
    let small = Fields {
        arguments: Some(Arguments::of(br#"{"a":1,"b":"x"}"#)),
        ..Default::default()
    };
    let v = parse(&small);
    assert_eq!(v["arguments"], serde_json::json!({"a":1,"b":"x"}));
    assert!(v.get("arguments_truncated").is_none());
    // 10 KB of arguments, with a multi-byte character across the cut.
    let mut raw = br#"{"t":""#.to_vec();
    raw.extend(std::iter::repeat_n(b'a', ARGUMENTS_MAX - raw.len() - 1));
    raw.extend("é".repeat(3000).as_bytes());
    raw.extend_from_slice(br#""}"#);
    let big = Fields {
        arguments: Some(Arguments::of(&raw)),
        ..Default::default()
    };
    let v = parse(&big);
    assert_eq!(v["arguments_truncated"], true);
    let kept = v["arguments"].as_str().unwrap();
    assert!(
        kept.len() <= ARGUMENTS_MAX && kept.len() >= ARGUMENTS_MAX - 3,
        "{}",
        kept.len()
    );
    assert!(kept.starts_with(r#"{"t":"aaa"#));
}
