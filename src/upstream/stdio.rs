//! stdio upstreams: one persistent child process per server, JSON-RPC multiplexed over its pipes.
//!
//! Pipe IO runs on two plain threads per child (a writer draining a channel, a reader routing each
//! reply to the lane whose id it carries), plus one forwarding stderr to the log with the server's
//! name. Pipes are not sockets: monoio's epoll driver cannot poll them and io_uring would need the
//! child homed on one shard, so blocking threads are the portable choice, and they route replies
//! straight to the requesting shard with no extra hop.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::{Call, Status, Upstream};
use crate::config;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{request_with_id, Frame, Kind};
use crate::shard::lane::{split_id, Lane};
use crate::shard::{ControlMsg, LaneMsg, Shared};

/// Longest line accepted from a child (a bigger reply is refused, the child is restarted).
const MAX_LINE: usize = 64 << 20;

#[derive(Default)]
pub struct StdioUpstream {
    conn: ArcSwapOption<StdioConn>,
    generations: AtomicU64,
}

/// One running child.
pub struct StdioConn {
    tx: flume::Sender<Out>,
    pub generation: u64,
    pub pid: u32,
}

/// A line for the child's stdin; a request also tells the writer whose it is, so the reader can tell
/// which client a server-to-client message belongs to (stdio carries no such link itself).
struct Out {
    line: Vec<u8>,
    /// (id, origin) of a request written.
    track: Option<(u64, u64)>,
    /// A request given up on (its cancellation is the line).
    untrack: Option<u64>,
}

/// Requests written to the child and not yet answered: upstream id → origin (a client session or a
/// single call; 0 for the gateway's own requests), with the order they were written. Owned by the
/// reader thread; the writer tells it of each request before writing it, so it is always known
/// before its answer can arrive.
#[derive(Default)]
struct InFlight {
    calls: hashbrown::HashMap<u64, (u64, u64)>,
    order: u64,
}

/// Where an unlinked message from the child goes.
enum Origin {
    /// The most recent request of the only client with requests in flight.
    Call(u64),
    /// No client request is in flight.
    Nobody,
    /// Requests of several clients are in flight: there is no telling which one it is for.
    Ambiguous(usize),
}

/// What the writer tells the reader.
enum Track {
    Sent { id: u64, origin: u64 },
    GaveUp(u64),
}

impl InFlight {
    fn apply(&mut self, t: Track) {
        match t {
            Track::Sent { id, origin } => {
                self.order += 1;
                self.calls.insert(id, (origin, self.order));
            }
            Track::GaveUp(id) => {
                self.calls.remove(&id);
            }
        }
    }

    fn origin(&self) -> Origin {
        let mut owner = None;
        let mut latest = (0u64, 0u64);
        let mut clients = hashbrown::HashSet::new();
        for (id, (origin, order)) in &self.calls {
            if *origin == 0 {
                continue;
            }
            clients.insert(*origin);
            if *order >= latest.1 {
                latest = (*id, *order);
                owner = Some(*origin);
            }
        }
        match (clients.len(), owner) {
            (0, _) | (_, None) => Origin::Nobody,
            (1, Some(_)) => Origin::Call(latest.0),
            (n, _) => Origin::Ambiguous(n),
        }
    }
}

