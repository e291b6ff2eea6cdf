//! Resource subscriptions held on shared legacy upstreams for clients: legacy sessions'
//! `resources/subscribe` and 2026-07-28 listen streams' `resourceSubscriptions`. One upstream
//! connection serves many clients, so the control thread counts holders per (upstream, URI): the
//! server hears `resources/subscribe` when the first client subscribes, `resources/unsubscribe`
//! when the last one leaves (unsubscribes, its session ends, its listen stream closes), and
//! `resources/subscribe` again for what is held after it restarts. A 2026-07-28 server has no
//! `resources/subscribe`: a held URI is a `subscriptions/listen` of its own (`Watch`), opened for
//! the first holder and ended with the last. Either way the server's `resources/updated` reaches
//! each holder through `link::announce` and `mcp::listen`.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use hashbrown::HashMap;

use super::{handshake, link, Transport, Upstream};
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{Frame, Kind};
use crate::shard::lane::{Delivery, Lane};
use crate::shard::{ControlMsg, Shared};

/// The answer to a subscriber: the server's own reply when this subscription asked it, `None`
/// when the subscription was already held (the answer is an empty result).
pub type Outcome = Result<Option<Frame>, Error>;
pub type Reply = flume::Sender<Outcome>;

struct Entry {
    holders: u32,
    /// Waiting for the server's answer to `resources/subscribe` (the first holder's and those
    /// that came meanwhile).
    pending: Option<Vec<Reply>>,
}

/// The control thread's count of holders (single owner; no locks).
#[derive(Default)]
pub struct Book {
    entries: HashMap<(u16, Box<str>), Entry>,
}

impl Book {
    /// A client subscribes to `uri` of `upstream`. True when the caller must now send
    /// `resources/subscribe` to the server (then call `subscribed`); otherwise `reply` is answered
    /// or queued.
    pub fn subscribe(&mut self, upstream: u16, uri: &str, reply: Reply) -> bool {
        match self.entries.get_mut(&(upstream, Box::from(uri))) {
            Some(e) => {
                e.holders += 1;
                match &mut e.pending {
                    Some(waiting) => waiting.push(reply),
                    None => {
                        let _ = reply.send(Ok(None));
                    }
                }
                false
            }
            None => {
                self.entries.insert(
                    (upstream, uri.into()),
                    Entry {
                        holders: 1,
                        pending: Some(vec![reply]),
                    },
                );
                true
            }
        }
    }

    /// The server answered the `resources/subscribe` for `uri`. A refusal (error or error
    /// response) goes to every waiter and nobody holds it. True when every holder left meanwhile:
    /// the caller must send `resources/unsubscribe`.
    pub fn subscribed(&mut self, upstream: u16, uri: &str, outcome: Result<Frame, Error>) -> bool {
        let key = (upstream, Box::from(uri));
        let Some(e) = self.entries.get_mut(&key) else {
            return false;
        };
        let waiting = e.pending.take().unwrap_or_default();
        let holders = e.holders;
        let refused = match &outcome {
            Ok(f) => f.kind == crate::jsonrpc::Kind::ErrorResponse,
            Err(_) => true,
        };
        for w in waiting {
            let _ = w.send(outcome.clone().map(Some));
        }
        if refused || holders == 0 {
            self.entries.remove(&key);
        }
        !refused && holders == 0
    }

    /// A holder lets go of `uri`. True when it was the last one and the server holds it: the
    /// caller must send `resources/unsubscribe`.
    pub fn unsubscribe(&mut self, upstream: u16, uri: &str) -> bool {
        let key = (upstream, Box::from(uri));
        let Some(e) = self.entries.get_mut(&key) else {
            return false;
        };
        e.holders = e.holders.saturating_sub(1);
        if e.holders > 0 || e.pending.is_some() {
            return false;
        }
        self.entries.remove(&key);
        true
    }

    /// What is held on `upstream` (to subscribe again after it restarted).
    pub fn held_on(&self, upstream: u16) -> Vec<Box<str>> {
        self.entries
            .iter()
            .filter(|((u, _), e)| *u == upstream && e.pending.is_none())
            .map(|((_, uri), _)| uri.clone())
            .collect()
    }

