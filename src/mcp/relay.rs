//! What passes between a client and the upstream serving one of its requests before the answer:
//! progress (the client's token swapped for the upstream request id, and back, so tokens of different
//! clients never collide upstream), log lines, and server-to-client requests (`sampling/createMessage`,
//! `elicitation/create`, `roots/list`), whose ids are mapped through the client's session both ways.
//!
//! Origin of a server-to-client request: over HTTP it arrives on the stream of the call it belongs
//! to; over stdio the reader thread attributes it to the only client with requests in flight, and
//! refuses it (an error to the upstream) when requests of several clients are in flight.
//!
//! The ids we give relayed requests carry the lane that relayed them (`lane << 40 | seq`, as
//! upstream ids do), so the client's answer, POSTed to any shard, is handed to that lane, whose
//! table says where it goes: no shared table, no lock.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashMap;

use super::dispatch::Exchange;
use super::session::Session;
use super::ClientEra;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{splice, Frame, Kind, Span};
use crate::shard::lane::Lane;
use crate::shard::ShardCtx;
use crate::upstream::{self, Upstream};

/// Where a client's answer to a server-to-client request goes.
pub enum Answer {
    /// Back to the upstream that asked, under its own id.
    Upstream { upstream: u16, id: Bytes },
    /// To a call the gateway is driving (bridging an `InputRequiredResult`).
    Gateway(flume::Sender<Frame>),
}

/// Most unanswered relayed requests one shard holds; beyond it the upstream is refused.
const MAX_WAITING: usize = 4096;

/// One shard's relayed requests awaiting a client's answer: our id → (session tag, sent at, where).
#[derive(Default)]
pub struct Answers {
    waiting: RefCell<HashMap<u64, (u64, Instant, Answer)>>,
}

impl Answers {
    /// Remember a request relayed to session `tag`; `false` when the table is full even after
    /// dropping requests older than `stale`.
    pub(crate) fn insert(&self, id: u64, tag: u64, to: Answer, stale: Duration) -> bool {
        let mut w = self.waiting.borrow_mut();
        if w.len() >= MAX_WAITING {
            w.retain(|_, (_, at, _)| at.elapsed() < stale);
            if w.len() >= MAX_WAITING {
                return false;
            }
        }
        w.insert(id, (tag, Instant::now(), to));
        true
    }

    /// The answer's destination, if `id` was relayed to session `tag` by this shard.
    pub fn take(&self, id: u64, tag: u64) -> Option<Answer> {
        let mut w = self.waiting.borrow_mut();
        match w.get(&id) {
            Some((t, _, _)) if *t == tag => w.remove(&id).map(|(_, _, a)| a),
            _ => None,
        }
    }
}

pub struct Relay<'a> {
    ctx: &'a ShardCtx,
    ex: &'a Exchange<'a>,
    up: &'a Arc<Upstream>,
    /// The client's progress token, raw JSON.
    progress: Option<Vec<u8>>,
}

/// Where a value sits inside `outer` (both slices of one buffer).
fn span_in(outer: &[u8], inner: &str) -> Span {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    Span {
        start: start as u32,
        end: (start + inner.len()) as u32,
    }
}

impl<'a> Relay<'a> {
    pub fn new(ctx: &'a ShardCtx, ex: &'a Exchange<'a>, up: &'a Arc<Upstream>) -> Relay<'a> {
        Relay {
            ctx,
            ex,
            up,
            progress: None,
        }
    }

    /// The client's progress token (raw JSON), for progress the upstream reports under our id.
    pub fn set_progress(&mut self, token: &[u8]) {
        self.progress = Some(token.to_vec());
    }

    /// `params` with the client's `_meta.progressToken` replaced by the upstream request id `id`;
    /// `None` when the request carries no token.
    pub fn map_progress(&mut self, params: &[u8], id: u64) -> Option<Vec<u8>> {
        let token = sonic_rs::get(params, ["_meta", "progressToken"]).ok()?;
        let raw = token.as_raw_str();
        self.progress = Some(raw.as_bytes().to_vec());
        Some(splice(
            params,
            span_in(params, raw),
            id.to_string().as_bytes(),
        ))
    }

    /// A message the upstream sent while serving the request.
    pub fn on_interim(&self, f: Frame) {
        match f.kind {
            Kind::Notification => self.notification(f),
            Kind::Request => self.server_request(f),
            _ => {}
        }
    }

    fn notification(&self, f: Frame) {
        let method = f.method().unwrap_or_default();
        match method.as_ref() {
            "notifications/progress" => {
                let Some(token) = &self.progress else { return };
                let Some(p) = f.params_raw() else { return };
                let Ok(t) = sonic_rs::get(p, ["progressToken"]) else {
                    return;
                };
                let span = span_in(f.bytes(), t.as_raw_str());
                self.ex
                    .sink
                    .push(Bytes::from(splice(f.bytes(), span, token)));
            }
            "notifications/message" => {
                // 2026-07-28: log lines only for a request that asked for them.
                let wanted = self.ex.era == ClientEra::Legacy || self.ex.frame.wants_log_lines();
                if wanted {
                    self.ex.sink.push(f.bytes().clone());
                }
            }
            _ => {}
        }
    }

    fn server_request(&self, f: Frame) {
        let method = f.method().unwrap_or_default();
        if method == "ping" {
            respond_later(self.up.clone(), answer(&f, Ok(b"{}")));
            return;
        }
        let refuse = |why: String| {
            tracing::info!(server = %self.up.name, %method, "server-to-client request refused: {why}");
            respond_later(self.up.clone(), answer(&f, Err((-32601, &why))));
        };
        let Some(session) = self.ex.session else {
            // A 2026-07-28 client takes no server-to-client requests.
            return refuse(format!(
                "the client speaks {} and takes no server-to-client requests",
                upstream::MODERN_VERSION
            ));
        };
        let needs = match method.as_ref() {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            other => return refuse(format!("{other} is not a server-to-client request")),
        };
        if !session.has_capability(needs) {
            return refuse(format!(
                "the client does not declare the {needs} capability"
            ));
        }
        let (Some(id_span), Some(id)) = (f.id_span(), f.id_raw()) else {
            return;
        };
        let to = Answer::Upstream {
            upstream: self.up.index,
            id: Bytes::copy_from_slice(id),
        };
        let ours = self.ctx.lane.next_id();
        if !self
            .ctx
            .answers
            .insert(ours, session.tag(), to, self.up.request_timeout)
        {
            return refuse("too many requests are waiting for clients' answers".into());
        }
        let msg = splice(f.bytes(), id_span, ours.to_string().as_bytes());
        self.ex.sink.push(Bytes::from(msg));
    }
}

