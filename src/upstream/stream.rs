//! The standing `GET` stream of a legacy (2025-11-25 and earlier) Streamable HTTP upstream session:
//! where such a server sends what belongs to no call's POST — its `roots/list` at connect, log
//! lines, `notifications/resources/updated`, list changes.
//!
//! One plain thread per upstream holds it (like a legacy SSE upstream's stream: a blocking read
//! blocks no event loop), reconnecting with backoff and `Last-Event-ID` when the server numbers its
//! events; a 405 means the server offers no stream, and the thread ends. The upstream session is
//! one for all shards (see `http`), so the stream is too.
//!
//! Routing follows `link`'s rules for stdio: a server-to-client request or log line goes to the
//! only client with calls in flight on the upstream (told by `track`, one message per call each
//! way), else it is refused (`roots/list` is answered as a client without roots would). A legacy
//! client session gets it on its own GET stream (`Unlinked`, offered to every shard; the one
//! holding that stream delivers it); a 2026-07-28 client's held call gets it on its lane, like a
//! stdio server's question.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::handshake::{Era, Handshake};
use super::link::{self, InFlight, Origin, Tracker, MAX_MESSAGE};
use super::{Transport, Upstream};
use crate::http::blocking::{EventStream, Poster};
use crate::http::client::ClientError;
use crate::jsonrpc::{Frame, Kind};
use crate::shard::lane::split_id;
use crate::shard::{LaneMsg, Shared};

/// First and longest waits between reconnections.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stream that lasted this long was healthy: the next reconnection starts from the first wait.
const HEALTHY: Duration = Duration::from_secs(10);
/// How long after a client's call was answered a log line is still taken for it: the server wrote
/// the line before the reply, but the two travel on different connections.
const LOG_GRACE: Duration = Duration::from_millis(500);

/// An HTTP upstream's standing stream, as the shards see it.
#[derive(Default)]
pub struct Standing {
    /// Where calls in flight are told while the stream's thread runs.
    tracker: ArcSwapOption<Tracker>,
    running: AtomicBool,
    /// The stream's socket while connected: shutting it down ends the read.
    socket: ArcSwapOption<TcpStream>,
}

/// Keeps a call counted as in flight until dropped.
pub struct InFlightGuard {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.tracker.gave_up(self.id);
    }
}

impl Standing {
    /// Count client call `id` of `origin` as in flight while the guard lives (only while a stream
    /// thread runs: otherwise nothing reads it).
    pub fn track(&self, id: u64, origin: u64) -> Option<InFlightGuard> {
        let tracker = self.tracker.load_full()?;
        tracker.sent(id, origin);
        Some(InFlightGuard { tracker, id })
    }

    /// Start the stream's thread for `up` (just through handshake `hs`) unless it runs.
    pub fn start(&self, shared: &Arc<Shared>, up: &Arc<Upstream>, hs: &Handshake) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (tracker, tracked) = link::tracking();
        self.tracker.store(Some(Arc::new(tracker)));
        let (shared2, up2, hs) = (shared.clone(), up.clone(), Arc::new(hs.clone()));
        let spawned = std::thread::Builder::new()
            .name(format!("{}-get", up.name))
            .spawn(move || {
                let mut reader = Reader {
                    shared: &shared2,
                    up: &up2,
                    inflight: InFlight::default(),
                    hs,
                };
                reader.run(&tracked);
                if let Transport::Http(h) = &up2.transport {
                    h.standing.tracker.store(None);
                    h.standing.running.store(false, Ordering::Release);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(server = %up.name, "cannot start the thread of its GET stream: {e}");
            self.tracker.store(None);
            self.running.store(false, Ordering::Release);
        }
    }

    /// End the current stream (at shutdown; the thread sees the gateway stopping and ends).
    pub fn stop(&self) {
        if let Some(sock) = self.socket.swap(None) {
            let _ = sock.shutdown(Shutdown::Both);
        }
    }
}

/// A message of the upstream for one client session, offered to every shard: the shard holding
/// that session's GET stream claims and delivers it; if none does, the last shard to look refuses a
/// request (so the server is not left waiting).
pub struct Unlinked {
    pub upstream: u16,
    /// The session's tag (`Session::tag`).
    pub session: u64,
    pub frame: Frame,
    claimed: AtomicBool,
    left: AtomicUsize,
}

/// Offer `frame` of upstream `upstream` to every shard for session `session`'s GET stream.
pub fn offer(shared: &Shared, upstream: u16, session: u64, frame: Frame) {
    let shards = shared.lanes.len().saturating_sub(1);
    let offer = Arc::new(Unlinked {
        upstream,
        session,
        frame,
        claimed: AtomicBool::new(false),
        left: AtomicUsize::new(shards),
    });
    for lane in shared.lanes.iter().skip(1) {
        if lane.send(LaneMsg::Unlinked(offer.clone())).is_err() {
            let _ = offer.unclaimed_at_last(); // stopping: nobody will answer anyway
        }
    }
}

impl Unlinked {
    /// True for the one shard that takes it.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    /// This shard is done with it: true when it was the last to look and nobody took it.
    pub fn unclaimed_at_last(&self) -> bool {
        self.left.fetch_sub(1, Ordering::AcqRel) == 1 && !self.claimed.load(Ordering::Acquire)
    }
}

struct Reader<'a> {
    shared: &'a Arc<Shared>,
    up: &'a Arc<Upstream>,
    inflight: InFlight,
    /// The upstream's handshake (the latest published one replaces the first).
    hs: Arc<Handshake>,
}