    /// How many clients hold `uri` of `upstream`.
    pub fn holders(&self, upstream: u16, uri: &str) -> u32 {
        self.entries
            .get(&(upstream, Box::from(uri)))
            .map_or(0, |e| e.holders)
    }
}

/// Does `up` take resource subscriptions (`resources.subscribe`; in 2026-07-28: "honours
/// `resourceSubscriptions` in listen")?
pub fn offered(up: &Upstream) -> bool {
    up.ready()
        .is_some_and(|hs| hs.capabilities["resources"]["subscribe"] == serde_json::json!(true))
}

/// On a shard: hold `uri` (the server's own URI) of shared upstream `upstream` for a client.
pub async fn hold(shared: &Shared, upstream: u16, uri: &str) -> Outcome {
    shared
        .ask_control(|reply| ControlMsg::Subscribe {
            upstream,
            uri: uri.into(),
            reply,
        })
        .await
}

/// On a shard: a client lets go of what `hold` gave it.
pub fn let_go(shared: &Shared, upstream: u16, uri: &str) {
    let _ = shared.control.send(ControlMsg::Unsubscribe {
        upstream,
        uri: uri.into(),
    });
}

/// What a listen stream holds, let go when the stream ends (kept alive by its sink).
pub struct Held {
    pub shared: std::sync::Arc<Shared>,
    pub uris: Vec<(u16, Box<str>)>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for (upstream, uri) in &self.uris {
            let_go(&self.shared, *upstream, uri);
        }
    }
}

/// A resource subscription held on a 2026-07-28 server: a `subscriptions/listen` for that one
/// URI, kept open until `end`.
pub enum Watch {
    /// Over stdio: the listen request's id (cancelled to end it).
    Stdio { id: u64 },
    /// Over Streamable HTTP: a thread holds the listen POST's event stream (again after a drop).
    Http {
        stop: Arc<AtomicBool>,
        socket: Arc<ArcSwapOption<TcpStream>>,
    },
}

