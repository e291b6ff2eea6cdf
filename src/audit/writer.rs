//! The audit writer thread: drains the shards' queues into the file, fsyncs as the durability mode
//! says, rotates by size keeping N files.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{AuditFailed, AuditLog};
use crate::config::{self, Durability};

pub struct Files {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl Files {
    pub fn open(cfg: &config::Audit) -> std::io::Result<Files> {
        let path = PathBuf::from(&cfg.path);
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = f.metadata()?.len();
        Ok(Files {
            path,
            out: BufWriter::with_capacity(256 << 10, f),
            size,
            max_bytes: cfg.max_bytes,
            keep: cfg.keep,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Close the current file (synced), shift `.1`… up by one (the oldest beyond `keep` goes),
    /// and start a new file.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.sync()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            // `.1`… `.top` exist (rotation keeps them contiguous): probe and shift only those,
            // not `keep` names (a large `keep` made each rotation that many `stat`s).
            let mut top = 0;
            while top < self.keep && self.rotated(top + 1).exists() {
                top += 1;
            }
            for n in (1..=top.min(self.keep - 1)).rev() {
                std::fs::rename(self.rotated(n), self.rotated(n + 1))?;
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(256 << 10, f);
        self.size = 0;
        // Make the renames themselves durable.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

pub fn run(log: &AuditLog, mut files: Files, interval: Duration) {
    let mut last_sync = Instant::now();
    let mut dirty = false;
    let mut waiting: Vec<flume::Sender<Result<(), AuditFailed>>> = Vec::new();
    // The first failure since the last fsync: every strict waiter of that span learns of it.
    let mut failed: Option<String> = None;
    let fail = |what: &str, e: std::io::Error, failed: &mut Option<String>| {
        log.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!("audit log {what} failed: {e}");
        failed.get_or_insert_with(|| format!("{what} failed: {e}"));
    };
    loop {
        let mut drained = 0usize;
        for q in &log.queues {
            while let Some(p) = q.pop() {
                if let Err(e) = files.out.write_all(&p.line) {
                    fail("write", e, &mut failed);
                }
                files.size += p.line.len() as u64;
                if let Some(d) = p.done {
                    waiting.push(d);
                }
                drained += 1;
                if files.size >= files.max_bytes {
                    if let Err(e) = files.rotate() {
                        fail("rotation", e, &mut failed);
                    }
                    last_sync = Instant::now();
                }
            }
        }
        if drained > 0 {
            log.written.fetch_add(drained as u64, Ordering::Relaxed);
            dirty = true;
        }
        let strict = log.durability == Durability::Strict;
        if dirty && ((strict && !waiting.is_empty()) || last_sync.elapsed() >= interval) {
            if let Err(e) = files.sync() {
                fail("fsync", e, &mut failed);
            }
            dirty = false;
            last_sync = Instant::now();
            tell(&mut waiting, failed.take());
        }
        if drained == 0 {
            if log.stopping.load(Ordering::Acquire) && log.backlog() == 0 {
                if let Err(e) = files.sync() {
                    fail("fsync", e, &mut failed);
                }
                tell(&mut waiting, failed.take());
                return;
            }
            log.writer_sleeping.store(true, Ordering::Release);
            // Re-check after announcing sleep, so a push in between is not missed.
            if log.backlog() == 0 {
                let wait = if dirty {
                    interval.saturating_sub(last_sync.elapsed())
                } else {
                    interval
                };
                std::thread::park_timeout(wait.max(Duration::from_micros(100)));
            }
            log.writer_sleeping.store(false, Ordering::Release);
        }
    }
}

/// Answer the strict waiters of one fsync span: on disk, or the failure that kept a line off it.
fn tell(waiting: &mut Vec<flume::Sender<Result<(), AuditFailed>>>, failed: Option<String>) {
    let res = match failed {
        None => Ok(()),
        Some(msg) => Err(AuditFailed(msg.into())),
    };
    for d in waiting.drain(..) {
        let _ = d.send(res.clone());
    }
}
