//! `loadtest stdio-floor`: a client straight to a stdio MCP server, no gateway — the ceiling for
//! any gateway put in front of the same server.
//!
//! The server is spawned, initialized once (legacy handshake, as a gateway does), then driven in
//! closed loop with `--inflight` requests pipelined over its stdin: every answer read sends the
//! next request. One thread polls both pipes (non-blocking), so the client never waits on a full
//! pipe while the server waits on it, and several answers that arrive together cost one read.
//! Latency is from the moment a request is queued to the moment its answer is read, recorded in
//! the same histograms and reported in the same JSON as `run`, so the figures line up.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::answer::{self, ErrorKind, Expect};
use crate::report::{self, IntervalRow, Report};
use crate::request::{self, Era, LineTemplate};
use crate::stats::{Completion, Recorder};
use crate::worker::Mode;

/// What `stdio-floor` runs.
#[derive(Debug, Clone)]
pub struct FloorConfig {
    /// The server's command and arguments.
    pub command: Vec<String>,
    pub inflight: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    pub tool: String,
    pub args: serde_json::Value,
    pub progress: bool,
}

/// A line longer than this is a broken server, not an answer.
const MAX_LINE: usize = 64 << 20;

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
}

/// Runs the floor measurement and returns a report shaped like `run`'s.
pub fn execute(cfg: &FloorConfig) -> Result<Report, String> {
    let (program, rest) = cfg
        .command
        .split_first()
        .ok_or("stdio-floor needs the server's command after --")?;
    let template = LineTemplate::tool_call(&cfg.tool, &cfg.args)?;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let result = drive(cfg, &template, &mut child);
    // Closing stdin asks the server to exit; it gets a moment before it is killed.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}

fn drive(cfg: &FloorConfig, template: &LineTemplate, child: &mut Child) -> Result<Report, String> {
    let mut stdin = child.stdin.take().ok_or("the server has no stdin pipe")?;
    let stdout = child.stdout.take().ok_or("the server has no stdout pipe")?;
    let mut reader = BufReader::new(stdout);
    handshake(&mut stdin, &mut reader, cfg.timeout)?;
    // Whatever the handshake read past its answer stays in `carry`.
    let carry = reader.buffer().to_vec();
    let stdout = reader.into_inner();
    set_nonblocking(&stdin)?;
    set_nonblocking(&stdout)?;
    let mut pipes = Pipes {
        stdin,
        stdout,
        out: Vec::with_capacity(64 << 10),
        out_pos: 0,
        inbuf: carry,
        scanned: 0,
        consumed: 0,
        eof: false,
    };
    let expect_echo = template.verify;
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let mut rec = Recorder::new(measure_from, end);
    let mut pending: HashMap<u64, Instant> = HashMap::with_capacity(cfg.inflight * 2);
    let mut seq: u64 = 1;
    let mut timeline = Vec::new();
    let mut next_tick = start + Duration::from_secs(1);
    let mut tick_from = start;
    let tty = io::IsTerminal::is_terminal(&io::stderr());
    let mut lines: Vec<(usize, usize)> = Vec::new();

    let now = Instant::now();
    for _ in 0..cfg.inflight {
        template.render_into(seq, &mut pipes.out);
        pending.insert(seq, now);
        seq += 1;
    }
    pipes.flush()?;
    loop {
        let now = Instant::now();
        if now >= end && pending.is_empty() {
            break;
        }
        if now >= end + cfg.timeout {
            for (_, sent) in pending.drain() {
                rec.complete(Completion {
                    reference: sent,
                    sent,
                    done: now,
                    answered: false,
                    result: Err(ErrorKind::Timeout),
                });
            }
            break;
        }
        if now >= next_tick {
            let iv = rec.take_interval(pending.len() as u64, 0);
            let secs = now.duration_since(tick_from).as_secs_f64();
            let s = iv.latency.summary();
            let t_s = now.duration_since(start).as_secs_f64();
            let row = IntervalRow {
                t_s,
                warmup: tick_from < measure_from,
                ok: iv.ok,
                errors: iv.errors,
                rps: if secs > 0.0 { iv.ok as f64 / secs } else { 0.0 },
                p50_us: s.p50,
                p99_us: s.p99,
                max_us: s.max,
                inflight: iv.inflight,
                queued: 0,
            };
            if cfg.progress {
                let line = report::progress_line("", &row);
                let mut err = io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
            }
            timeline.push(row);
            tick_from = now;
            next_tick += Duration::from_secs(1);
        }
        if pipes.eof {
            return Err(format!(
                "the server closed its stdout with {} request(s) unanswered",
                pending.len()
            ));
        }
        let wait = next_tick
            .min(end.max(now))
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        pipes.poll(wait)?;
        pipes.flush()?;
        pipes.fill()?;
        let done = Instant::now();
        pipes.take_lines(&mut lines)?;
        for &(from, to) in &lines {
            let line = &pipes.inbuf[from..to];
            let Ok(head) = serde_json::from_slice::<Head<'_>>(line) else {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    *rec.totals.errors.entry(ErrorKind::Protocol).or_default() += 1;
                }
                continue;
            };
            match (head.method, head.id) {
                // A request from the server (none expected): refused, so it does not wait.
                (Some(_), Some(id)) => {
                    let _ = write!(
                        pipes.out,
                        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-32601,"message":"not supported by loadtest"}}}}"#,
                        id.get()
                    );
                    pipes.out.push(b'\n');
                }
                (Some(_), None) => {} // a notification
                (None, id) => {
                    let Some(id) = id.and_then(|r| r.get().trim().parse::<u64>().ok()) else {
                        *rec.totals.errors.entry(ErrorKind::Protocol).or_default() += 1;
                        continue;
                    };
                    let Some(sent) = pending.remove(&id) else {
                        *rec.totals.errors.entry(ErrorKind::Mismatch).or_default() += 1;
                        continue;
                    };
                    let expect = Expect {
                        id,
                        echo_seq: expect_echo,
                        tool_call: true,
                    };
                    rec.complete(Completion {
                        reference: sent,
                        sent,
                        done,
                        answered: true,
                        result: answer::classify(200, false, line, expect),
                    });
                    if done < end {
                        template.render_into(seq, &mut pipes.out);
                        pending.insert(seq, done);
                        seq += 1;
                    }
                }
            }
        }
        pipes.consume_lines();
        pipes.flush()?;
    }
    if cfg.progress && tty {
        eprintln!();
    }
    let window = cfg.duration.as_secs_f64();
    let throughput_rps = rec.totals.ok_in_window as f64 / window.max(f64::MIN_POSITIVE);
    Ok(Report {
        url: format!("stdio:{}", cfg.command.join(" ")),
        era: Era::Legacy,
        mode: Mode::Closed,
        agents: cfg.inflight,
        connections: 1,
        threads: 1,
        duration: cfg.duration,
        warmup: cfg.warmup,
        totals: rec.totals,
        throughput_rps,
        timeline,
    })
}

