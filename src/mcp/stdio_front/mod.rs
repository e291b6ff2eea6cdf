//! The stdio front: `switchyard stdio` serves ONE client over stdin/stdout (newline-delimited
//! JSON-RPC, MCP's stdio transport) — how desktop clients run a local server — with the routing,
//! policy and audit of the HTTP front, and no listener.
//!
//! Both eras, as the versioning page asks of a dual-era stdio server: `initialize` opens the
//! process's one legacy session; a request whose `_meta` claims a protocol version is served
//! statelessly by 2026-07-28 (stdio has no header layer, so there are no header checks). Requests
//! run concurrently on one shard (lane 1) and are answered in completion order; what a handler sends
//! before its answer (progress, log lines, a legacy session's server-to-client requests) is written
//! first. `notifications/cancelled` drops the request's future — a stdio upstream then hears
//! `notifications/cancelled` in turn — and nothing more is written for it.
//!
//! The first request waits until every upstream has come up or failed once (bounded by the longest
//! `startup_timeout_ms`), so a client's first `tools/list` sees them; later changes reach a legacy
//! client as `notifications/*/list_changed`. Stdin closing ends the process: requests in flight get
//! the HTTP front's drain bound, then the upstreams are stopped. Only JSON-RPC goes to stdout.

mod pipes;

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashMap;
use serde_json::Value;

use super::dispatch::{self, Exchange};
use super::front;
use super::session::Session;
use super::sink::Sink;
use super::{ClientEra, Method};
use crate::audit::Note;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{Frame, FrameError, Kind};
use crate::policy::Principal;
use crate::shard::conn::CatchUnwind;
use crate::shard::lane::Lane;
use crate::shard::{Gateway, LaneMsg, ShardCtx, Shared};
use crate::upstream::Status;
use pipes::Line;

/// Where a stdio client's API key comes from: stdio has no headers.
pub const KEY_VAR: &str = "SWITCHYARD_API_KEY";

