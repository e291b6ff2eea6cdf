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

use super::{Status, Upstream};
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
    tx: flume::Sender<Vec<u8>>,
    pub generation: u64,
    pub pid: u32,
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
        let (tx, rx) = flume::unbounded::<Vec<u8>>();
        let pid = child.id();
        let name = up.name.clone();
        std::thread::Builder::new()
            .name(format!("{name}-stdin"))
            .spawn(move || writer(stdin, rx))?;
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
                reader(&shared2, &up2, generation, stdout, &tx2);
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
    ) -> Result<Frame, Error> {
        let Some(conn) = self.conn.load_full() else {
            return Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            ));
        };
        let id = lane.next_id();
        let mut msg = request_with_id(Some(id), method, params);
        msg.push(b'\n');
        let waiter = lane.expect(id, up.index);
        if conn.tx.send(msg).is_err() {
            lane.forget(id);
            return Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            ));
        }
        let res = lane
            .wait(
                waiter,
                deadline.saturating_duration_since(Instant::now()),
                &up.name,
            )
            .await;
        if matches!(&res, Err(e) if e.kind == ErrorKind::UpstreamTimeout) {
            // Tell the server to stop working on it.
            let params =
                format!("{{\"requestId\":{id},\"reason\":\"switchyard: request timed out\"}}");
            let mut note =
                request_with_id(None, "notifications/cancelled", Some(params.as_bytes()));
            note.push(b'\n');
            let _ = conn.tx.send(note);
        }
        res
    }

    /// Send a notification (no reply).
    pub fn notify(&self, method: &str, params: Option<&[u8]>) -> bool {
        let Some(conn) = self.conn.load_full() else {
            return false;
        };
        let mut msg = request_with_id(None, method, params);
        msg.push(b'\n');
        conn.tx.send(msg).is_ok()
    }
}

fn writer(mut stdin: std::process::ChildStdin, rx: flume::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 << 10);
    while let Ok(first) = rx.recv() {
        batch.clear();
        batch.extend_from_slice(&first);
        // Coalesce whatever else is queued into one write.
        while batch.len() < (256 << 10) {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
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
    tx: &flume::Sender<Vec<u8>>,
) {
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
            Kind::Request => answer_server_request(up, &frame, tx),
            Kind::Notification => {
                let method = frame.method().unwrap_or_default();
                if method.ends_with("/list_changed") {
                    let _ = shared.control.send(ControlMsg::ListChanged {
                        upstream: up.index,
                        generation,
                    });
                } else {
                    tracing::debug!(server = %up.name, %method, "notification not relayed yet");
                }
            }
        }
    }
}

/// Server-to-client requests: `ping` is answered here; the rest are refused until the protocol work
/// that relays them to the right client lands.
fn answer_server_request(up: &Upstream, frame: &Frame, tx: &flume::Sender<Vec<u8>>) {
    let id = frame.id_raw().unwrap_or(b"null");
    let method = frame.method().unwrap_or_default();
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    if method == "ping" {
        out.extend_from_slice(b",\"result\":{}}\n");
    } else {
        tracing::warn!(server = %up.name, %method, "server-to-client request refused (not relayed yet)");
        out.extend_from_slice(b",\"error\":{\"code\":-32601,\"message\":\"switchyard does not relay this server-to-client request\"}}\n");
    }
    let _ = tx.send(out);
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