/// A client's POSTed response to a server-to-client request: hand it to the lane that relayed the
/// request. `false` when the id cannot be one of ours.
pub fn client_answer(ctx: &ShardCtx, session: &Session, f: Frame) -> bool {
    let Some(id) = f.id_u64() else { return false };
    let (lane, _) = crate::shard::lane::split_id(id);
    if lane == ctx.index() {
        deliver_answer(ctx, session.tag(), f);
        return true;
    }
    match ctx.shared.lanes.get(lane as usize) {
        Some(l) if lane != 0 => l
            .send(crate::shard::LaneMsg::ClientAnswer {
                session: session.tag(),
                frame: f,
            })
            .is_ok(),
        _ => false,
    }
}

/// On the lane that relayed the request: pass the client's answer where it belongs.
pub fn deliver_answer(ctx: &ShardCtx, session: u64, f: Frame) {
    let Some(answer) = f.id_u64().and_then(|id| ctx.answers.take(id, session)) else {
        tracing::debug!("an answer to no request of this client; ignored");
        return;
    };
    match answer {
        Answer::Upstream { upstream, id } => {
            let (Some(up), Some(span)) = (ctx.shared.any_upstream(upstream), f.id_span()) else {
                return;
            };
            respond_later(up, splice(f.bytes(), span, &id));
        }
        Answer::Gateway(tx) => {
            let _ = tx.send(f);
        }
    }
}

/// Answer a server-to-client request from a context that cannot wait (a local task does the IO).
pub fn respond_later(up: Arc<Upstream>, msg: Vec<u8>) {
    monoio::spawn(async move {
        // A throwaway lane: this is rare, and only pooled connections come from a lane.
        let lane = Lane::new(0);
        if let Err(e) = upstream::respond(&lane, &up, msg).await {
            tracing::debug!(server = %up.name, "answering a server request: {e}");
        }
    });
}

/// A JSON-RPC response to `req`: `Ok(result)` or `Err((code, message))`.
pub fn answer(req: &Frame, outcome: Result<&[u8], (i32, &str)>) -> Vec<u8> {
    let id = req.id_raw().unwrap_or(b"null");
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    match outcome {
        Ok(result) => {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(result);
        }
        Err((code, msg)) => {
            out.extend_from_slice(format!(",\"error\":{{\"code\":{code},\"message\":").as_bytes());
            out.extend_from_slice(serde_json::Value::from(msg).to_string().as_bytes());
            out.push(b'}');
        }
    }
    out.push(b'}');
    out
}

/// Most input rounds the gateway drives for one legacy call before giving up.
pub const MAX_ROUNDS: usize = 8;

/// Is this reply a 2026-07-28 `InputRequiredResult`?
pub fn input_required(reply: &Frame) -> bool {
    reply.result_type_raw() == Some(b"\"input_required\"")
}