impl StdioUpstream {
    /// Start the child and its pipe threads. The handshake is the caller's next step.
    pub fn spawn(&self, shared: &Arc<Shared>, up: &Arc<Upstream>) -> std::io::Result<u64> {
        let config::Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } = &up.config.transport
        else {
            return Err(std::io::Error::other("not a stdio server"));
        };
        let mut cmd = Command::new(command);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        // Own process group: a Ctrl-C at the terminal reaches the gateway, which drains and then
        // stops the children itself, instead of killing them under in-flight requests.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // Safety: prctl is async-signal-safe; it only asks the kernel to SIGTERM the child if the
        // spawning (control) thread dies, so children never outlive a killed gateway.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(std::io::Error::other("child pipes missing"));
        };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = flume::unbounded::<Out>();
        let pid = child.id();
        let name = up.name.clone();
        let (track_tx, track_rx) = flume::unbounded::<Track>();
        std::thread::Builder::new()
            .name(format!("{name}-stdin"))
            .spawn(move || writer(stdin, rx, &track_tx))?;
        let n = up.name.clone();
        std::thread::Builder::new()
            .name(format!("{name}-stderr"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    match line {
                        Ok(l) => tracing::info!(server = %n, "{l}"),
                        Err(_) => break,
                    }
                }
            })?;
        let (shared2, up2, tx2) = (shared.clone(), up.clone(), tx.clone());
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                reader(&shared2, &up2, generation, stdout, &tx2, &track_rx);
                let status = child.wait();
                let reason = match status {
                    Ok(s) => format!("process exited ({s})"),
                    Err(e) => format!("process lost: {e}"),
                };
                gone(&shared2, &up2, generation, reason);
            })?;
        self.conn.store(Some(Arc::new(StdioConn {
            tx,
            generation,
            pid,
        })));
        Ok(generation)
    }

    pub fn pid(&self) -> Option<u32> {
        self.conn.load().as_ref().map(|c| c.pid)
    }

    /// Ask the child to stop (SIGTERM); the reader thread sees it go.
    pub fn terminate(&self) {
        if let Some(c) = self.conn.load_full() {
            // Safety: plain kill(2) on a pid we spawned; a stale pid is the only risk and the
            // reader thread reaps the child, so it stays ours until then.
            unsafe {
                libc::kill(c.pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Send one request and await its reply, whatever the upstream's status (the handshake uses this).
    pub async fn request(
        &self,
        lane: &Lane,
        up: &Upstream,
        method: &str,
        params: Option<&[u8]>,
        deadline: Instant,
        call: &Call<'_>,
    ) -> Result<Frame, Error> {
        let Some(conn) = self.conn.load_full() else {
            return Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            ));
        };
        let id = call.id;
        let mut line = request_with_id(Some(id), method, params);
        line.push(b'\n');
        let waiter = lane.expect(id, up.index);
        let out = Out {
            line,
            track: Some((id, call.origin)),
            untrack: None,
        };
        if conn.tx.send(out).is_err() {
            lane.forget(id);
            return Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            ));
        }
        // Dropped before the reply (the client went away): tell the server to stop working on it.
        let mut cancel = CancelOnDrop {
            conn: &conn,
            lane,
            id,
            reason: "switchyard: the client went away",
        };
        let res = lane
            .wait(
                waiter,
                deadline.saturating_duration_since(Instant::now()),
                &up.name,
                call.on_interim,
            )
            .await;
        match &res {
            Err(e) if e.kind == ErrorKind::UpstreamTimeout => {
                cancel.reason = "switchyard: request timed out"
            }
            _ => cancel.id = 0,
        }
        res
    }

    /// Send a request and return what to wait on, without waiting (a held call keeps the waiter).
    pub fn send_request(
        &self,
        lane: &Lane,
        up: &Upstream,
        method: &str,
        params: Option<&[u8]>,
        call: &Call<'_>,
    ) -> Result<crate::shard::lane::Waiter, Error> {
        let not_running = || {
            Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            )
        };
        let conn = self.conn.load_full().ok_or_else(not_running)?;
        let mut line = request_with_id(Some(call.id), method, params);
        line.push(b'\n');
        let waiter = lane.expect(call.id, up.index);
        let out = Out {
            line,
            track: Some((call.id, call.origin)),
            untrack: None,
        };
        if conn.tx.send(out).is_err() {
            lane.forget(call.id);
            return Err(not_running());
        }
        Ok(waiter)
    }

    /// Give up on request `id` (a held call that expired): the server is told to stop.
    pub fn cancel(&self, lane: &Lane, id: u64, reason: &'static str) {
        if let Some(conn) = self.conn.load_full() {
            drop(CancelOnDrop {
                conn: &conn,
                lane,
                id,
                reason,
            });
        }
    }

    /// Send a notification (no reply).
    pub fn notify(&self, method: &str, params: Option<&[u8]>) -> bool {
        let mut line = request_with_id(None, method, params);
        line.push(b'\n');
        self.send_line(line)
    }

    /// Write one complete message line (a response to a server request, say).
    pub fn send_line(&self, line: Vec<u8>) -> bool {
        let Some(conn) = self.conn.load_full() else {
            return false;
        };
        conn.tx
            .send(Out {
                line,
                track: None,
                untrack: None,
            })
            .is_ok()
    }
}

