//! What the stdio and legacy SSE upstreams share: one long-lived inbound stream of messages, read
//! by a plain thread, and one queue of outbound messages, drained by another. A request goes out
//! through the queue and is awaited on its lane; the reader routes every message the server sends
//! (replies by the lane bits of their id, progress by its token, other unlinked messages to the only
//! client with requests in flight); when the stream ends, what is in flight fails at once and
//! control restarts the upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::{Call, Status, Upstream};
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{request_with_id, Frame, Kind};
use crate::shard::lane::{split_id, Lane};
use crate::shard::{ControlMsg, LaneMsg, Shared};

/// Largest message accepted from an upstream's stream (a bigger one ends the connection, and the
/// upstream is restarted).
pub const MAX_MESSAGE: usize = 64 << 20;

/// A message for the upstream. A request also tells the writer whose it is, so the reader can tell
/// which client a server-to-client message belongs to (neither stdio nor legacy SSE links them).
pub struct Out {
    /// One whole JSON-RPC message, without framing.
    pub msg: Vec<u8>,
    /// (id, origin) of a request.
    pub track: Option<(u64, u64)>,
    /// A request given up on (its cancellation is the message).
    pub untrack: Option<u64>,
}

impl Out {
    fn plain(msg: Vec<u8>) -> Out {
        Out {
            msg,
            track: None,
            untrack: None,
        }
    }
}

/// One running connection: the queue to its writer, and what stops it (`H`: a child's pid, an
/// event stream's socket).
pub struct Conn<H> {
    tx: flume::Sender<Out>,
    pub generation: u64,
    pub handle: H,
}

/// An upstream's current connection, replaced whole on every restart; older connections' threads
/// recognize themselves by their generation and step aside.
pub struct Slot<H> {
    conn: ArcSwapOption<Conn<H>>,
    generations: AtomicU64,
}

impl<H> Default for Slot<H> {
    fn default() -> Self {
        Slot {
            conn: ArcSwapOption::empty(),
            generations: AtomicU64::new(0),
        }
    }
}

