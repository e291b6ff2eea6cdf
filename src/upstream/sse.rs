//! Legacy SSE upstreams (the 2024-11-05 "HTTP+SSE" transport): every message of the server arrives
//! on one long-lived GET event stream, whose first event (`endpoint`) names where to POST ours.
//!
//! The stream is read like a stdio child's stdout: a plain thread holds the GET on a blocking
//! socket and routes each `message` event by `link`'s rules; another drains the outbound queue,
//! POSTing one message at a time over a kept-alive connection (the answers, 202, carry nothing),
//! which also keeps them in order (`initialize` before `notifications/initialized`, a request
//! before its cancellation). The shards never block: they only queue and await. When the stream
//! ends the upstream is down and control reconnects it with backoff; a new stream is a new session
//! on the server, so each connection does the legacy handshake again.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::link::{self, Out, Router, Slot, Tracker, MAX_MESSAGE};
use super::{Transport, Upstream};
use crate::error::{Error, ErrorKind};
use crate::http::blocking::{EventStream, Poster};
use crate::http::client::{ClientError, Url};
use crate::shard::lane::split_id;
use crate::shard::{LaneMsg, Shared};

/// The event stream's socket, known once connected: shutting it down ends the reader thread.
type StreamSocket = Arc<OnceLock<TcpStream>>;

pub struct SseUpstream {
    /// The GET (event stream) URL.
    pub url: Url,
    headers: Vec<(String, String)>,
    pub slot: Slot<StreamSocket>,
}

impl SseUpstream {
    pub fn new(url: &str, headers: &[(String, String)]) -> Result<SseUpstream, String> {
        Ok(SseUpstream {
            url: Url::parse(url)?,
            headers: headers.to_vec(),
            slot: Slot::default(),
        })
    }

    /// Open the event stream and wait (until `deadline`) for its endpoint; then the stream is read
    /// and the queue drained by their threads. The handshake is the caller's next step.
    pub async fn connect(
        &self,
        shared: &Arc<Shared>,
        up: &Arc<Upstream>,
        deadline: Instant,
    ) -> Result<u64, Error> {
        let socket = StreamSocket::default();
        let (generation, tx, rx) = self.slot.install(socket.clone());
        let (ready_tx, ready_rx) = flume::bounded::<Result<(), String>>(1);
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let (shared2, up2) = (shared.clone(), up.clone());
        let opened = Opened {
            generation,
            socket,
            tx,
            rx,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("{}-sse", up.name))
            .spawn(move || read_stream(&shared2, &up2, opened, &ready_tx, wait));
        let unavailable = |why: String| {
            Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?}: {why}", up.name),
            )
        };
        if let Err(e) = spawned {
            self.slot.clear(generation);
            return Err(unavailable(format!("cannot start its stream thread: {e}")));
        }
        match monoio::time::timeout(wait, ready_rx.recv_async()).await {
            Ok(Ok(Ok(()))) => Ok(generation),
            Ok(Ok(Err(why))) => Err(unavailable(why)),
            Ok(Err(_)) => Err(unavailable("its stream thread ended".into())),
            Err(_) => Err(Error::upstream(
                ErrorKind::UpstreamTimeout,
                format!(
                    "server {:?} sent no endpoint event on GET {} in time",
                    up.name, self.url.path
                ),
            )),
        }
    }

    /// Close the event stream; its reader thread sees it end.
    pub fn terminate(&self) {
        if let Some(c) = self.slot.current() {
            if let Some(sock) = c.handle.get() {
                let _ = sock.shutdown(Shutdown::Both);
            }
        }
    }
}

/// One connection's pieces, handed to its reader thread.
struct Opened {
    generation: u64,
    socket: StreamSocket,
    tx: flume::Sender<Out>,
    rx: flume::Receiver<Out>,
}