/// The client's address, for the per-IP limit of callers without a key.
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long requests in flight when stdin closes may take (the HTTP front's drain bound).
const DRAIN: Duration = Duration::from_secs(10);
/// How often the start gate looks at the upstreams.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// How often the list watcher looks for a new catalog.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How long the end waits for stdout to be written.
const FLUSH: Duration = Duration::from_secs(2);

/// `switchyard stdio`: start the upstreams and serve the client on stdin/stdout until stdin closes
/// or `stop` fires (a signal); then stop everything. `key` is the client's API key, if any.
pub fn serve(config: Config, key: Option<String>, stop: flume::Receiver<()>) -> Result<(), String> {
    let driver = config.gateway.driver;
    let max_line = config.gateway.max_body_bytes;
    let (gateway, inbox) = Gateway::start_stdio(config)?;
    let shared = gateway.shared().clone();
    let served = (|| {
        let mut rt = crate::shard::build_runtime(driver)
            .map_err(|e| format!("cannot build the event loop: {e}"))?;
        let lines = pipes::stdin_lines(max_line)?;
        let (out, written) = pipes::stdout_writer()?;
        let pipe = Pipe {
            inbox,
            lines,
            out: out.clone(),
            stop,
            max_line,
        };
        let res = rt.block_on(run(shared, pipe, key));
        // Everything answered is written before the upstreams stop and the process ends.
        let _ = out.send_timeout(Vec::new(), FLUSH);
        let _ = written.recv_timeout(FLUSH);
        res
    })();
    gateway.stop();
    served
}

/// The channels the shard serves through.
struct Pipe {
    inbox: flume::Receiver<LaneMsg>,
    lines: flume::Receiver<Line>,
    out: flume::Sender<Vec<u8>>,
    stop: flume::Receiver<()>,
    max_line: usize,
}

/// Resolves when a stop is asked for; never, when nothing can ask.
async fn stop_asked(stop: &flume::Receiver<()>) {
    if stop.recv_async().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run(shared: Arc<Shared>, pipe: Pipe, key: Option<String>) -> Result<(), String> {
    let ctx = Rc::new(ShardCtx {
        shared: shared.clone(),
        lane: Lane::new(1),
        sessions: Default::default(),
        active: Cell::new(0),
        keys: Default::default(),
        conns: Cell::new(0),
        answers: Default::default(),
    });
    // Its stop signal is the end of this function; `Gateway::stop` comes after.
    let (inbox_stop, _) = local_sync::oneshot::channel::<()>();
    monoio::spawn(crate::shard::inbox_loop(
        ctx.clone(),
        pipe.inbox,
        inbox_stop,
    ));
    let client = Rc::new(Client {
        ctx: ctx.clone(),
        out: pipe.out,
        key,
        session: RefCell::new(None),
        listed: RefCell::new(None),
        inflight: RefCell::new(HashMap::new()),
        serial: Cell::new(0),
        gone: Cell::new(false),
    });
    client.check_identity().await?;
    tracing::info!(
        servers = shared.upstreams.len(),
        "switchyard serving one client on stdin/stdout"
    );
    monoio::select! {
        _ = settled(&shared) => {}
        _ = stop_asked(&pipe.stop) => return Ok(()),
    }
    monoio::spawn(watch_lists(client.clone()));
    loop {
        monoio::select! {
            line = pipe.lines.recv_async() => match line {
                Ok(Line::Message(bytes)) => client.on_message(bytes).await,
                Ok(Line::TooLong) => {
                    let e = Error::downstream(
                        ErrorKind::BodyTooLarge,
                        format!("Invalid Request: a message over {} bytes", pipe.max_line),
                    );
                    client.send(&e.to_jsonrpc(None)).await;
                }
                Err(_) => break,
            },
            _ = stop_asked(&pipe.stop) => {
                client.cancel_all();
                break;
            }
        }
        if client.gone.get() {
            tracing::info!("stdout is closed; stopping");
            break;
        }
    }
    // Stdin closed: requests in flight finish (bounded), unless a stop cuts them short.
    let deadline = Instant::now() + DRAIN;
    while !client.inflight.borrow().is_empty() && !client.gone.get() {
        if Instant::now() >= deadline {
            tracing::warn!(
                left = client.inflight.borrow().len(),
                "drain timed out; cancelling"
            );
            break;
        }
        monoio::select! {
            _ = monoio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop_asked(&pipe.stop) => break,
        }
    }
    client.cancel_all();
    // The cancelled ones still write their audit lines.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !client.inflight.borrow().is_empty() && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    client.gone.set(true);
    Ok(())
}

/// Wait until every enabled upstream has come up or failed at least once, at most the longest
/// startup timeout (they keep retrying after; list changes are announced).
async fn settled(shared: &Shared) {
    let ups = &shared.upstreams;
    let longest = ups
        .iter()
        .filter(|u| u.config.enabled)
        .map(|u| u.config.startup_timeout_ms)
        .max()
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(longest) + Duration::from_secs(1);
    let mut seen = vec![false; ups.len()];
    loop {
        for (s, u) in seen.iter_mut().zip(ups) {
            *s |= !matches!(**u.status.load(), Status::Starting);
        }
        if seen.iter().all(|s| *s) {
            return;
        }
        if Instant::now() >= deadline {
            let waiting: Vec<&str> = ups
                .iter()
                .zip(&seen)
                .filter(|(_, s)| !**s)
                .map(|(u, _)| u.name.as_str())
                .collect();
            tracing::warn!(?waiting, "serving before these servers are up");
            return;
        }
        monoio::time::sleep(SETTLE_POLL).await;
    }
}

/// The one client: its key, its legacy session, its requests in flight.
struct Client {
    ctx: Rc<ShardCtx>,
    out: flume::Sender<Vec<u8>>,
    key: Option<String>,
    session: RefCell<Option<Arc<Session>>>,
    /// The role and lists a legacy client was last told of (for `list_changed`).
    listed: RefCell<Option<(u16, [Bytes; 4])>>,
    /// Requests in flight by raw id.
    inflight: RefCell<HashMap<Box<[u8]>, InFlight>>,
    serial: Cell<u64>,
    /// Stdout is closed (or we are done): nothing more reaches the client.
    gone: Cell<bool>,
}

/// A request in flight: its serial (ids may be reused once answered) and what cancels it.
type InFlight = (u64, local_sync::oneshot::Sender<()>);

/// A request's answer: the status the HTTP front would have given (for the audit line) and the
/// whole JSON-RPC response.
type Answer = (u16, Vec<u8>);

fn failed(e: &Error, id: Option<&[u8]>, era: Option<ClientEra>) -> Answer {
    let r = front::error_response(e, id, era);
    (r.status, r.body)
}

impl Client {
    /// Write one message to stdout (waits while the client is not reading).
    async fn send(&self, msg: &[u8]) {
        if self.gone.get() {
            return;
        }
        if self.out.send_async(pipes::as_line(msg)).await.is_err() {
            self.gone.set(true);
        }
    }

    /// Refuse to start with a key that cannot work, or without one where one is needed.
    async fn check_identity(&self) -> Result<(), String> {
        let policy = &self.ctx.shared.policy;
        if !policy.auth_required {
            if self.key.is_some() {
                tracing::info!("{KEY_VAR} is set but this config has no keys; ignored");
            }
            return Ok(());
        }
        match (&self.key, policy.stdio_role) {
            (Some(k), _) => front::authenticate(&self.ctx, Some(k), &Note::default())
                .await
                .map(|_| ())
                .map_err(|e| format!("{KEY_VAR}: {e}")),
            (None, Some(_)) => Ok(()),
            (None, None) => Err(format!(
                "this config has API keys and stdio has no headers: set {KEY_VAR} to a key, or auth.stdio_role to the role local clients act as"
            )),
        }
    }

    /// The HTTP front's gates, with the key from the environment (or `auth.stdio_role`).
    async fn admit(&self, note: &Note) -> Result<Principal, Error> {
        let ctx = &self.ctx;
        let policy = &ctx.shared.policy;
        let who = match (self.key.as_deref(), policy.stdio_role) {
            (None, Some(role)) if policy.auth_required => {
                note.set(|f| f.role = Some(policy.role_name(role).to_owned()));
                Principal { key: None, role }
            }
            (key, _) => front::authenticate(ctx, key, note).await?,
        };
        front::authorize(ctx, who, LOCAL, note)?;
        Ok(who)
    }

    /// One line from stdin.
    async fn on_message(self: &Rc<Self>, bytes: Bytes) {
        let frame = match Frame::parse(bytes) {
            Ok(f) => f,
            Err(FrameError::Parse(e)) => {
                let e = Error::downstream(ErrorKind::Parse, format!("Parse error: {e}"));
                return self.send(&e.to_jsonrpc(None)).await;
            }
            Err(FrameError::Invalid(e)) => {
                let e =
                    Error::downstream(ErrorKind::InvalidRequest, format!("Invalid Request: {e}"));
                return self.send(&e.to_jsonrpc(None)).await;
            }
        };
        match frame.kind {
            Kind::Request => {
                // Tracked before the task first runs, so the drain at end of input sees it.
                let tracked = self.track(frame.id_raw().unwrap_or(b"null"));
                monoio::spawn(request(self.clone(), frame, tracked));
            }
            Kind::Response | Kind::ErrorResponse => {
                // The client's answer to a server-to-client request we relayed.
                let session = self.session.borrow().clone();
                let taken =
                    session.is_some_and(|s| super::relay::client_answer(&self.ctx, &s, frame));
                if !taken {
                    tracing::debug!("an answer to no request of ours; ignored");
                }
            }
            Kind::Notification => {
                if frame.method().as_deref() == Some("notifications/cancelled") {
                    self.cancel(frame.params_raw());
                }
                // Others (initialized, roots/list_changed, progress) need no action.
            }
        }
    }

    /// `notifications/cancelled`: stop the request it names, if still in flight.
    fn cancel(&self, params: Option<&[u8]>) {
        let Some(id) = params.and_then(|p| sonic_rs::get(p, ["requestId"]).ok()) else {
            return;
        };
        let entry = self
            .inflight
            .borrow_mut()
            .remove(id.as_raw_str().as_bytes());
        if let Some((_, tx)) = entry {
            let _ = tx.send(());
        }
    }

    fn cancel_all(&self) {
        let all: Vec<_> = self.inflight.borrow_mut().drain().collect();
        for (_, (_, tx)) in all {
            let _ = tx.send(());
        }
    }

    /// Track a request for cancellation; `None` when its id is already in flight (the client
    /// reused it; `notifications/cancelled` then names the first).
    fn track(&self, id: &[u8]) -> Option<(u64, local_sync::oneshot::Receiver<()>)> {
        let mut inflight = self.inflight.borrow_mut();
        if inflight.contains_key(id) {
            return None;
        }
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let (tx, rx) = local_sync::oneshot::channel();
        inflight.insert(id.into(), (serial, tx));
        Some((serial, rx))
    }

    fn untrack(&self, id: &[u8], serial: u64) {
        let mut inflight = self.inflight.borrow_mut();
        if inflight.get(id).is_some_and(|(s, _)| *s == serial) {
            inflight.remove(id);
        }
    }

    /// Route one request, as the HTTP front's `post` does without its header layer.
    async fn answer(&self, frame: &Frame, note: &Note, sink: &Sink) -> Answer {
        let ctx = &*self.ctx;
        let id = frame.id_raw();
        let method = Method::parse(&frame.method().unwrap_or_default());
        note.set(|f| {
            f.method = frame.method().map(|m| m.into_owned());
            f.trace = trace_id(frame);
        });
        let who = match self.admit(note).await {
            Ok(p) => p,
            Err(e) => return failed(&e, id, None),
        };
        if let Some(claim) = front::modern_claim(frame) {
            let era = Some(ClientEra::Modern);
            let bad =
                front::unsupported_version(&claim).or_else(|| front::missing_capabilities(frame));
            if let Some(e) = bad {
                return failed(&e, id, era);
            }
            let ex = Exchange {
                era: ClientEra::Modern,
                frame,
                method,
                session: None,
                who,
                note,
                sink,
                mcp_params: None,
            };
            return run_exchange(ctx, &ex).await;
        }
        if method == Method::Initialize {
            return self.initialize(frame, who, note);
        }
        let era = Some(ClientEra::Legacy);
        let Some(session) = self.session.borrow().clone() else {
            if method == Method::Ping {
                return (200, dispatch::result_body(id.unwrap_or(b"null"), b"{}"));
            }
            let e = Error::downstream(
                ErrorKind::SessionRequired,
                "Bad Request: send initialize first, or use the 2026-07-28 revision (params._meta)",
            );
            return failed(&e, id, era);
        };
        session.touch();
        note.set(|f| f.session = Some(session.id.to_string()));
        let ex = Exchange {
            era: ClientEra::Legacy,
            frame,
            method,
            session: Some(&session),
            who,
            note,
            sink,
            mcp_params: None,
        };
        run_exchange(ctx, &ex).await
    }

    /// `initialize`: the process's one legacy session, announcing list changes (this transport
    /// can carry them).
    fn initialize(&self, frame: &Frame, who: Principal, note: &Note) -> Answer {
        let id = frame.id_raw();
        if self.session.borrow().is_some() {
            let e = Error::downstream(
                ErrorKind::InvalidRequest,
                "Invalid Request: this session is already initialized",
            );
            return failed(&e, id, Some(ClientEra::Legacy));
        }
        match front::initialize_session(&self.ctx, frame, who, note) {
            Ok((session, mut result)) => {
                if let Some(caps) = result
                    .get_mut("capabilities")
                    .and_then(Value::as_object_mut)
                {
                    for kind in ["tools", "prompts", "resources"] {
                        if let Some(c) = caps.get_mut(kind).and_then(Value::as_object_mut) {
                            c.insert("listChanged".into(), Value::Bool(true));
                        }
                    }
                }
                let catalog = self.ctx.shared.catalog.load();
                *self.listed.borrow_mut() = list_bodies(&catalog, who.role).map(|l| (who.role, l));
                *self.session.borrow_mut() = Some(session);
                let body =
                    dispatch::result_body(id.unwrap_or(b"null"), result.to_string().as_bytes());
                (200, body)
            }
            Err(e) => failed(&e, id, None),
        }
    }
}

async fn run_exchange(ctx: &ShardCtx, ex: &Exchange<'_>) -> Answer {
    match dispatch::dispatch(ctx, ex).await {
        Ok(body) => (200, body),
        Err(e) => failed(&e, ex.frame.id_raw(), Some(ex.era)),
    }
}

/// The trace id of a W3C `traceparent` in `_meta` (stdio's place for it).
fn trace_id(frame: &Frame) -> Option<String> {
    let meta = frame.meta_raw()?;
    let v = sonic_rs::get(meta, ["traceparent"]).ok()?;
    let t: String = sonic_rs::from_str(v.as_raw_str()).ok()?;
    t.split('-').nth(1).map(str::to_owned)
}

/// Serve one request: messages for the client as they come, then the answer — unless the client
/// cancels it first, when nothing more is written for it.
async fn request(
    client: Rc<Client>,
    frame: Frame,
    tracked: Option<(u64, local_sync::oneshot::Receiver<()>)>,
) {
    let ctx = &*client.ctx;
    let started = Instant::now();
    let id: Box<[u8]> = frame.id_raw().unwrap_or(b"null").into();
    let (serial, cancelled) = match tracked {
        Some((s, rx)) => (Some(s), Some(rx)),
        None => (None, None),
    };
    let cancelled = async move {
        match cancelled {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let mut cancelled = std::pin::pin!(cancelled);
    let note = Note::default();
    let sink = Sink::default();
    // A bug that panics while serving one request must not end the others: it becomes an
    // internal error for this request alone.
    let mut fut = CatchUnwind(Box::pin(client.answer(&frame, &note, &sink)));
    let mut streamed = 0usize;
    let outcome = loop {
        monoio::select! {
            r = &mut fut => break Some(r),
            msg = sink.next() => {
                streamed += msg.len();
                client.send(&msg).await;
            },
            _ = &mut cancelled => break None,
        }
    };
    drop(fut);
    if let Some(s) = serial {
        client.untrack(&id, s);
    }
    let (status, body) = match outcome {
        None => {
            sink.close();
            note.set(|f| {
                f.event = Some("cancelled");
                f.reason = Some("cancelled by the client".into());
            });
            // As HTTP logs a client that went away before its answer.
            (499, Vec::new())
        }
        Some(Ok(answer)) => answer,
        Some(Err(())) => {
            tracing::error!("a request handler panicked; answered with an internal error");
            let e = Error::internal("internal error");
            (500, e.to_jsonrpc(Some(&id)))
        }
    };
    if !body.is_empty() {
        // Messages queued in the same instant as the answer still go first.
        while let Some(msg) = sink.try_next() {
            streamed += msg.len();
            client.send(&msg).await;
        }
    }
    if let Some(audit) = &ctx.shared.audit {
        let code = sonic_rs::get(body.as_slice(), ["error", "code"])
            .ok()
            .and_then(|v| v.as_raw_str().parse::<i64>().ok());
        let outcome = crate::audit::Outcome {
            status,
            code,
            duration: started.elapsed(),
            bytes_in: frame.bytes().len(),
            bytes_out: body.len() + streamed,
        };
        // Strict durability waits here, before the answer leaves.
        audit
            .record(
                ctx.index() as usize - 1,
                crate::audit::line(&note.take(), &outcome),
            )
            .await;
    }
    if !body.is_empty() {
        client.send(&body).await;
    }
}

/// What a role lists (tools, prompts, resources, templates), as a legacy client reads it.
fn list_bodies(catalog: &Catalog, role: u16) -> Option<[Bytes; 4]> {
    let view = catalog.views.get(role as usize)?;
    let tools = catalog.meta_list.as_ref().unwrap_or(&view.tools_list);
    Some([
        tools.legacy.clone(),
        view.prompts_list.legacy.clone(),
        view.resources_list.legacy.clone(),
        view.templates_list.legacy.clone(),
    ])
}

/// Tell a legacy client when what it may list changes (an upstream came up late, restarted, or
/// said its lists changed). 2026-07-28 clients would need `subscriptions/listen`, not offered.
async fn watch_lists(client: Rc<Client>) {
    const NOTICES: [&str; 4] = [
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/list_changed",
    ];
    let mut generation = client.ctx.shared.catalog.load().generation;
    while !client.gone.get() {
        monoio::time::sleep(WATCH_EVERY).await;
        let catalog = client.ctx.shared.catalog.load();
        if catalog.generation == generation {
            continue;
        }
        generation = catalog.generation;
        let Some((role, before)) = client.listed.borrow().clone() else {
            continue;
        };
        let Some(now) = list_bodies(&catalog, role) else {
            continue;
        };
        let mut told: Vec<&str> = Vec::new();
        for (i, notice) in NOTICES.iter().enumerate() {
            if before[i] != now[i] && !told.contains(notice) {
                told.push(notice);
            }
        }
        *client.listed.borrow_mut() = Some((role, now));
        for notice in told {
            let msg = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{notice}\"}}");
            client.send(msg.as_bytes()).await;
        }
    }
}