impl Watch {
    /// Stop listening.
    pub fn end(&self, up: &Upstream) {
        match self {
            Watch::Stdio { id } => {
                if let Transport::Stdio(s) = &up.transport {
                    let params = format!(
                        "{{\"requestId\":{id},\"reason\":\"switchyard: no client holds the subscription\"}}"
                    );
                    s.slot
                        .notify("notifications/cancelled", Some(params.as_bytes()));
                }
            }
            Watch::Http { stop, socket } => {
                stop.store(true, Ordering::Release);
                if let Some(sock) = socket.load_full() {
                    let _ = sock.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// The `subscriptions/listen` params for one URI.
fn listen_params(uri: &str) -> Vec<u8> {
    let p = serde_json::json!({ "notifications": { "resourceSubscriptions": [uri] } });
    handshake::with_modern_meta(Some(p.to_string().as_bytes()), None)
}

/// Does an acknowledgement honour `uri`?
fn honours(ack: &Frame, uri: &str) -> bool {
    ack.params_raw()
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        .and_then(|p| {
            p.pointer("/notifications/resourceSubscriptions")?
                .as_array()
                .map(|a| a.iter().any(|u| u.as_str() == Some(uri)))
        })
        .unwrap_or(false)
}

/// What a listen request's answer said (it should not have answered while listening).
fn answer_text(f: &Frame) -> String {
    match f.error_raw() {
        Some(e) => format!("it answered {}", String::from_utf8_lossy(e)),
        None => "it ended the listen request at once".into(),
    }
}

fn refused(up: &Upstream, uri: &str, why: &str) -> Error {
    Error::upstream(
        ErrorKind::UpstreamProtocol,
        format!("server {:?} did not subscribe to {uri:?}: {why}", up.name),
    )
}

/// From the control lane: open a `Watch` on 2026-07-28 server `up` for `uri`, once the server
/// acknowledged it.
pub async fn watch(
    shared: &Arc<Shared>,
    lane: &Lane,
    up: &Arc<Upstream>,
    hs: &handshake::Handshake,
    uri: &str,
) -> Result<Watch, Error> {
    match &up.transport {
        Transport::Stdio(s) => {
            let id = lane.next_id();
            let mut waiter = lane.expect(id, up.index);
            let msg = crate::jsonrpc::request_with_id(
                Some(id),
                "subscriptions/listen",
                Some(&listen_params(uri)),
            );
            if !s.slot.send(msg) {
                lane.forget(id);
                return Err(up.unavailable());
            }
            // The acknowledgement comes back to this lane by its subscription id (`link`).
            let ack = monoio::time::timeout(up.request_timeout, async {
                loop {
                    match waiter.next().await {
                        Some(Delivery::Interim(f))
                            if f.method().as_deref()
                                == Some("notifications/subscriptions/acknowledged") =>
                        {
                            return Ok(f)
                        }
                        Some(Delivery::Interim(_)) => {}
                        Some(Delivery::Final(Ok(f))) => {
                            return Err(refused(up, uri, &answer_text(&f)))
                        }
                        Some(Delivery::Final(Err(e))) => return Err(e),
                        None => return Err(up.unavailable()),
                    }
                }
            })
            .await;
            lane.forget(id);
            let w = Watch::Stdio { id };
            match ack {
                Ok(Ok(f)) if honours(&f, uri) => Ok(w),
                Ok(Ok(_)) => {
                    w.end(up);
                    Err(refused(up, uri, "its acknowledgement leaves it out"))
                }
                Ok(Err(e)) => {
                    w.end(up);
                    Err(e)
                }
                Err(_) => {
                    w.end(up);
                    Err(refused(up, uri, "no acknowledgement in time"))
                }
            }
        }
        Transport::Http(_) => {
            let stop = Arc::new(AtomicBool::new(false));
            let socket = Arc::new(ArcSwapOption::empty());
            let (acked, ack) = flume::bounded(1);
            let (sh, u, v, ur, st, so) = (
                shared.clone(),
                up.clone(),
                hs.version.clone(),
                uri.to_owned(),
                stop.clone(),
                socket.clone(),
            );
            std::thread::Builder::new()
                .name(format!("{}-watch", up.name))
                .spawn(move || hold_http(&sh, &u, &v, &ur, &st, &so, acked))
                .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?;
            let w = Watch::Http { stop, socket };
            match monoio::time::timeout(up.request_timeout, ack.recv_async()).await {
                Ok(Ok(Ok(()))) => Ok(w),
                Ok(Ok(Err(why))) => {
                    w.end(up);
                    Err(refused(up, uri, &why))
                }
                _ => {
                    w.end(up);
                    Err(refused(up, uri, "no acknowledgement in time"))
                }
            }
        }
        Transport::Sse(_) => Err(refused(
            up,
            uri,
            "a legacy SSE server has no listen streams",
        )),
    }
}

/// First and longest waits between reconnections of an HTTP watch.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The thread of an HTTP `Watch`: POST the listen, tell `acked` how the first attempt went, then
/// read the server's updates into `link::announce`, reconnecting after drops until `stop`.
fn hold_http(
    shared: &Shared,
    up: &Upstream,
    version: &str,
    uri: &str,
    stop: &AtomicBool,
    socket: &ArcSwapOption<TcpStream>,
    acked: flume::Sender<Result<(), String>>,
) {
    let Transport::Http(h) = &up.transport else {
        return;
    };
    let mut acked = Some(acked);
    let body =
        crate::jsonrpc::request_with_id(Some(1), "subscriptions/listen", Some(&listen_params(uri)));
    let mut wait = FIRST_BACKOFF;
    while !stop.load(Ordering::Acquire) {
        let mut headers = h.headers_for(version, None);
        headers.push(("Mcp-Method".into(), "subscriptions/listen".into()));
        let started = Instant::now();
        match crate::http::blocking::EventStream::post(
            &h.url,
            &headers,
            &body,
            up.request_timeout,
            link::MAX_MESSAGE,
        ) {
            Ok(mut stream) => {
                let _ = stream.socket().set_read_timeout(None);
                if let Ok(s) = stream.socket().try_clone() {
                    socket.store(Some(Arc::new(s)));
                }
                // Ended while connecting: `end` found no socket to shut.
                if stop.load(Ordering::Acquire) {
                    break;
                }
                while let Ok(Some(ev)) = stream.next_event() {
                    let Ok(f) = Frame::parse(Bytes::from(ev.data.into_bytes())) else {
                        continue;
                    };
                    if f.kind != Kind::Notification {
                        continue;
                    }
                    if f.method().as_deref() == Some("notifications/subscriptions/acknowledged") {
                        let ok = honours(&f, uri);
                        if let Some(tx) = acked.take() {
                            let _ = tx.send(if ok {
                                Ok(())
                            } else {
                                Err("its acknowledgement leaves it out".into())
                            });
                        }
                        if !ok {
                            return;
                        }
                    } else {
                        link::announce(shared, up, 0, &f);
                    }
                }
                socket.store(None);
            }
            Err(e) => {
                if let Some(tx) = acked.take() {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                tracing::debug!(server = %up.name, %uri, "its resource listen stream: {e}");
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            wait = FIRST_BACKOFF;
        }
        let until = Instant::now() + wait;
        while !stop.load(Ordering::Acquire) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(text: &str) -> Frame {
        Frame::parse(Bytes::from(text.to_owned())).expect("frame")
    }

    #[test]
    fn the_server_hears_the_first_subscribe_and_the_last_unsubscribe() {
        let mut b = Book::default();
        let (tx, rx) = flume::unbounded();
        assert!(
            b.subscribe(0, "demo://a", tx.clone()),
            "first: ask the server"
        );
        assert!(
            !b.subscribe(0, "demo://a", tx.clone()),
            "second: wait with it"
        );
        assert!(rx.try_recv().is_err(), "nobody answered before the server");
        assert!(!b.subscribed(
            0,
            "demo://a",
            Ok(reply(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        ));
        let got: Vec<bool> = rx.try_iter().map(|o| matches!(o, Ok(Some(_)))).collect();
        assert_eq!(got, [true, true], "both get the server's answer");
        assert!(!b.subscribe(0, "demo://a", tx), "a third: held already");
        assert!(matches!(rx.try_recv(), Ok(Ok(None))));
        assert_eq!(b.holders(0, "demo://a"), 3);
        assert_eq!(b.held_on(0), vec![Box::<str>::from("demo://a")]);
        assert!(b.held_on(1).is_empty());
        assert!(!b.unsubscribe(0, "demo://a"));
        assert!(!b.unsubscribe(0, "demo://a"));
        assert!(
            b.unsubscribe(0, "demo://a"),
            "the last one leaves: tell the server"
        );
        assert!(!b.unsubscribe(0, "demo://a"), "nothing held any more");
    }

    #[test]
    fn a_refusal_reaches_every_waiter_and_holds_nothing() {
        let mut b = Book::default();
        let (tx, rx) = flume::unbounded();
        assert!(b.subscribe(0, "demo://x", tx.clone()));
        assert!(!b.subscribe(0, "demo://x", tx.clone()));
        let refusal = reply(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"no"}}"#);
        assert!(!b.subscribed(0, "demo://x", Ok(refusal)));
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(b.holders(0, "demo://x"), 0);
        assert!(b.subscribe(0, "demo://x", tx), "asked again next time");
        let gone = Error::upstream(ErrorKind::UpstreamUnavailable, "down");
        assert!(!b.subscribed(0, "demo://x", Err(gone)));
        assert!(matches!(rx.try_recv(), Ok(Err(_))));
        assert_eq!(b.holders(0, "demo://x"), 0);
    }

    #[test]
    fn leaving_while_the_server_is_asked_unsubscribes_once_it_answers() {
        let mut b = Book::default();
        let (tx, _rx) = flume::unbounded();
        assert!(b.subscribe(0, "demo://a", tx));
        assert!(!b.unsubscribe(0, "demo://a"), "not while it is being asked");
        assert!(b.subscribed(
            0,
            "demo://a",
            Ok(reply(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        ));
        assert_eq!(b.holders(0, "demo://a"), 0);
    }
}
