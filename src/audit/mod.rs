//! The audit log: one JSON line per request (time, event, key id or token subject, role, session, method, server,
//! tool, status, JSON-RPC code, duration, bytes, trace id, reason, shard) — never result contents,
//! and a tools/call's arguments only with `include_arguments` (bounded to `ARGUMENTS_MAX`).
//!
//! Shards never touch the file. Each pushes its line onto its own lock-free queue (a bounded
//! `ArrayQueue`); one writer thread drains every queue, writes, fsyncs and rotates. A full queue
//! makes the request wait (back pressure, counted), never drops a line. In `strict` durability the
//! response leaves only after the writer has fsynced its line; in `batched`, the writer fsyncs every
//! interval. A graceful stop drains every queue before the process exits.

mod writer;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use serde_json::Value;

use crate::config::{self, Durability};

/// What one request's handlers learned, for its audit line. Filled as the request passes through;
/// shard-local, so a `RefCell`. Without an audit log nothing reads it: a note made with
/// `Note::new(false)` records nothing (the names and ids copied into it cost ~700 instructions per
/// proxied call).
#[derive(Debug, Default)]
pub struct Note {
    fields: RefCell<Fields>,
    off: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Fields {
    /// `request` unless a phase says otherwise (`denied`, `blocked`).
    pub event: Option<&'static str>,
    pub key: Option<String>,
    /// The `sub` of a bearer token (OAuth).
    pub subject: Option<String>,
    pub role: Option<String>,
    pub session: Option<String>,
    pub method: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub trace: Option<String>,
    pub reason: Option<String>,
    /// The shard (1-based) that served an HTTP request; tells how connections spread.
    pub shard: Option<u16>,
    /// A tools/call's raw `arguments` (`include_arguments` only), at most `ARGUMENTS_MAX` bytes.
    pub arguments: Option<Arguments>,
}

/// Bytes of a call's arguments an audit line keeps at most.
pub const ARGUMENTS_MAX: usize = 4096;

/// A call's arguments for its audit line: whole, or their first `ARGUMENTS_MAX` bytes.
#[derive(Debug, Clone)]
pub enum Arguments {
    Whole(Value),
    Truncated(String),
}

impl Arguments {
    /// From the raw JSON of `params.arguments`.
    pub fn of(raw: &[u8]) -> Arguments {
        if raw.len() <= ARGUMENTS_MAX {
            if let Ok(v) = serde_json::from_slice(raw) {
                return Arguments::Whole(v);
            }
        }
        let cut = &raw[..raw.len().min(ARGUMENTS_MAX)];
        // Up to a character boundary (the bytes are UTF-8 JSON; one pass, whatever they hold).
        let end = std::str::from_utf8(cut).map_or_else(|e| e.valid_up_to(), str::len);
        Arguments::Truncated(String::from_utf8_lossy(&cut[..end]).into_owned())
    }
}

impl Note {
    /// A note for a request whose audit line is written only when `audited`.
    pub fn new(audited: bool) -> Note {
        Note {
            fields: RefCell::default(),
            off: !audited,
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut Fields)) {
        if !self.off {
            f(&mut self.fields.borrow_mut());
        }
    }

    pub fn take(&self) -> Fields {
        std::mem::take(&mut self.fields.borrow_mut())
    }
}

/// The rest of a line, known once the response is made.
pub struct Outcome {
    pub status: u16,
    pub code: Option<i64>,
    pub duration: Duration,
    pub bytes_in: usize,
    pub bytes_out: usize,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One JSON line (with its newline).
pub fn line(f: &Fields, o: &Outcome) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    m.insert("time_ms".into(), unix_ms().into());
    m.insert("event".into(), f.event.unwrap_or("request").into());
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v.as_str()));
        }
    };
    opt("key", &f.key);
    opt("subject", &f.subject);
    opt("role", &f.role);
    opt("session", &f.session);
    opt("method", &f.method);
    opt("server", &f.server);
    opt("tool", &f.tool);
    opt("trace_id", &f.trace);
    opt("reason", &f.reason);
    if let Some(s) = f.shard {
        m.insert("shard".into(), s.into());
    }
    match &f.arguments {
        Some(Arguments::Whole(v)) => {
            m.insert("arguments".into(), v.clone());
        }
        Some(Arguments::Truncated(s)) => {
            m.insert("arguments".into(), Value::from(s.as_str()));
            m.insert("arguments_truncated".into(), true.into());
        }
        None => {}
    }
    m.insert("status".into(), o.status.into());
    if let Some(c) = o.code {
        m.insert("code".into(), c.into());
    }
    m.insert("duration_us".into(), (o.duration.as_micros() as u64).into());
    m.insert("bytes_in".into(), o.bytes_in.into());
    m.insert("bytes_out".into(), o.bytes_out.into());
    let mut out = Value::Object(m).to_string().into_bytes();
    out.push(b'\n');
    out
}

