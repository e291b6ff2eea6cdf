//! The stdio front's one client: its credentials, its legacy session, its requests in flight, and
//! the serving of one request (gates, era, dispatch; messages before the answer; cancellation).

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hashbrown::HashMap;

use super::{pipes, KEY_VAR};
use crate::audit::Note;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{Frame, FrameError, Kind};
use crate::mcp::dispatch::{self, Exchange};
use crate::mcp::front;
use crate::mcp::session::Session;
use crate::mcp::sink::Sink;
use crate::mcp::{ClientEra, Method};
use crate::policy::{Credentials, Principal};
use crate::shard::conn::CatchUnwind;
use crate::shard::ShardCtx;

/// The client's address, for the per-IP limit of callers without a key.
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Who a keyless `auth.stdio_role` client is, for its role's rate bucket.
const STDIO_OWNER: u64 = u64::from_be_bytes(*b"sy-stdio");

/// The one client: its key, its legacy session, its requests in flight.
pub(super) struct Client {
    ctx: Rc<ShardCtx>,
    out: flume::Sender<Vec<u8>>,
    key: Option<String>,
    session: RefCell<Option<Arc<Session>>>,
    /// Requests in flight by raw id.
    inflight: RefCell<HashMap<Box<[u8]>, InFlight>>,
    serial: Cell<u64>,
    /// Stdout is closed (or we are done): nothing more reaches the client.
    gone: Cell<bool>,
}

/// A request in flight.
struct InFlight {
    /// Ids may be reused once answered: this names the one request.
    serial: u64,
    cancel: local_sync::oneshot::Sender<()>,
    /// A `subscriptions/listen`, open until cancelled: the drain at end of input does not wait.
    standing: bool,
}

/// A request's answer: the status the HTTP front would have given (for the audit line) and the
/// whole JSON-RPC response.
type Answer = (u16, Vec<u8>);

fn failed(e: &Error, id: Option<&[u8]>, era: Option<ClientEra>) -> Answer {
    let r = front::error_response(e, id, era);
    (r.status, r.body)
}

impl Client {
    pub(super) fn new(
        ctx: Rc<ShardCtx>,
        out: flume::Sender<Vec<u8>>,
        key: Option<String>,
    ) -> Rc<Self> {
        Rc::new(Client {
            ctx,
            out,
            key,
            session: RefCell::new(None),
            inflight: RefCell::new(HashMap::new()),
            serial: Cell::new(0),
            gone: Cell::new(false),
        })
    }

    /// Requests in flight, standing ones included.
    pub(super) fn in_flight(&self) -> usize {
        self.inflight.borrow().len()
    }

    pub(super) fn is_gone(&self) -> bool {
        self.gone.get()
    }

    /// The end: nothing more is written.
    pub(super) fn finish(&self) {
        self.gone.set(true);
    }