/// `initialize` (blocking, before the clock starts), then `notifications/initialized`.
fn handshake(
    stdin: &mut ChildStdin,
    reader: &mut BufReader<ChildStdout>,
    timeout: Duration,
) -> Result<(), String> {
    let fail = |what: &str, e: io::Error| format!("{what}: {e}");
    stdin
        .write_all(&request::initialize_line())
        .and_then(|()| stdin.flush())
        .map_err(|e| match e.kind() {
            // The server closed its stdin: it exited (or is exiting) without reading a line.
            io::ErrorKind::BrokenPipe => {
                "the server exited before answering initialize (its stdin closed)".to_owned()
            }
            _ => fail("cannot write initialize", e),
        })?;
    let deadline = Instant::now() + timeout.max(Duration::from_secs(5));
    let mut line = Vec::new();
    loop {
        line.clear();
        // A server that never answers blocks here; the caller's own timeout (the script's) ends it.
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| fail("cannot read the initialize answer", e))?;
        if n == 0 {
            return Err("the server exited before answering initialize".into());
        }
        let Ok(head) = serde_json::from_slice::<Head<'_>>(&line) else {
            continue; // a log line on stdout: skipped
        };
        if head.method.is_none() && head.id.is_some_and(|id| id.get().trim() == "0") {
            let expect = Expect {
                id: 0,
                echo_seq: false,
                tool_call: false,
            };
            answer::classify(200, false, &line, expect)
                .map_err(|k| format!("initialize answered {k}"))?;
            break;
        }
        if Instant::now() > deadline {
            return Err("no initialize answer in time".into());
        }
    }
    stdin
        .write_all(request::INITIALIZED_LINE)
        .and_then(|()| stdin.flush())
        .map_err(|e| fail("cannot write notifications/initialized", e))
}

/// Both pipes, non-blocking, with their buffers.
struct Pipes {
    stdin: ChildStdin,
    stdout: ChildStdout,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    /// How far `inbuf` has been searched for line ends.
    scanned: usize,
    /// The bytes of the lines `take_lines` handed out.
    consumed: usize,
    eof: bool,
}

impl Pipes {
    /// Waits until stdout is readable or stdin writable (when there is output), or `wait` passes.
    fn poll(&mut self, wait: Duration) -> Result<(), String> {
        let mut fds = [
            libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stdin.as_raw_fd(),
                events: if self.out_pos < self.out.len() {
                    libc::POLLOUT
                } else {
                    0
                },
                revents: 0,
            },
        ];
        let ms = wait.as_millis().min(1_000) as libc::c_int;
        // Safety: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != IoKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        Ok(())
    }

    /// Writes as much queued output as the pipe takes.
    fn flush(&mut self) -> Result<(), String> {
        while self.out_pos < self.out.len() {
            match self.stdin.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err("the server's stdin is closed".into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(format!("writing to the server: {e}")),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Reads what the pipe holds.
    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 64 << 10];
        loop {
            match self.stdout.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(format!("reading from the server: {e}")),
            }
        }
    }

    /// The complete lines in `inbuf` (byte ranges, newline excluded); `consume_lines` drops them.
    fn take_lines(&mut self, lines: &mut Vec<(usize, usize)>) -> Result<(), String> {
        lines.clear();
        // Everything before `scanned` is the start of an unfinished line: search only the rest.
        let mut from = 0;
        for i in memchr::memchr_iter(b'\n', &self.inbuf[self.scanned..]) {
            let end = self.scanned + i;
            lines.push((from, end));
            from = end + 1;
        }
        self.consumed = from;
        if self.inbuf.len() - from > MAX_LINE {
            return Err(format!("the server sent a line over {MAX_LINE} bytes"));
        }
        Ok(())
    }

    fn consume_lines(&mut self) {
        self.inbuf.drain(..self.consumed);
        self.scanned = self.inbuf.len();
        self.consumed = 0;
    }
}

fn set_nonblocking(fd: &impl AsRawFd) -> Result<(), String> {
    let fd = fd.as_raw_fd();
    // Safety: fcntl on a file descriptor this process owns (a child's pipe end) for the call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // Safety: as above; only O_NONBLOCK is added to the descriptor's flags.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(format!(
            "cannot make a pipe non-blocking: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}