/// A queued line; in strict mode, who to tell once it is on disk (or that it could not be put there).
struct Pending {
    line: Vec<u8>,
    done: Option<flume::Sender<Result<(), AuditFailed>>>,
}

/// A strict-mode line that did not reach the disk (a failed write, rotation or fsync): the request
/// it records must not be answered as a success.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit log: {0}")]
pub struct AuditFailed(pub std::sync::Arc<str>);

/// A running audit log and its writer thread (joined at stop).
pub type Started = (Arc<AuditLog>, std::thread::JoinHandle<()>);

/// The shared side of the audit log.
pub struct AuditLog {
    queues: Vec<ArrayQueue<Pending>>,
    durability: Durability,
    writer: OnceLock<std::thread::Thread>,
    writer_sleeping: AtomicBool,
    stopping: AtomicBool,
    /// Lines written so far.
    pub written: AtomicU64,
    /// Times a shard found its queue full and waited.
    pub waits: AtomicU64,
    /// Longest a request has waited for queue room, in µs.
    pub max_wait_us: AtomicU64,
    /// Failed writes, rotations and fsyncs (each also logged).
    pub errors: AtomicU64,
}

impl AuditLog {
    /// Start the writer thread; `None` when auditing is off.
    pub fn start(cfg: &config::Audit, shards: usize) -> Result<Option<Started>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        let file = writer::Files::open(cfg).map_err(|e| format!("audit log {}: {e}", cfg.path))?;
        let log = Arc::new(AuditLog {
            queues: (0..shards.max(1))
                .map(|_| ArrayQueue::new(cfg.queue))
                .collect(),
            durability: cfg.durability,
            writer: OnceLock::new(),
            writer_sleeping: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            written: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            max_wait_us: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let l = log.clone();
        let interval = Duration::from_millis(cfg.fsync_interval_ms.max(1));
        let handle = std::thread::Builder::new()
            .name("switchyard-audit".into())
            .spawn(move || writer::run(&l, file, interval))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        let _ = log.writer.set(handle.thread().clone());
        Ok(Some((log, handle)))
    }

    /// Queue a line from shard `shard` (0-based); waits for room, and in strict mode until the line
    /// is on disk — an `Err` then says it is not (batched mode never fails here: its errors are
    /// counted and logged by the writer).
    pub async fn record(&self, shard: usize, line: Vec<u8>) -> Result<(), AuditFailed> {
        let Some(q) = self.queues.get(shard).or_else(|| self.queues.first()) else {
            return Ok(());
        };
        let (done, wait_disk) = match self.durability {
            Durability::Strict => {
                let (tx, rx) = flume::bounded(1);
                (Some(tx), Some(rx))
            }
            Durability::Batched => (None, None),
        };
        let mut item = Pending { line, done };
        let started = std::time::Instant::now();
        let mut waited = false;
        while let Err(back) = q.push(item) {
            item = back;
            if !waited {
                waited = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            self.wake();
            monoio::time::sleep(Duration::from_micros(200)).await;
        }
        if waited {
            self.max_wait_us
                .fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        self.wake();
        match wait_disk {
            Some(rx) => rx
                .recv_async()
                .await
                .unwrap_or_else(|_| Err(AuditFailed("the audit writer stopped".into()))),
            None => Ok(()),
        }
    }

    fn wake(&self) {
        if self.writer_sleeping.load(Ordering::Acquire) {
            if let Some(t) = self.writer.get() {
                t.unpark();
            }
        }
    }

    /// Ask the writer to drain everything and stop (the caller joins its thread).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }

    /// Lines queued but not yet written.
    pub fn backlog(&self) -> usize {
        self.queues.iter().map(ArrayQueue::len).sum()
    }
}

#[cfg(test)]
mod tests;