    /// Write one message to stdout (waits while the client is not reading).
    pub(super) async fn send(&self, msg: &[u8]) {
        if self.gone.get() {
            return;
        }
        if self.out.send_async(pipes::as_line(msg)).await.is_err() {
            self.gone.set(true);
        }
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            bearer: self.key.as_deref(),
            api_key: None,
        }
    }

    /// Refuse to start with a key that cannot work, or without one where one is needed.
    pub(super) async fn check_identity(&self) -> Result<(), String> {
        let (required, stdio_role) = {
            let policy = self.ctx.shared.policy.load();
            (policy.auth_required, policy.stdio_role)
        };
        if !required {
            if self.key.is_some() {
                tracing::info!("{KEY_VAR} is set but this config has no keys; ignored");
            }
            return Ok(());
        }
        match (&self.key, stdio_role) {
            (Some(_), _) => front::authenticate(&self.ctx, self.credentials(), &Note::default())
                .await
                .map(|_| ())
                .map_err(|r| format!("{KEY_VAR}: {}", r.error)),
            (None, Some(_)) => Ok(()),
            (None, None) => Err(format!(
                "this config requires credentials and stdio has no headers: set {KEY_VAR} to an API key (or a bearer token), or auth.stdio_role to the role local clients act as"
            )),
        }
    }

    /// The HTTP front's gates, with the key from the environment (or `auth.stdio_role`).
    async fn admit(&self, note: &Note) -> Result<Principal, Error> {
        let ctx = &self.ctx;
        let local_role = {
            let policy = ctx.shared.policy.load();
            match (self.key.as_deref(), policy.stdio_role) {
                (None, Some(role)) if policy.auth_required => {
                    note.set(|f| f.role = Some(policy.role_name(role).to_owned()));
                    Some(role)
                }
                _ => None,
            }
        };
        let (who, token) = match local_role {
            Some(role) => (
                Principal {
                    key: None,
                    role,
                    owner: STDIO_OWNER,
                },
                false,
            ),
            None => front::authenticate(ctx, self.credentials(), note)
                .await
                .map_err(|r| r.error)?,
        };
        front::authorize(ctx, who, token, LOCAL, note).map_err(|r| r.error)?;
        Ok(who)
    }

    /// One line from stdin.
    pub(super) async fn on_message(self: &Rc<Self>, bytes: Bytes) {
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
                let standing = frame.method().as_deref() == Some("subscriptions/listen");
                let tracked = self.track(frame.id_raw().unwrap_or(b"null"), standing);
                monoio::spawn(request(self.clone(), frame, tracked));
            }
            Kind::Response | Kind::ErrorResponse => {
                // The client's answer to a server-to-client request we relayed.
                let session = self.session.borrow().clone();
                let taken =
                    session.is_some_and(|s| crate::mcp::relay::client_answer(&self.ctx, &s, frame));
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

    /// `notifications/cancelled`: stop the request it names, if still in flight. Dropping it tells
    /// a stdio upstream; a legacy session's call to an HTTP upstream is told by `relay::cancel`.
    fn cancel(&self, params: Option<&[u8]>) {
        let Some(id) = params.and_then(|p| sonic_rs::get(p, ["requestId"]).ok()) else {
            return;
        };
        let id = id.as_raw_str().as_bytes();
        let entry = self.inflight.borrow_mut().remove(id);
        let Some(entry) = entry else { return };
        if let Some(s) = self.session.borrow().as_ref() {
            crate::mcp::relay::cancel(&self.ctx, s.tag(), id, "cancelled by the client");
        }
        let _ = entry.cancel.send(());
    }

    pub(super) fn cancel_all(&self) {
        let all: Vec<_> = self.inflight.borrow_mut().drain().collect();
        for (_, entry) in all {
            let _ = entry.cancel.send(());
        }
    }

    /// Requests in flight that will end by themselves (not standing streams).
    pub(super) fn working(&self) -> usize {
        self.inflight
            .borrow()
            .values()
            .filter(|e| !e.standing)
            .count()
    }

    /// Track a request for cancellation; `None` when its id is already in flight (the client
    /// reused it; `notifications/cancelled` then names the first).
    fn track(&self, id: &[u8], standing: bool) -> Option<(u64, local_sync::oneshot::Receiver<()>)> {
        let mut inflight = self.inflight.borrow_mut();
        if inflight.contains_key(id) {
            return None;
        }
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let (tx, rx) = local_sync::oneshot::channel();
        inflight.insert(
            id.into(),
            InFlight {
                serial,
                cancel: tx,
                standing,
            },
        );
        Some((serial, rx))
    }

    /// Stop tracking a request that ended; `false` when it was cancelled meanwhile.
    fn untrack(&self, id: &[u8], serial: u64) -> bool {
        let mut inflight = self.inflight.borrow_mut();
        let ours = inflight.get(id).is_some_and(|e| e.serial == serial);
        if ours {
            inflight.remove(id);
        }
        ours
    }

    /// Route one request, as the HTTP front's `post` does without its header layer.
    async fn answer(self: &Rc<Self>, frame: &Frame, note: &Note, sink: &Sink) -> Answer {
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
            if method == Method::Listen {
                // Open until the client cancels it: its notifications go out as they come.
                let resp = crate::mcp::listen::listen(ctx, frame, who).await;
                let Some(stream) = resp.stream else {
                    return (resp.status, resp.body);
                };
                while let Some(msg) = stream.next().await {
                    sink.push(msg);
                }
                // The shard closed its streams (it is stopping): the listen request ends.
                let done = b"{\"resultType\":\"complete\"}";
                return (200, dispatch::result_body(id.unwrap_or(b"null"), done));
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

    /// `initialize`: the process's one legacy session, with its standing stream (list changes,
    /// subscribed resources) written to stdout for as long as the process lives.
    fn initialize(self: &Rc<Self>, frame: &Frame, who: Principal, note: &Note) -> Answer {
        let id = frame.id_raw();
        if self.session.borrow().is_some() {
            let e = Error::downstream(
                ErrorKind::InvalidRequest,
                "Invalid Request: this session is already initialized",
            );
            return failed(&e, id, Some(ClientEra::Legacy));
        }
        match front::initialize_session(&self.ctx, frame, who, note) {
            Ok((session, result)) => {
                let stream = self.ctx.listeners.session_stream(who.role, session.clone());
                *self.session.borrow_mut() = Some(session);
                let client = self.clone();
                monoio::spawn(async move {
                    while let Some(msg) = stream.next().await {
                        client.send(&msg).await;
                    }
                });
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
    let note = Note::new(ctx.shared.audit.is_some());
    let sink = Sink::default();
    // A bug that panics while serving one request must not end the others: it becomes an
    // internal error for this request alone.
    let mut boxed = Box::pin(client.answer(&frame, &note, &sink));
    let mut fut = CatchUnwind(boxed.as_mut());
    let mut streamed = 0usize;
    let outcome = loop {
        monoio::select! {
            r = &mut fut => break Some(r),
            Some(msg) = sink.next() => {
                streamed += msg.len();
                client.send(&msg).await;
            },
            _ = &mut cancelled => break None,
        }
    };
    drop(boxed);
    // A cancellation that raced with the answer still wins: nothing more is written for it.
    let outcome = match serial {
        Some(s) if !client.untrack(&id, s) => None,
        _ => outcome,
    };
    let (status, mut body) = match outcome {
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
        // Strict durability waits here, before the answer leaves; a line that did not reach the
        // disk turns the answer into an error.
        let recorded = audit
            .record(
                ctx.index() as usize - 1,
                crate::audit::line(&note.take(), &outcome),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!("{e}: the request is answered with an internal error");
            if !body.is_empty() {
                let e = Error::internal(format!("the request's {e}; its outcome is unknown"));
                body = e.to_jsonrpc(Some(&id));
            }
        }
    }
    if !body.is_empty() {
        client.send(&body).await;
    }
}