/// Sends `notifications/cancelled` for a request that did not complete (`id` 0 once it did).
struct CancelOnDrop<'a> {
    conn: &'a StdioConn,
    lane: &'a Lane,
    id: u64,
    reason: &'static str,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        self.lane.forget(self.id);
        let params = format!(
            "{{\"requestId\":{},\"reason\":\"{}\"}}",
            self.id, self.reason
        );
        let mut line = request_with_id(None, "notifications/cancelled", Some(params.as_bytes()));
        line.push(b'\n');
        let _ = self.conn.tx.send(Out {
            line,
            track: None,
            untrack: Some(self.id),
        });
    }
}

fn writer(
    mut stdin: std::process::ChildStdin,
    rx: flume::Receiver<Out>,
    inflight: &flume::Sender<Track>,
) {
    let mut batch = Vec::with_capacity(64 << 10);
    let track = |out: &Out| {
        if let Some((id, origin)) = out.track {
            let _ = inflight.send(Track::Sent { id, origin });
        }
        if let Some(id) = out.untrack {
            let _ = inflight.send(Track::GaveUp(id));
        }
    };
    while let Ok(first) = rx.recv() {
        batch.clear();
        track(&first);
        batch.extend_from_slice(&first.line);
        // Coalesce whatever else is queued into one write.
        while batch.len() < (256 << 10) {
            match rx.try_recv() {
                Ok(more) => {
                    track(&more);
                    batch.extend_from_slice(&more.line)
                }
                Err(_) => break,
            }
        }
        if stdin.write_all(&batch).and_then(|_| stdin.flush()).is_err() {
            break;
        }
    }
}