impl<H> Slot<H> {
    /// Make a new connection current: its generation, and both ends of its outbound queue (the
    /// sender for the reader's own answers, such as pongs; the receiver for the writer).
    pub fn install(&self, handle: H) -> (u64, flume::Sender<Out>, flume::Receiver<Out>) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = flume::unbounded();
        self.conn.store(Some(Arc::new(Conn {
            tx: tx.clone(),
            generation,
            handle,
        })));
        (generation, tx, rx)
    }

    pub fn current(&self) -> Option<Arc<Conn<H>>> {
        self.conn.load_full()
    }

    /// Forget connection `generation` if it is still the current one; false when a newer one
    /// replaced it.
    pub fn clear(&self, generation: u64) -> bool {
        let cur = self.conn.load_full();
        if cur.as_ref().map(|c| c.generation) != Some(generation) {
            return false;
        }
        let prev = self.conn.compare_and_swap(&cur, None);
        match (&*prev, &cur) {
            (Some(p), Some(c)) => Arc::ptr_eq(p, c),
            _ => false,
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
        let not_running = || {
            Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is not running", up.name),
            )
        };
        let Some(conn) = self.current() else {
            return Err(not_running());
        };
        let id = call.id;
        let waiter = lane.expect(id, up.index);
        let out = Out {
            msg: request_with_id(Some(id), method, params),
            track: Some((id, call.origin)),
            untrack: None,
        };
        if conn.tx.send(out).is_err() {
            lane.forget(id);
            return Err(not_running());
        }
        // Dropped before the reply (the client went away): tell the server to stop working on it.
        let mut cancel = CancelOnDrop {
            tx: &conn.tx,
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

    /// Send a request and return what to wait on, without waiting (a held call keeps the waiter;
    /// see `mcp::hold`).
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
        let conn = self.current().ok_or_else(not_running)?;
        let waiter = lane.expect(call.id, up.index);
        let out = Out {
            msg: request_with_id(Some(call.id), method, params),
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
        if let Some(conn) = self.current() {
            drop(CancelOnDrop {
                tx: &conn.tx,
                lane,
                id,
                reason,
            });
        }
    }

    /// Send a notification (no reply).
    pub fn notify(&self, method: &str, params: Option<&[u8]>) -> bool {
        self.send(request_with_id(None, method, params))
    }

    /// Send one whole message (an answer to a server request, say).
    pub fn send(&self, msg: Vec<u8>) -> bool {
        self.current()
            .is_some_and(|conn| conn.tx.send(Out::plain(msg)).is_ok())
    }

    /// Connection `generation`'s stream ended. If it was the current one: mark the upstream down,
    /// fail its in-flight requests on every lane, and tell control (which restarts it).
    pub fn ended(&self, shared: &Shared, up: &Upstream, generation: u64, reason: String) {
        if !self.clear(generation) {
            return; // an older connection; a newer one already replaced it
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
}

/// A server's announcement that concerns every client, not one call: `list_changed` goes to
/// control (which refreshes the catalog), `resources/updated` to every shard (each checks its
/// subscribed streams). `false` when `frame` is neither. Shared by stdio, SSE and the GET stream
/// held on HTTP sessions (`upstream::stream`).
pub fn announce(shared: &Shared, up: &Upstream, generation: u64, frame: &Frame) -> bool {
    let method = frame.method().unwrap_or_default();
    if method.ends_with("/list_changed") {
        let kinds = match method.as_ref() {
            "notifications/tools/list_changed" => crate::mcp::listen::TOOLS,
            "notifications/prompts/list_changed" => crate::mcp::listen::PROMPTS,
            _ => crate::mcp::listen::RESOURCES,
        };
        let _ = shared.control.send(ControlMsg::ListChanged {
            upstream: up.home,
            generation,
            kinds,
        });
        return true;
    }
    if method != "notifications/resources/updated" {
        return false;
    }
    let uri = frame
        .params_raw()
        .and_then(|p| sonic_rs::get(p, ["uri"]).ok())
        .and_then(|u| serde_json::from_str::<String>(u.as_raw_str()).ok());
    if let Some(uri) = uri {
        let uri: Box<str> = uri.into();
        for lane in shared.lanes.iter().skip(1) {
            let _ = lane.send(LaneMsg::ResourceUpdated {
                upstream: up.home,
                uri: uri.clone(),
                session: up.session,
            });
        }
    }
    true
}

/// Sends `notifications/cancelled` for a request that did not complete (`id` 0 once it did).
struct CancelOnDrop<'a> {
    tx: &'a flume::Sender<Out>,
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
        let _ = self.tx.send(Out {
            msg: request_with_id(None, "notifications/cancelled", Some(params.as_bytes())),
            track: None,
            untrack: Some(self.id),
        });
    }
}

/// What the writer tells the reader.
pub enum Track {
    Sent { id: u64, origin: u64 },
    GaveUp(u64),
}

/// The writer's end of the in-flight tracking: it notes each request before sending it, so the
/// reader always knows of a request before its answer can arrive.
pub struct Tracker(flume::Sender<Track>);

/// The reader's end.
pub struct Tracked(flume::Receiver<Track>);

pub fn tracking() -> (Tracker, Tracked) {
    let (tx, rx) = flume::unbounded();
    (Tracker(tx), Tracked(rx))
}

impl Tracker {
    pub fn note(&self, out: &Out) {
        if let Some((id, origin)) = out.track {
            let _ = self.0.send(Track::Sent { id, origin });
        }
        if let Some(id) = out.untrack {
            self.gave_up(id);
        }
    }

    pub fn gave_up(&self, id: u64) {
        let _ = self.0.send(Track::GaveUp(id));
    }

    /// A request that does not pass through a writer (a Streamable HTTP POST).
    pub fn sent(&self, id: u64, origin: u64) {
        let _ = self.0.send(Track::Sent { id, origin });
    }
}

impl Tracked {
    /// Apply what the senders told since the last look.
    pub(super) fn drain_into(&self, inflight: &mut InFlight) {
        while let Ok(t) = self.0.try_recv() {
            inflight.apply(t);
        }
    }
}

/// Requests sent and not yet answered: upstream id → origin (a client session or a single call;
/// 0 for the gateway's own requests), with the order they were sent. Owned by the reader thread.
#[derive(Default)]
pub(super) struct InFlight {
    calls: hashbrown::HashMap<u64, (u64, u64)>,
    order: u64,
    /// The last client request answered: (id, origin, when).
    last_done: Option<(u64, u64, Instant)>,
}

/// Where an unlinked message from the upstream goes.
pub(super) enum Origin {
    /// The most recent request of the only client with requests in flight.
    Call(u64),
    /// No client request is in flight.
    Nobody,
    /// Requests of several clients are in flight: there is no telling which one it is for.
    Ambiguous(usize),
}

impl InFlight {
    fn apply(&mut self, t: Track) {
        match t {
            Track::Sent { id, origin } => {
                self.order += 1;
                self.calls.insert(id, (origin, self.order));
            }
            Track::GaveUp(id) => {
                if let Some((origin, _)) = self.calls.remove(&id) {
                    if origin != 0 {
                        self.last_done = Some((id, origin, Instant::now()));
                    }
                }
            }
        }
    }

    /// The client (session tag, or the call's own id) that request `id` is for.
    pub(super) fn origin_of(&self, id: u64) -> Option<u64> {
        self.calls
            .get(&id)
            .map(|(o, _)| *o)
            .or_else(|| self.last_done.filter(|d| d.0 == id).map(|d| d.1))
    }

    /// `origin`, or when no client request is in flight, the one answered within `grace` (a
    /// message written just before a reply on another connection may be read just after it).
    pub(super) fn origin_or_recent(&self, grace: std::time::Duration) -> Origin {
        match self.origin() {
            Origin::Nobody => match self.last_done {
                Some((id, _, at)) if at.elapsed() <= grace => Origin::Call(id),
                _ => Origin::Nobody,
            },
            o => o,
        }
    }

    pub(super) fn origin(&self) -> Origin {
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

/// The reader's routing of each message the upstream sends.
pub struct Router<'a> {
    shared: &'a Shared,
    up: &'a Upstream,
    generation: u64,
    /// The outbound queue, for the answers the reader gives itself (pongs, refusals).
    reply: flume::Sender<Out>,
    tracked: Tracked,
    inflight: InFlight,
}

impl<'a> Router<'a> {
    pub fn new(
        shared: &'a Shared,
        up: &'a Upstream,
        generation: u64,
        reply: flume::Sender<Out>,
        tracked: Tracked,
    ) -> Router<'a> {
        Router {
            shared,
            up,
            generation,
            reply,
            tracked,
            inflight: InFlight::default(),
        }
    }

    /// Route one message (a JSON-RPC text; anything else is logged and dropped).
    pub fn route(&mut self, text: &[u8]) {
        let up = self.up;
        self.tracked.drain_into(&mut self.inflight);
        let frame = match Frame::parse(Bytes::copy_from_slice(text)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(server = %up.name, "ignoring a message that is not JSON-RPC: {e}");
                return;
            }
        };
        match frame.kind {
            Kind::Response | Kind::ErrorResponse => {
                let Some(id) = frame.id_u64() else {
                    tracing::warn!(server = %up.name, "a response with an id switchyard never sent; dropped");
                    return;
                };
                self.inflight.calls.remove(&id);
                let (lane, _) = split_id(id);
                match self.shared.lanes.get(lane as usize) {
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
            Kind::Request => self.request(frame),
            Kind::Notification => self.notification(frame),
        }
    }

    fn request(&mut self, frame: Frame) {
        let up = self.up;
        if frame.method().as_deref() == Some("ping") {
            let _ = self.reply.send(Out::plain(answer(&frame, Ok(b"{}"))));
            return;
        }
        let why = match self.inflight.origin() {
            Origin::Call(id) => {
                self.to_lane(id, frame);
                return;
            }
            // A session's own connection: between calls, its requests (a `roots/list` after
            // `initialized`, say) are that session's, on its GET stream.
            Origin::Nobody if up.session != 0 => {
                super::stream::offer(self.shared, up.index, up.session, frame);
                return;
            }
            Origin::Nobody => "no client request is in flight on this server".to_owned(),
            Origin::Ambiguous(n) => format!(
                "requests of {n} clients are in flight on this server and its transport does not say which one this is for"
            ),
        };
        tracing::warn!(server = %up.name, method = %frame.method().unwrap_or_default(), "server-to-client request refused: {why}");
        let refusal = answer(
            &frame,
            Err(&format!("switchyard cannot route this request: {why}")),
        );
        let _ = self.reply.send(Out::plain(refusal));
    }

    fn notification(&mut self, frame: Frame) {
        let up = self.up;
        let method = frame.method().unwrap_or_default();
        if announce(self.shared, up, self.generation, &frame) {
            // told to control or to every shard
        } else if method == "notifications/progress" {
            // The token is the id of the request it reports on (the gateway set it so).
            let token = frame
                .params_raw()
                .and_then(|p| sonic_rs::get(p, ["progressToken"]).ok())
                .and_then(|t| t.as_raw_str().parse::<u64>().ok());
            match token {
                Some(id) => self.to_lane(id, frame),
                None => {
                    tracing::debug!(server = %up.name, "progress with a token switchyard never gave; dropped")
                }
            }
        } else if method == "notifications/subscriptions/acknowledged" {
            // A listen the gateway opened (`subs::watch`) is answered on the lane that waits.
            let id = frame
                .params_raw()
                .and_then(|p| {
                    sonic_rs::get(p, ["_meta", "io.modelcontextprotocol/subscriptionId"]).ok()
                })
                .and_then(|t| t.as_raw_str().parse::<u64>().ok());
            match id {
                Some(id) => self.to_lane(id, frame),
                None => {
                    tracing::debug!(server = %up.name, "a listen acknowledgement for no request of ours; dropped")
                }
            }
        } else if method == "notifications/message" {
            match self.inflight.origin() {
                Origin::Call(id) => self.to_lane(id, frame),
                Origin::Nobody if up.session != 0 => {
                    super::stream::offer(self.shared, up.index, up.session, frame)
                }
                _ => {
                    tracing::debug!(server = %up.name, "a log message for no single client; dropped")
                }
            }
        } else {
            tracing::debug!(server = %up.name, %method, "notification not relayed");
        }
    }

    /// Hand a message the upstream sent about request `id` to the lane that sent the request.
    fn to_lane(&self, id: u64, frame: Frame) {
        let (lane, _) = split_id(id);
        if let Some(l) = self.shared.lanes.get(lane as usize) {
            let _ = l.send(LaneMsg::Interim {
                upstream: self.up.index,
                id,
                frame,
            });
        }
    }
}

/// A response to a server request: `Ok(result)` or `Err(message)` (code -32603).
pub(super) fn answer(req: &Frame, outcome: Result<&[u8], &str>) -> Vec<u8> {
    crate::mcp::relay::answer(req, outcome.map_err(|m| (-32603, m)))
}