/// Bridge one round of an `InputRequiredResult` for a legacy client: send each embedded request to
/// the client as a real server-to-client request (on this call's SSE stream), wait for every answer,
/// and return the retry's params: `original` with `inputResponses` and the echoed `requestState`.
pub async fn ask_client(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    session: &Session,
    up: &Upstream,
    reply: &Frame,
    original: &[u8],
) -> Result<Vec<u8>, Error> {
    use serde_json::{Map, Value};
    let bad = |why: &str| {
        Error::upstream(
            ErrorKind::UpstreamProtocol,
            format!("server {:?}: {why}", up.name),
        )
    };
    let result: Value = reply
        .result_raw()
        .and_then(|r| serde_json::from_slice(r).ok())
        .ok_or_else(|| bad("unreadable InputRequiredResult"))?;
    let requests = result
        .get("inputRequests")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (tx, rx) = flume::unbounded();
    let mut keys: HashMap<u64, String> = HashMap::new();
    for (key, req) in &requests {
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let needs = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            other => return Err(bad(&format!("asked for input with {other:?}"))),
        };
        if !session.has_capability(needs) {
            return Err(Error::downstream(
                ErrorKind::InvalidRequest,
                format!(
                    "the server needs the {needs} capability, which this client did not declare"
                ),
            ));
        }
        let id = ctx.lane.next_id();
        if !ctx.answers.insert(
            id,
            session.tag(),
            Answer::Gateway(tx.clone()),
            up.request_timeout,
        ) {
            return Err(Error::internal(
                "too many requests are waiting for clients' answers",
            ));
        }
        keys.insert(id, key.clone());
        let mut msg = Map::new();
        msg.insert("jsonrpc".into(), "2.0".into());
        msg.insert("id".into(), id.into());
        msg.insert("method".into(), method.into());
        if let Some(p) = req.get("params") {
            msg.insert("params".into(), p.clone());
        }
        ex.sink.push(Bytes::from(Value::Object(msg).to_string()));
    }
    drop(tx);
    let mut responses = Map::new();
    let deadline = monoio::time::Instant::now() + up.request_timeout;
    while responses.len() < keys.len() {
        let f = match monoio::time::timeout_at(deadline, rx.recv_async()).await {
            Ok(Ok(f)) => f,
            _ => {
                for id in keys.keys() {
                    ctx.answers.take(*id, session.tag());
                }
                return Err(Error::downstream(
                    ErrorKind::InvalidRequest,
                    "the client did not answer the server's request in time",
                ));
            }
        };
        let Some(key) = f.id_u64().and_then(|id| keys.get(&id)) else {
            continue;
        };
        let Some(r) = f
            .result_raw()
            .and_then(|r| serde_json::from_slice::<Value>(r).ok())
        else {
            let why = String::from_utf8_lossy(f.error_raw().unwrap_or(b"no result"));
            return Err(Error::downstream(
                ErrorKind::InvalidRequest,
                format!("the client refused the server's request: {why}"),
            ));
        };
        responses.insert(key.clone(), r);
    }
    let mut params: Value =
        serde_json::from_slice(original).map_err(|e| Error::internal(e.to_string()))?;
    let Some(obj) = params.as_object_mut() else {
        return Err(Error::internal("params are not an object"));
    };
    obj.insert("inputResponses".into(), Value::Object(responses));
    match result.get("requestState") {
        Some(state) => obj.insert("requestState".into(), state.clone()),
        None => obj.remove("requestState"),
    };
    Ok(params.to_string().into_bytes())
}

/// Legacy sessions' requests in flight upstream on this shard, for `notifications/cancelled`:
/// (session tag, the client's raw request id) → (upstream, upstream request id, the call's stop).
#[derive(Default)]
pub struct Calls {
    calls: RefCell<HashMap<(u64, Bytes), InFlightCall>>,
}

/// (upstream, upstream request id, the call's stop).
type InFlightCall = (u16, u64, local_sync::oneshot::Sender<()>);

/// Keeps a call listed while it is in flight; `stopped` resolves if the client cancels it.
pub struct Tracked<'a> {
    calls: &'a Calls,
    key: Option<(u64, Bytes)>,
    pub stopped: local_sync::oneshot::Receiver<()>,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.calls.calls.borrow_mut().remove(&k);
        }
    }
}

impl Calls {
    pub fn track(&self, session: u64, client_id: &[u8], upstream: u16, id: u64) -> Tracked<'_> {
        let key = (session, Bytes::copy_from_slice(client_id));
        let (tx, rx) = local_sync::oneshot::channel();
        self.calls
            .borrow_mut()
            .insert(key.clone(), (upstream, id, tx));
        Tracked {
            calls: self,
            key: Some(key),
            stopped: rx,
        }
    }
}

/// A legacy client cancelled its request `client_id`: if it is in flight on this shard, stop the
/// call (dropping it tells a stdio server through its cancel guard) and tell an HTTP server.
pub fn cancel(ctx: &ShardCtx, session: u64, client_id: &[u8], reason: &str) {
    let found = ctx
        .calls
        .calls
        .borrow_mut()
        .remove(&(session, Bytes::copy_from_slice(client_id)));
    let Some((upstream, id, stop)) = found else {
        return;
    };
    let _ = stop.send(());
    let Some(up) = ctx.shared.any_upstream(upstream) else {
        return;
    };
    if let upstream::Transport::Http(_) = &up.transport {
        let msg = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": { "requestId": id, "reason": reason },
        });
        respond_later(up, msg.to_string().into_bytes());
    }
}