fn reader(
    shared: &Shared,
    up: &Upstream,
    generation: u64,
    stdout: std::process::ChildStdout,
    tx: &flume::Sender<Out>,
    tracked: &flume::Receiver<Track>,
) {
    let mut inflight = InFlight::default();
    let mut r = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::with_capacity(8 << 10);
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            tracing::error!(server = %up.name, "a message over {MAX_LINE} bytes; restarting the server");
            return;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        while let Ok(t) = tracked.try_recv() {
            inflight.apply(t);
        }
        let frame = match Frame::parse(Bytes::copy_from_slice(text)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(server = %up.name, "ignoring a non-JSON-RPC line on stdout: {e}");
                continue;
            }
        };
        match frame.kind {
            Kind::Response | Kind::ErrorResponse => {
                let Some(id) = frame.id_u64() else {
                    tracing::warn!(server = %up.name, "a response with an id switchyard never sent; dropped");
                    continue;
                };
                inflight.calls.remove(&id);
                let (lane, _) = split_id(id);
                match shared.lanes.get(lane as usize) {
                    Some(l) => {
                        let _ = l.send(LaneMsg::Reply {
                            upstream: up.index,
                            frame,
                        });
                    }
                    None => {
                        tracing::warn!(server = %up.name, id, "a response for no lane; dropped")
                    }
                }
            }
            Kind::Request => {
                if frame.method().as_deref() == Some("ping") {
                    let _ = tx.send(Out {
                        line: answer(&frame, Ok(b"{}")),
                        track: None,
                        untrack: None,
                    });
                    continue;
                }
                let why = match inflight.origin() {
                    Origin::Call(id) => {
                        to_lane(shared, up, id, frame);
                        continue;
                    }
                    Origin::Nobody => "no client request is in flight on this server".to_owned(),
                    Origin::Ambiguous(n) => format!(
                        "requests of {n} clients are in flight on this server and stdio does not say which one this is for"
                    ),
                };
                tracing::warn!(server = %up.name, method = %frame.method().unwrap_or_default(), "server-to-client request refused: {why}");
                let _ = tx.send(Out {
                    line: answer(
                        &frame,
                        Err(&format!("switchyard cannot route this request: {why}")),
                    ),
                    track: None,
                    untrack: None,
                });
            }
            Kind::Notification => {
                let method = frame.method().unwrap_or_default();
                if method.ends_with("/list_changed") {
                    let kinds = match method.as_ref() {
                        "notifications/tools/list_changed" => crate::mcp::listen::TOOLS,
                        "notifications/prompts/list_changed" => crate::mcp::listen::PROMPTS,
                        _ => crate::mcp::listen::RESOURCES,
                    };
                    let _ = shared.control.send(ControlMsg::ListChanged {
                        upstream: up.index,
                        generation,
                        kinds,
                    });
                } else if method == "notifications/progress" {
                    // The token is the id of the request it reports on (the gateway set it so).
                    let token = frame
                        .params_raw()
                        .and_then(|p| sonic_rs::get(p, ["progressToken"]).ok())
                        .and_then(|t| t.as_raw_str().parse::<u64>().ok());
                    match token {
                        Some(id) => to_lane(shared, up, id, frame),
                        None => {
                            tracing::debug!(server = %up.name, "progress with a token switchyard never gave; dropped")
                        }
                    }
                } else if method == "notifications/resources/updated" {
                    let uri = frame
                        .params_raw()
                        .and_then(|p| sonic_rs::get(p, ["uri"]).ok())
                        .and_then(|u| serde_json::from_str::<String>(u.as_raw_str()).ok());
                    if let Some(uri) = uri {
                        let uri: Box<str> = uri.into();
                        for lane in shared.lanes.iter().skip(1) {
                            let _ = lane.send(LaneMsg::ResourceUpdated {
                                upstream: up.index,
                                uri: uri.clone(),
                            });
                        }
                    }
                } else if method == "notifications/message" {
                    match inflight.origin() {
                        Origin::Call(id) => to_lane(shared, up, id, frame),
                        _ => {
                            tracing::debug!(server = %up.name, "a log message for no single client; dropped")
                        }
                    }
                } else {
                    tracing::debug!(server = %up.name, %method, "notification not relayed");
                }
            }
        }
    }
}

/// Hand a message the child sent about request `id` to the lane that sent the request.
fn to_lane(shared: &Shared, up: &Upstream, id: u64, frame: Frame) {
    let (lane, _) = split_id(id);
    if let Some(l) = shared.lanes.get(lane as usize) {
        let _ = l.send(LaneMsg::Interim {
            upstream: up.index,
            id,
            frame,
        });
    }
}

/// A response line to a server request: `Ok(result)` or `Err(message)` (code -32603).
fn answer(req: &Frame, outcome: Result<&[u8], &str>) -> Vec<u8> {
    let mut line = crate::mcp::relay::answer(req, outcome.map_err(|m| (-32603, m)));
    line.push(b'\n');
    line
}

/// The child is gone: mark the upstream down, fail in-flight requests on every lane, tell control.
fn gone(shared: &Shared, up: &Upstream, generation: u64, reason: String) {
    if let super::Transport::Stdio(s) = &up.transport {
        let current = s.conn.load().as_ref().map(|c| c.generation);
        if current == Some(generation) {
            s.conn.store(None);
        } else {
            return; // an older child; a newer one already replaced it
        }
    }
    tracing::warn!(server = %up.name, "{reason}");
    if !shared.is_stopping() {
        up.status.store(Arc::new(Status::Down {
            reason: reason.clone(),
            since: Instant::now(),
        }));
    }
    let err = Error::upstream(
        ErrorKind::UpstreamUnavailable,
        format!("server {:?} is unavailable: {reason}", up.name),
    );
    for lane in shared.lanes.iter() {
        let _ = lane.send(LaneMsg::UpstreamGone {
            upstream: up.index,
            error: err.clone(),
        });
    }
    let _ = shared.control.send(ControlMsg::Exited {
        upstream: up.index,
        generation,
    });
}
