//! Upstream MCP servers: one closed enum of transports (`stdio`, `http`, legacy `sse`), the
//! handshake that detects each server's era (probe `server/discover`, fall back to `initialize`),
//! and the one `call` every lane uses to send a request and await its reply.

pub mod handshake;
pub mod http;
pub mod isolate;
pub mod link;
pub mod sse;
pub mod stdio;
pub mod stream;
pub mod subs;
pub mod supervisor;

use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::Frame;
use crate::shard::lane::Lane;

pub use handshake::{Era, Handshake, MODERN_VERSION};

/// Where an upstream stands.
#[derive(Debug, Clone)]
pub enum Status {
    Starting,
    Ready(Arc<Handshake>),
    Down { reason: String, since: Instant },
    Disabled,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Ready(_) => "ready",
            Status::Down { .. } => "down",
            Status::Disabled => "disabled",
        }
    }
}

/// The transports, as a closed enum (agentgateway's habit), not trait objects.
pub enum Transport {
    Stdio(stdio::StdioUpstream),
    Http(http::HttpUpstream),
    /// The 2024-11-05 HTTP+SSE transport.
    Sse(sse::SseUpstream),
}

pub struct Upstream {
    pub index: u16,
    /// The configured server this runs for: `index` itself, or for a session's dedicated upstream
    /// (`isolate`) the shared one's (announcements and subscriptions are the server's).
    pub home: u16,
    /// The session a dedicated upstream serves (its tag); 0 for a shared one.
    pub session: u64,
    pub name: String,
    pub config: config::Server,
    pub status: ArcSwap<Status>,
    pub transport: Transport,
    pub request_timeout: Duration,
    /// What we learned of its era (see `supervisor`), kept across restarts.
    pub era_hint: AtomicU8,
    last_handshake: arc_swap::ArcSwapOption<Handshake>,
    /// Requests in flight through the gateway, for `max_concurrent` (counted on the configured
    /// server, shared by every shard: one atomic, no lock).
    in_flight: AtomicUsize,
}