/// How holding a stream once went.
enum Held {
    /// The server offers none: stop trying.
    Never,
    /// It was open and ended.
    Ended,
    /// It could not be opened now.
    Failed,
}

impl<'a> Reader<'a> {
    fn http(&self) -> Option<&'a super::http::HttpUpstream> {
        let up: &'a Upstream = self.up;
        match &up.transport {
            Transport::Http(h) => Some(h),
            _ => None,
        }
    }

    /// Hold the stream until the gateway stops or the server says it offers none; the era of the
    /// upstream's latest handshake says which stream.
    fn run(&mut self, tracked: &link::Tracked) {
        let mut backoff = FIRST_BACKOFF;
        // (session, last event id) of the legacy stream before, for resuming it.
        let mut resume: Option<(Arc<String>, String)> = None;
        while !self.shared.is_stopping() {
            let Some(h) = self.http() else { return };
            if let Some(hs) = self.up.last_handshake() {
                self.hs = hs;
            }
            let opened = Instant::now();
            let held = match self.hs.era {
                Era::Legacy => self.hold_get(h, tracked, &mut resume),
                Era::Modern => self.hold_listen(h),
            };
            match held {
                Held::Never => return,
                Held::Ended if opened.elapsed() >= HEALTHY => backoff = FIRST_BACKOFF,
                Held::Ended | Held::Failed => {}
            }
            if self.shared.is_stopping() {
                return;
            }
            // What calls told meanwhile, so it never piles up while the stream is down.
            tracked.drain_into(&mut self.inflight);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// A legacy session's `GET` stream, resumed after event `resume` when it is the same session.
    fn hold_get(
        &mut self,
        h: &super::http::HttpUpstream,
        tracked: &link::Tracked,
        resume: &mut Option<(Arc<String>, String)>,
    ) -> Held {
        let up = self.up;
        // Not initialized (yet, or again): the call path renews the session.
        let Some(session) = h.session() else {
            return Held::Failed;
        };
        let version = self.hs.version.clone();
        let mut headers = h.headers_for(&version, Some(&session));
        if let Some((s, id)) = resume.as_ref() {
            if **s == *session {
                headers.push(("Last-Event-ID".into(), id.clone()));
            }
        }
        let mut stream = match EventStream::open(&h.url, &headers, up.request_timeout, MAX_MESSAGE)
        {
            Ok(s) => s,
            Err(ClientError::Status(405)) => {
                tracing::info!(server = %up.name, "offers no GET stream (405): messages outside calls cannot reach its clients");
                return Held::Never;
            }
            Err(e) => {
                tracing::debug!(server = %up.name, "its GET stream: {e}");
                return Held::Failed;
            }
        };
        tracing::debug!(server = %up.name, "GET stream open");
        self.read(h, &mut stream, |me, ev| {
            if let Some(id) = ev.id.filter(|i| !i.is_empty()) {
                *resume = Some((session.clone(), id));
            }
            tracked.drain_into(&mut me.inflight);
            me.route(ev.data.as_bytes(), &version);
        });
        Held::Ended
    }

    /// A 2026-07-28 server's `subscriptions/listen` stream, for the list changes it announces.
    fn hold_listen(&mut self, h: &super::http::HttpUpstream) -> Held {
        let up = self.up;
        let changes =
            |cap: &str| self.hs.capabilities[cap]["listChanged"] == serde_json::json!(true);
        if !["tools", "prompts", "resources"].iter().any(|c| changes(c)) {
            return Held::Never;
        }
        let wanted = serde_json::json!({ "notifications": {
            "toolsListChanged": changes("tools"),
            "promptsListChanged": changes("prompts"),
            "resourcesListChanged": changes("resources"),
        }});
        let params = super::handshake::with_modern_meta(Some(wanted.to_string().as_bytes()), None);
        let body = crate::jsonrpc::request_with_id(Some(1), "subscriptions/listen", Some(&params));
        let mut headers = h.headers_for(&self.hs.version, None);
        headers.push(("Mcp-Method".into(), "subscriptions/listen".into()));
        let mut stream = match EventStream::post(
            &h.url,
            &headers,
            &body,
            up.request_timeout,
            MAX_MESSAGE,
        ) {
            Ok(s) => s,
            Err(e @ (ClientError::Status(_) | ClientError::Malformed(_))) => {
                tracing::info!(server = %up.name, "offers no subscriptions/listen stream ({e}): its list changes reach the gateway only at restarts");
                return Held::Never;
            }
            Err(e) => {
                tracing::debug!(server = %up.name, "its listen stream: {e}");
                return Held::Failed;
            }
        };
        tracing::debug!(server = %up.name, "subscriptions/listen stream open");
        self.read(h, &mut stream, |me, ev| {
            if let Ok(f) = Frame::parse(Bytes::from(ev.data.into_bytes())) {
                if f.kind == Kind::Notification {
                    me.notification(f);
                }
            }
        });
        Held::Ended
    }

    /// Read `stream`'s messages into `on_message` until it ends (or `Standing::stop`).
    fn read(
        &mut self,
        h: &super::http::HttpUpstream,
        stream: &mut EventStream,
        mut on_message: impl FnMut(&mut Self, crate::http::sse::Event),
    ) {
        // Unbounded wait for events; a failure here leaves the open timeout, which only makes a
        // quiet stream reconnect.
        let _ = stream.socket().set_read_timeout(None);
        if let Ok(sock) = stream.socket().try_clone() {
            h.standing.socket.store(Some(Arc::new(sock)));
        }
        let why = loop {
            match stream.next_event() {
                Ok(Some(ev)) => {
                    if matches!(ev.event.as_deref(), None | Some("message")) && !ev.data.is_empty()
                    {
                        on_message(self, ev);
                    }
                }
                Ok(None) => break "ended".to_owned(),
                Err(e) => break e.to_string(),
            }
        };
        h.standing.socket.store(None);
        tracing::debug!(server = %self.up.name, "its standing stream {why}");
    }

    fn route(&mut self, text: &[u8], version: &str) {
        let up = self.up;
        let frame = match Frame::parse(Bytes::copy_from_slice(text)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(server = %up.name, "ignoring a message on its GET stream that is not JSON-RPC: {e}");
                return;
            }
        };
        match frame.kind {
            Kind::Request => self.request(frame, version),
            Kind::Notification => self.notification(frame),
            Kind::Response | Kind::ErrorResponse => {
                tracing::debug!(server = %up.name, "a response on its GET stream; dropped")
            }
        }
    }

    fn request(&mut self, frame: Frame, version: &str) {
        let up = self.up;
        let method = frame.method().unwrap_or_default().into_owned();
        if method == "ping" {
            return self.post(&link::answer(&frame, Ok(b"{}")), version);
        }
        let why = match self.inflight.origin() {
            Origin::Call(id) => return self.deliver(id, frame),
            Origin::Nobody if method == "roots/list" => {
                // Asked at connect, of the gateway itself: no roots to give.
                let msg = crate::mcp::relay::answer(&frame, Err((-32601, "Method not found")));
                return self.post(&msg, version);
            }
            Origin::Nobody => "no client request is in flight on this server".to_owned(),
            Origin::Ambiguous(n) => format!(
                "requests of {n} clients are in flight on this server and its GET stream does not say which one this is for"
            ),
        };
        tracing::warn!(server = %up.name, %method, "server-to-client request refused: {why}");
        let refusal = link::answer(
            &frame,
            Err(&format!("switchyard cannot route this request: {why}")),
        );
        self.post(&refusal, version);
    }

    fn notification(&mut self, frame: Frame) {
        let up = self.up;
        let method = frame.method().unwrap_or_default();
        if super::link::announce(self.shared, up, 0, &frame) {
            // told to control or to every shard
        } else if method == "notifications/message" {
            match self.inflight.origin_or_recent(LOG_GRACE) {
                Origin::Call(id) => self.deliver(id, frame),
                _ => {
                    tracing::debug!(server = %up.name, "a log message for no single client; dropped")
                }
            }
        } else if method == "notifications/progress" {
            // The token is the id of the request it reports on (the gateway set it so).
            let token = frame
                .params_raw()
                .and_then(|p| sonic_rs::get(p, ["progressToken"]).ok())
                .and_then(|t| t.as_raw_str().parse::<u64>().ok());
            if let Some(id) = token {
                self.to_lane(id, frame);
            }
        } else {
            tracing::debug!(server = %up.name, %method, "notification not relayed");
        }
    }

    /// A message for the client of call `id`: its session's GET stream (a legacy client), or the
    /// call itself (a 2026-07-28 client's held call, whose origin is its own id).
    fn deliver(&self, id: u64, frame: Frame) {
        match self.inflight.origin_of(id) {
            Some(session) if session != id => offer(self.shared, self.up.index, session, frame),
            _ => self.to_lane(id, frame),
        }
    }

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

    /// POST one message of ours (an answer) on the session.
    fn post(&self, msg: &[u8], version: &str) {
        let Some(h) = self.http() else { return };
        let session = h.session();
        let mut headers = h.headers_for(version, session.as_ref());
        headers.push((
            "Accept".into(),
            "application/json, text/event-stream".into(),
        ));
        let mut poster = Poster::new(h.url.clone(), headers, self.up.request_timeout);
        match poster.post(msg) {
            Ok((status, _)) if (200..300).contains(&status) => {}
            Ok((status, text)) => {
                tracing::debug!(server = %self.up.name, "our answer on its session: HTTP {status}: {}", text.trim())
            }
            Err(e) => tracing::debug!(server = %self.up.name, "our answer on its session: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(shards: usize) -> Unlinked {
        let msg = br#"{"jsonrpc":"2.0","id":3,"method":"roots/list"}"#;
        Unlinked {
            upstream: 0,
            session: 7,
            frame: Frame::parse(Bytes::from_static(msg)).expect("a request"),
            claimed: AtomicBool::new(false),
            left: AtomicUsize::new(shards),
        }
    }

    #[test]
    fn one_shard_takes_an_offer_and_nobody_refuses_it() {
        let u = offer(3);
        assert!(!u.unclaimed_at_last());
        assert!(u.claim());
        assert!(!u.claim(), "a second shard must not deliver it again");
        assert!(!u.unclaimed_at_last());
        assert!(
            !u.unclaimed_at_last(),
            "taken: the last shard must not refuse it"
        );
    }

    #[test]
    fn the_last_shard_refuses_what_nobody_took() {
        let u = offer(2);
        assert!(!u.unclaimed_at_last());
        assert!(u.unclaimed_at_last());
    }

    #[test]
    fn a_log_line_just_after_its_call_still_has_a_client() {
        let (tracker, tracked) = link::tracking();
        let mut inflight = InFlight::default();
        tracker.sent(5, 9);
        tracked.drain_into(&mut inflight);
        assert!(matches!(inflight.origin(), Origin::Call(5)));
        tracker.gave_up(5);
        tracked.drain_into(&mut inflight);
        assert!(matches!(inflight.origin(), Origin::Nobody));
        assert!(matches!(
            inflight.origin_or_recent(Duration::from_secs(5)),
            Origin::Call(5)
        ));
        assert_eq!(inflight.origin_of(5), Some(9));
        // a second client's call in flight: a request has one owner again, the newest
        tracker.sent(6, 11);
        tracked.drain_into(&mut inflight);
        assert!(matches!(inflight.origin(), Origin::Call(6)));
        tracker.sent(8, 12);
        tracked.drain_into(&mut inflight);
        assert!(matches!(inflight.origin(), Origin::Ambiguous(2)));
    }
}
