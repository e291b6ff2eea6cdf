//! stdio upstreams: one persistent child process per server, JSON-RPC multiplexed over its pipes.
//!
//! Pipe IO runs on two plain threads per child (a writer draining a channel, a reader routing each
//! message by `link`'s rules), plus one forwarding stderr to the log with the server's name. Pipes
//! are not sockets: monoio's epoll driver cannot poll them and io_uring would need the child homed
//! on one shard, so blocking threads are the portable choice, and they route replies straight to
//! the requesting shard with no extra hop.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::link::{self, Out, Router, Slot, Tracker, MAX_MESSAGE};
use super::{Transport, Upstream};
use crate::config;
use crate::shard::Shared;

/// A stdio server: its running child, if any (the slot's handle is the child's pid).
#[derive(Default)]
pub struct StdioUpstream {
    pub slot: Slot<u32>,
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
        let pid = child.id();
        let (generation, tx, rx) = self.slot.install(pid);
        let name = up.name.clone();
        let (tracker, tracked) = link::tracking();
        std::thread::Builder::new()
            .name(format!("{name}-stdin"))
            .spawn(move || writer(stdin, rx, &tracker))?;
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
        let (shared, up) = (shared.clone(), up.clone());
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                reader(
                    &mut Router::new(&shared, &up, generation, tx, tracked),
                    &up.name,
                    stdout,
                );
                let status = child.wait();
                let reason = match status {
                    Ok(s) => format!("process exited ({s})"),
                    Err(e) => format!("process lost: {e}"),
                };
                if let Transport::Stdio(s) = &up.transport {
                    s.slot.ended(&shared, &up, generation, reason);
                }
            })?;
        Ok(generation)
    }

    pub fn pid(&self) -> Option<u32> {
        self.slot.current().map(|c| c.handle)
    }

    /// Ask the child to stop (SIGTERM to its process group: a wrapper such as `npx` and what it
    /// started); the reader thread sees it go.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Stop the child now (SIGKILL to its process group), when it ignored `terminate`.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // Safety: plain kill(2) on the process group of a child we spawned with its own group
            // (pgid = pid); a stale pid is the only risk and the reader thread reaps the child,
            // so it stays ours until then.
            unsafe {
                libc::kill(-(pid as libc::pid_t), sig);
            }
        }
    }
}

fn writer(mut stdin: std::process::ChildStdin, rx: flume::Receiver<Out>, tracker: &Tracker) {
    let mut batch = Vec::with_capacity(64 << 10);
    let add = |out: Out, batch: &mut Vec<u8>| {
        tracker.note(&out);
        batch.extend_from_slice(&out.msg);
        batch.push(b'\n');
    };
    while let Ok(first) = rx.recv() {
        batch.clear();
        add(first, &mut batch);
        // Coalesce whatever else is queued into one write.
        while batch.len() < (256 << 10) {
            match rx.try_recv() {
                Ok(more) => add(more, &mut batch),
                Err(_) => break,
            }
        }
        if stdin.write_all(&batch).and_then(|_| stdin.flush()).is_err() {
            break;
        }
    }
}

/// Read the child's stdout line by line until it closes (or sends a line over the limit).
fn reader(router: &mut Router<'_>, server: &str, stdout: std::process::ChildStdout) {
    let mut r = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::with_capacity(8 << 10);
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_MESSAGE {
            tracing::error!(server = %server, "a message over {MAX_MESSAGE} bytes; restarting the server");
            return;
        }
        let text = line.trim_ascii();
        if !text.is_empty() {
            router.route(text);
        }
    }
}