/// One of a server's `max_concurrent` places, given back when dropped — whether the request was
/// answered, failed, or cancelled with its future.
pub struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Upstream {
    pub fn new(
        index: u16,
        cfg: &config::Server,
        default_timeout_ms: u64,
    ) -> Result<Upstream, String> {
        let transport = match &cfg.transport {
            config::Transport::Stdio { .. } => Transport::Stdio(stdio::StdioUpstream::default()),
            config::Transport::Http { url, headers } => {
                Transport::Http(http::HttpUpstream::new(url, headers)?)
            }
            config::Transport::Sse { url, headers } => {
                Transport::Sse(sse::SseUpstream::new(url, headers)?)
            }
        };
        Ok(Upstream {
            index,
            home: index,
            session: 0,
            name: cfg.name.clone(),
            config: cfg.clone(),
            status: ArcSwap::from_pointee(if cfg.enabled {
                Status::Starting
            } else {
                Status::Disabled
            }),
            transport,
            request_timeout: Duration::from_millis(
                cfg.request_timeout_ms.unwrap_or(default_timeout_ms),
            ),
            era_hint: AtomicU8::new(supervisor::HINT_UNKNOWN),
            last_handshake: arc_swap::ArcSwapOption::empty(),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Take a place for one forwarded request: `Ok(None)` without a cap, `Err(cap)` when the
    /// server already has `max_concurrent` in flight. A compare-and-swap loop, so a refusal never
    /// counts (a refused caller cannot make a concurrent one see the server fuller than it is).
    pub fn slot(&self) -> Result<Option<Slot<'_>>, usize> {
        let Some(cap) = self.config.max_concurrent else {
            return Ok(None);
        };
        use std::sync::atomic::Ordering::AcqRel;
        self.in_flight
            .fetch_update(AcqRel, std::sync::atomic::Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .map(|_| Some(Slot(&self.in_flight)))
            .map_err(|_| cap)
    }

    /// Requests in flight (counted only for a server with `max_concurrent`).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A dedicated copy of configured upstream `of` under `index` for session `session` (see
    /// `isolate`): same config and era hint, its own connection.
    pub fn dedicated(index: u16, session: u64, of: &Upstream) -> Result<Upstream, String> {
        let mut up = Upstream::new(index, &of.config, 0)?;
        up.home = of.index;
        up.session = session;
        up.request_timeout = of.request_timeout;
        up.status = ArcSwap::from_pointee(Status::Starting);
        up.era_hint = AtomicU8::new(of.era_hint.load(std::sync::atomic::Ordering::Relaxed));
        Ok(up)
    }

    /// Keep the handshake of a start whose lists are about to be published (`set_ready` follows).
    pub fn remember_handshake(&self, hs: Arc<Handshake>) {
        self.last_handshake.store(Some(hs));
    }

    /// The handshake when ready.
    pub fn set_ready(&self, hs: Arc<Handshake>) {
        self.last_handshake.store(Some(hs.clone()));
        self.status.store(Arc::new(Status::Ready(hs)));
    }

    pub fn ready(&self) -> Option<Arc<Handshake>> {
        match &**self.status.load() {
            Status::Ready(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// The handshake of its last successful start, if any.
    pub fn last_handshake(&self) -> Option<Arc<Handshake>> {
        self.last_handshake.load_full()
    }

    pub fn unavailable(&self) -> Error {
        let why = match &**self.status.load() {
            Status::Down { reason, .. } => {
                format!("server {:?} is unavailable: {reason}", self.name)
            }
            Status::Starting => format!("server {:?} is still starting", self.name),
            Status::Disabled => format!("server {:?} is disabled", self.name),
            Status::Ready(_) => format!("server {:?} is unavailable", self.name),
        };
        Error::upstream(ErrorKind::UpstreamUnavailable, why)
    }
}

/// One request's identity on its way upstream: its id (chosen by the caller, so a progress token can
/// name it), whose it is (for attributing a stdio or SSE server's unlinked messages), and where
/// messages the upstream sends while serving it go.
pub struct Call<'a> {
    pub id: u64,
    /// 0 for the gateway's own requests; else a tag of the client (session or single call).
    pub origin: u64,
    pub on_interim: &'a dyn Fn(Frame),
    /// Extra HTTP headers for an HTTP upstream (`Mcp-Param-*`).
    pub headers: &'a [(String, String)],
    /// A legacy client's declared capabilities (JSON), told to a 2026-07-28 upstream per request.
    pub client_caps: Option<&'a str>,
    /// The params already carry a 2026-07-28 client's own `_meta` (forwarded as they are).
    pub modern_meta: bool,
}

impl Call<'static> {
    /// A call whose messages are consumed by whoever holds its waiter (see `mcp::hold`).
    pub fn internal_with_id(id: u64) -> Call<'static> {
        Call {
            id,
            origin: id,
            on_interim: &ignore_interim,
            headers: &[],
            client_caps: None,
            modern_meta: false,
        }
    }

    /// A gateway-internal request (list fetches, handshakes): nothing is relayed.
    pub fn internal(lane: &Lane) -> Call<'static> {
        Call {
            id: lane.next_id(),
            origin: 0,
            on_interim: &ignore_interim,
            headers: &[],
            client_caps: None,
            modern_meta: false,
        }
    }
}

fn ignore_interim(f: Frame) {
    tracing::debug!(
        method = %f.method().unwrap_or_default(),
        "a message for a gateway-internal request; dropped"
    );
}

/// Send one request to `up` from `lane` and await the reply frame (a response or an error response,
/// with the upstream's id: the caller re-addresses it). `params` are forwarded as given, except that a
/// modern upstream gets the per-request `_meta` it requires.
pub async fn call(
    lane: &Lane,
    up: &Upstream,
    method: &str,
    params: Option<&[u8]>,
    name: Option<&str>,
) -> Result<Frame, Error> {
    let Some(hs) = up.ready() else {
        return Err(up.unavailable());
    };
    call_with(lane, up, &hs, method, params, name, &Call::internal(lane)).await
}

/// `call` on behalf of a client: messages sent while serving it reach `call.on_interim`.
pub async fn call_relayed(
    lane: &Lane,
    up: &Upstream,
    method: &str,
    params: Option<&[u8]>,
    name: Option<&str>,
    call: &Call<'_>,
) -> Result<Frame, Error> {
    let Some(hs) = up.ready() else {
        return Err(up.unavailable());
    };
    call_with(lane, up, &hs, method, params, name, call).await
}

/// `call` for bring-up, with a given handshake whatever the upstream's published status.
pub async fn call_internal(
    lane: &Lane,
    up: &Upstream,
    hs: &Handshake,
    method: &str,
    params: Option<&[u8]>,
) -> Result<Frame, Error> {
    call_with(lane, up, hs, method, params, None, &Call::internal(lane)).await
}

/// Answer a server-to-client request of `up` (a whole JSON-RPC response message).
pub async fn respond(lane: &Lane, up: &Upstream, msg: Vec<u8>) -> Result<(), Error> {
    match &up.transport {
        Transport::Stdio(s) => sent(up, s.slot.send(trimmed(msg))),
        Transport::Sse(s) => sent(up, s.slot.send(trimmed(msg))),
        Transport::Http(h) => {
            let Some(hs) = up.last_handshake() else {
                return Err(up.unavailable());
            };
            h.send_message(lane, up, &hs, &msg).await
        }
    }
}

/// A message without the line end a caller may have left on it (stdio frames messages by lines).
fn trimmed(mut msg: Vec<u8>) -> Vec<u8> {
    while msg.last().is_some_and(u8::is_ascii_whitespace) {
        msg.pop();
    }
    msg
}

fn sent(up: &Upstream, queued: bool) -> Result<(), Error> {
    if queued {
        Ok(())
    } else {
        Err(up.unavailable())
    }
}

async fn call_with(
    lane: &Lane,
    up: &Upstream,
    hs: &Handshake,
    method: &str,
    params: Option<&[u8]>,
    name: Option<&str>,
    call: &Call<'_>,
) -> Result<Frame, Error> {
    let injected;
    let params = if hs.era == Era::Modern && !call.modern_meta {
        injected = handshake::with_modern_meta(params, call.client_caps);
        Some(injected.as_slice())
    } else {
        params
    };
    let deadline = Instant::now() + up.request_timeout;
    match &up.transport {
        Transport::Stdio(s) => {
            s.slot
                .request(lane, up, method, params, deadline, call)
                .await
        }
        Transport::Sse(s) => {
            s.slot
                .request(lane, up, method, params, deadline, call)
                .await
        }
        Transport::Http(h) => h.call(lane, up, hs, method, params, name, call).await,
    }
}