/// The reader thread: open the stream, learn the endpoint, start the writer, then route every
/// message until the stream ends.
fn read_stream(
    shared: &Arc<Shared>,
    up: &Arc<Upstream>,
    c: Opened,
    ready: &flume::Sender<Result<(), String>>,
    wait: Duration,
) {
    let Transport::Sse(s) = &up.transport else {
        return;
    };
    let started = open(s, wait).and_then(|(stream, endpoint)| {
        // A socket operation that fails here leaves a stream that still works; shutdown and the
        // unbounded wait for events are what matter, and both are best effort.
        if let Ok(sock) = stream.socket().try_clone() {
            let _ = c.socket.set(sock);
        }
        let _ = stream.socket().set_read_timeout(None);
        let (tracker, tracked) = link::tracking();
        let poster = Poster::new(endpoint, s.headers.clone(), up.request_timeout);
        let (shared2, up2, rx) = (shared.clone(), up.clone(), c.rx);
        std::thread::Builder::new()
            .name(format!("{}-post", up.name))
            .spawn(move || writer(&shared2, &up2, poster, &rx, &tracker))
            .map_err(|e| format!("cannot start its writer thread: {e}"))?;
        Ok((stream, tracked))
    });
    let (mut stream, tracked) = match started {
        Ok(x) => x,
        Err(why) => {
            s.slot.clear(c.generation);
            let _ = ready.send(Err(why));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        // Whoever waited for this connection gave up on it.
        s.slot.clear(c.generation);
        return;
    }
    let mut router = Router::new(shared, up, c.generation, c.tx, tracked);
    let reason = loop {
        match stream.next_event() {
            Ok(Some(ev)) => match ev.event.as_deref() {
                None | Some("message") => router.route(ev.data.as_bytes()),
                Some(other) => {
                    tracing::debug!(server = %up.name, event = other, "an SSE event that is not a message; ignored")
                }
            },
            Ok(None) => break "its event stream ended".to_owned(),
            Err(e) => break format!("its event stream failed: {e}"),
        }
    };
    s.slot.ended(shared, up, c.generation, reason);
}

/// GET the stream and read up to its `endpoint` event: the stream, and the URL to POST to.
fn open(s: &SseUpstream, wait: Duration) -> Result<(EventStream, Url), String> {
    let mut stream = EventStream::open(&s.url, &s.headers, wait, MAX_MESSAGE)
        .map_err(|e| format!("GET {}: {e}", s.url.path))?;
    loop {
        match stream.next_event() {
            Ok(Some(ev)) if ev.event.as_deref() == Some("endpoint") => {
                let endpoint = s
                    .url
                    .join(&ev.data)
                    .map_err(|e| format!("its endpoint event: {e}"))?;
                return Ok((stream, endpoint));
            }
            Ok(Some(_)) => {
                tracing::debug!(server = %s.url.authority, "an event before the endpoint event; ignored")
            }
            Ok(None) => return Err("its event stream ended before the endpoint event".into()),
            Err(ClientError::Timeout) => return Err("no endpoint event in time".into()),
            Err(e) => return Err(format!("its event stream failed: {e}")),
        }
    }
}

/// The writer thread: POST each queued message in turn. A request whose POST fails fails at once
/// on its lane (its answer will never come); anything else is only logged.
fn writer(
    shared: &Shared,
    up: &Upstream,
    mut poster: Poster,
    rx: &flume::Receiver<Out>,
    tracker: &Tracker,
) {
    while let Ok(out) = rx.recv() {
        tracker.note(&out);
        let error = match poster.post(&out.msg) {
            Ok((status, _)) if (200..300).contains(&status) => continue,
            Ok((status, text)) => Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!(
                    "server {:?} refused a message with HTTP {status}: {}",
                    up.name,
                    text.trim()
                ),
            ),
            Err(ClientError::Timeout) => Error::upstream(
                ErrorKind::UpstreamTimeout,
                format!("server {:?} did not take a message in time", up.name),
            ),
            Err(e) => Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {:?} is unavailable: {e}", up.name),
            ),
        };
        let Some((id, _)) = out.track else {
            tracing::warn!(server = %up.name, "{error}");
            continue;
        };
        tracker.gave_up(id);
        let (lane, _) = split_id(id);
        if let Some(l) = shared.lanes.get(lane as usize) {
            let _ = l.send(LaneMsg::Failed {
                upstream: up.index,
                id,
                error,
            });
        }
    }
}
