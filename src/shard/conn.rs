//! One front connection: read a request, hand it to the MCP front, write the answer; keep-alive until
//! the client closes, idles out, or the shard stops.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::time::Sleep;

use super::ShardCtx;
use crate::http::server::{read_request, Limits, Response};
use crate::mcp::resume::EventId;
use crate::mcp::sink::Sink;
use bytes::Bytes;

/// Counts a request as active for the drain, even if its future is dropped.
struct ActiveGuard<'a>(&'a ShardCtx);

impl<'a> ActiveGuard<'a> {
    fn new(ctx: &'a ShardCtx) -> Self {
        ctx.active.set(ctx.active.get() + 1);
        ActiveGuard(ctx)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get().saturating_sub(1));
    }
}

/// Counts an open connection for the per-shard limit.
struct ConnGuard<'a>(&'a ShardCtx);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.conns.set(self.0.conns.get().saturating_sub(1));
    }
}

/// A new connection: allowed network? room on this shard? TLS handshake if configured; then serve.
pub async fn accept(ctx: Rc<ShardCtx>, stream: TcpStream, peer: SocketAddr) {
    if !crate::policy::cidr::allowed(&ctx.shared.policy.networks, peer.ip()) {
        tracing::debug!(%peer, "connection from outside gateway.allowed_networks closed");
        return;
    }
    if ctx.conns.get() >= ctx.shared.config.gateway.max_connections_per_shard {
        tracing::warn!(%peer, "connection limit of this shard reached; answered 503 and closed");
        // A TLS client would need a handshake first: it is just closed. So is one past the
        // refusals already in progress, so that a flood cannot hold descriptors through them.
        if ctx.shared.tls.is_none() && ctx.refusing.get() < MAX_REFUSING {
            ctx.refusing.set(ctx.refusing.get() + 1);
            refuse_busy(stream).await;
            ctx.refusing.set(ctx.refusing.get().saturating_sub(1));
        }
        return;
    }
    ctx.conns.set(ctx.conns.get() + 1);
    let _guard = ConnGuard(&ctx);
    let _ = stream.set_nodelay(true);
    match &ctx.shared.tls {
        None => serve(&ctx, stream, peer).await,
        Some(cfg) => {
            let acceptor = monoio_rustls::TlsAcceptor::from(cfg.clone());
            match monoio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(&ctx, tls, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Connections over the limit answered at once per shard; more are closed unanswered.
const MAX_REFUSING: usize = 64;

/// Answer a connection over the shard's limit with 503 (`Retry-After: 1`) and close it, without
/// reading its request: half-close, then drain briefly so the close does not turn into a reset that
/// would discard the answer before the client reads it. At most about a second in all.
async fn refuse_busy(mut stream: TcpStream) {
    let e = crate::error::Error::new(
        crate::error::ErrorKind::Overloaded,
        crate::error::Source::Internal,
        "Service busy: this gateway shard has max_connections_per_shard connections open; retry shortly",
    );
    let mut out = Vec::new();
    crate::mcp::front::error_response(&e, None, None).encode(false, &mut out);
    let wrote = monoio::time::timeout(Duration::from_millis(500), stream.write_all(out)).await;
    if !matches!(wrote, Ok((Ok(_), _))) {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = monoio::time::timeout(Duration::from_millis(500), async {
        let mut buf = vec![0u8; 4096];
        loop {
            let (res, b) = stream.read(buf).await;
            buf = b;
            if !matches!(res, Ok(n) if n > 0) {
                break;
            }
        }
    })
    .await;
}

async fn serve<S: AsyncReadRent + AsyncWriteRent>(ctx: &ShardCtx, mut stream: S, peer: SocketAddr) {
    let gw = &ctx.shared.config.gateway;
    let limits = Limits {
        max_header_bytes: gw.max_header_bytes,
        max_body_bytes: gw.max_body_bytes,
        idle: Duration::from_millis(gw.idle_timeout_ms),
        read: Duration::from_millis(gw.request_read_timeout_ms),
    };
    let wlimit = Duration::from_millis(gw.write_timeout_ms);
    // Small to start: a thousand idle keep-alive clients should not cost 16 KB each; both grow to
    // what the connection's messages need.
    let mut buf = Vec::with_capacity(2048);
    let mut out = Vec::new();
    // One timer for every read of the connection (not armed until a read waits on it).
    let mut timer = std::pin::pin!(monoio::time::sleep(limits.idle));
    loop {
        let (res, b) = read_request(&mut stream, buf, &limits, timer.as_mut()).await;
        buf = b;
        let (head, body) = match res {
            Ok(r) => r,
            Err(e) => {
                if let Some(status) = e.status() {
                    tracing::debug!(%peer, "bad request: {e}");
                    let resp = crate::mcp::front::transport_error(status, &e.to_string());
                    resp.encode(false, &mut out);
                    let _ = write_within(
                        &mut stream,
                        std::mem::take(&mut out),
                        timer.as_mut(),
                        wlimit,
                    )
                    .await;
                }
                return;
            }
        };
        let guard = ActiveGuard::new(ctx);
        let started = std::time::Instant::now();
        let note = crate::audit::Note::new(ctx.shared.audit.is_some());
        let bytes_in = body.len();
        let sink = Sink::default();
        let resume = &ctx.shared.config.gateway.resume;
        // Messages the handler sends before its answer turn the response into an SSE stream; so
        // does a slow answer to a legacy session that accepts SSE (`gateway.resume`), whose stream
        // may also be ended early to make the client poll. Only such a request arms a timer.
        let mut streamed: Option<usize> = None;
        let mut wake = (head.session_id().is_some()
            && head
                .accept()
                .is_some_and(|a| crate::http::has_media_type(a, "text/event-stream")))
        .then(|| started + Duration::from_millis(resume.stream_after_ms));
        // The client left a resumable stream, or the gateway ended it: the call runs on, its
        // events go to the log only, and the connection closes once it is answered.
        let mut detached = false;
        // Pinned in place, not boxed: the handler's future is ~10 KB and boxing it cost a copy of
        // all of it (about a seventh of a proxied call's instructions). A bug that panics while
        // serving one request must not take the shard (and every other connection on it) down: it
        // becomes a 500 for this request alone.
        let outcome = {
            let handler = std::pin::pin!(crate::mcp::front::handle(
                ctx, &head, body, peer, &note, &sink,
            ));
            let mut fut = CatchUnwind(handler);
            loop {
                monoio::select! {
                    r = &mut fut => break Some(r),
                    Some((id, msg)) = sink.next_event() => {
                        out.clear();
                        if streamed.is_none() {
                            open_stream(ctx, &sink, &mut out);
                            if !detached {
                                wake = poll_deadline(&sink, resume);
                            }
                        }
                        let sent = streamed.get_or_insert(0);
                        let mut batch = (id, msg);
                        loop {
                            *sent += batch.1.len();
                            sse_event(&sink, batch.0, batch.1, &mut out);
                            match sink.try_next_event() {
                                Some(m) => batch = m,
                                None => break,
                            }
                        }
                        if detached {
                            continue;
                        }
                        let (res, o) = write_within(&mut stream, std::mem::take(&mut out), timer.as_mut(), wlimit).await;
                        out = o;
                        if res.is_err() {
                            if sink.log.borrow().is_none() {
                                // The client is gone: dropping the handler cancels its upstream work.
                                sink.close();
                                break None;
                            }
                            // 2025-11-25: a disconnect is not a cancellation; the client may resume.
                            detached = true;
                            wake = None;
                        }
                    }
                    _ = async {
                        if let Some(t) = wake {
                            monoio::time::sleep(t.saturating_duration_since(std::time::Instant::now())).await;
                        }
                    }, if wake.is_some() && !detached => {
                        out.clear();
                        wake = None;
                        if streamed.is_none() {
                            // A slow answer: stream it, priming the client to resume.
                            if !primed(&sink) {
                                continue;
                            }
                            open_stream(ctx, &sink, &mut out);
                            streamed = Some(0);
                            wake = poll_deadline(&sink, resume);
                        } else {
                            // Still running: end the response; the client polls with Last-Event-ID.
                            out.extend_from_slice(b"0\r\n\r\n");
                            detached = true;
                        }
                        let (res, o) = write_within(&mut stream, std::mem::take(&mut out), timer.as_mut(), wlimit).await;
                        out = o;
                        if detached {
                            let _ = stream.shutdown().await;
                        }
                        detached |= res.is_err();
                    }
                }
            }
        }; // the handler's future is dropped here
        let Some(outcome) = outcome else { return };
        let mut resp: Response = match outcome {
            Ok(r) => r,
            Err(()) => {
                tracing::error!(%peer, "a request handler panicked; answered 500");
                let mut r = crate::mcp::front::transport_error(500, "internal error");
                r.status = 500;
                r
            }
        };
        out.clear();
        if streamed.is_none() && resume.stream_after_ms == 0 && resp.status == 200 && primed(&sink)
        {
            // Configured to stream every answer of such a session, however quick.
            open_stream(ctx, &sink, &mut out);
            streamed = Some(0);
        }
        // Messages queued in the same instant as the answer still go first.
        while let Some((id, msg)) = sink.try_next_event() {
            if streamed.is_none() {
                open_stream(ctx, &sink, &mut out);
            }
            *streamed.get_or_insert(0) += msg.len();
            sse_event(&sink, id, msg, &mut out);
        }
        if let Some(audit) = &ctx.shared.audit {
            if head.path() == "/mcp" {
                let code = if memchr::memmem::find(&resp.body, b"\"error\":{").is_some() {
                    sonic_rs::get(resp.body.as_slice(), ["error", "code"])
                        .ok()
                        .and_then(|v| v.as_raw_str().parse::<i64>().ok())
                } else {
                    None
                };
                let outcome = crate::audit::Outcome {
                    status: if streamed.is_some() { 200 } else { resp.status },
                    code,
                    duration: started.elapsed(),
                    bytes_in,
                    bytes_out: resp.body.len() + streamed.unwrap_or(0),
                };
                // Strict durability waits here, before the response leaves; a line that did
                // not reach the disk turns the answer into an error.
                let recorded = audit
                    .record(
                        ctx.index() as usize - 1,
                        crate::audit::line(&note.take(), &outcome),
                    )
                    .await;
                if let Err(e) = recorded {
                    tracing::error!(%peer, "{e}: the request is answered with 500");
                    resp = audit_failed(resp, &e);
                }
            }
        }
        let keep_alive = head.keep_alive && !ctx.shared.is_stopping() && !detached;
        if let Some(standing) = resp.stream.clone() {
            drop(guard); // a standing stream does not hold up the drain; the shard closes it
                         // The answer's own headers (session id, CORS) head the stream.
            *sink.headers.borrow_mut() = resp.headers.clone();
            out.clear();
            sse_head(&sink, &mut out);
            if let Some(log) = standing.log.borrow().as_ref().filter(|l| l.prime) {
                priming(log, ctx.shared.config.gateway.resume.retry_ms, &mut out);
            }
            if !stand(&mut stream, &standing, out, timer.as_mut(), wlimit).await {
                return;
            }
            out = Vec::with_capacity(8192);
            if !keep_alive || ctx.shared.is_stopping() {
                return;
            }
            continue;
        }
        if streamed.is_some() {
            // The answer is the stream's last event.
            if !resp.body.is_empty() {
                sse_event(&sink, None, Bytes::from(resp.body), &mut out);
            }
            if let Some(log) = sink.log.borrow().as_ref() {
                log.end();
            }
            if detached {
                return;
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            resp.encode(keep_alive, &mut out);
        }
        let (res, o) = write_within(&mut stream, out, timer.as_mut(), wlimit).await;
        out = o;
        drop(guard);
        if res.is_err() || !keep_alive {
            return;
        }
    }
}

/// The answer to a request whose strict audit line could not be written: a JSON-RPC internal error
/// with the request's id, naming the failure (a success whose record is not on disk would break the
/// durability promise). The original answer's headers (session id, CORS) stay.
fn audit_failed(resp: Response, e: &crate::audit::AuditFailed) -> Response {
    let id = sonic_rs::get(resp.body.as_slice(), ["id"])
        .ok()
        .map(|v| v.as_raw_str().as_bytes().to_vec());
    let err = crate::error::Error::internal(format!("the request's {e}; its outcome is unknown"));
    let mut out = Response::json(500, err.to_jsonrpc(id.as_deref()));
    out.headers = resp.headers;
    out
}

/// `stream.write_all(out)` within `limit`, on the connection's kept timer (reads and writes of a
/// connection take turns): a client that stops reading cannot hold its connection, and its place
/// under `max_connections_per_shard`, forever.
async fn write_within<S: AsyncWriteRent>(
    stream: &mut S,
    out: Vec<u8>,
    timer: Pin<&mut Sleep>,
    limit: Duration,
) -> (std::io::Result<usize>, Vec<u8>) {
    let write = stream.write_all(out);
    match crate::http::server::within(timer, crate::http::server::after(limit), write).await {
        Some(r) => r,
        None => (
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take its answer in time",
            )),
            Vec::new(),
        ),
    }
}

/// Serve a standing stream after its head (in `out`): each message as it comes, a keep-alive comment
/// when idle (which also finds clients that left). `true` when the stream ended normally (the
/// connection can serve another request), `false` when the client is gone.
async fn stand<S: AsyncWriteRent>(
    stream: &mut S,
    sink: &Sink,
    mut out: Vec<u8>,
    mut timer: Pin<&mut Sleep>,
    wlimit: Duration,
) -> bool {
    const KEEPALIVE: Duration = Duration::from_secs(15);
    loop {
        let (res, o) = write_within(stream, out, timer.as_mut(), wlimit).await;
        out = o;
        if res.is_err() {
            sink.close();
            return false;
        }
        out.clear();
        monoio::select! {
            msg = sink.next_event() => match msg {
                Some((id, m)) => {
                    sse_event(sink, id, m, &mut out);
                    while let Some((id, m)) = sink.try_next_event() {
                        sse_event(sink, id, m, &mut out);
                    }
                }
                None => {
                    out.extend_from_slice(b"0\r\n\r\n");
                    let (res, _) = write_within(stream, out, timer.as_mut(), wlimit).await;
                    return res.is_ok();
                }
            },
            _ = monoio::time::sleep(KEEPALIVE) => {
                out.extend_from_slice(b"d\r\n: keepalive\n\n\r\n");
            }
        }
    }
}

/// The head of a streamed (SSE) answer: chunked, so the connection stays reusable afterwards.
fn sse_head(sink: &Sink, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n");
    for (k, v) in sink.headers.borrow().iter() {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The head of a streamed answer; a resumable one (a legacy session's) gets its log here and, for
/// 2025-11-25 clients, opens with the priming event.
fn open_stream(ctx: &ShardCtx, sink: &Sink, out: &mut Vec<u8>) {
    sse_head(sink, out);
    let Some(session) = sink.resumable.borrow().clone() else {
        return;
    };
    let resume = &ctx.shared.config.gateway.resume;
    let log = ctx.streams.open(ctx.index(), &session, false, resume);
    if log.prime {
        priming(&log, resume.retry_ms, out);
    }
    *sink.log.borrow_mut() = Some(log);
}

/// Does this request's answer go to a client whose revision resumes streams (2025-11-25 and later)?
fn primed(sink: &Sink) -> bool {
    sink.resumable
        .borrow()
        .as_ref()
        .is_some_and(|s| &*s.version >= "2025-11-25")
}

/// When a resumable stream that just opened is ended to make its client poll, if ever.
fn poll_deadline(sink: &Sink, resume: &crate::config::Resume) -> Option<std::time::Instant> {
    let primed = sink.log.borrow().as_ref().is_some_and(|l| l.prime);
    (primed && resume.poll_after_ms > 0)
        .then(|| std::time::Instant::now() + Duration::from_millis(resume.poll_after_ms))
}

/// The priming event (an id and empty data) with the reconnection delay, as one HTTP chunk.
fn priming(log: &crate::mcp::resume::Log, retry_ms: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    let ev = format!("id: {}\nretry: {retry_ms}\ndata: \n\n", log.priming_id());
    let _ = write!(out, "{:x}\r\n", ev.len());
    out.extend_from_slice(ev.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One SSE `message` event carrying `msg`, as one HTTP chunk. Its id is the one it came with
/// (replayed, followed) or, on a stream with a log, the one the log gives it as it is kept.
fn sse_event(sink: &Sink, id: Option<EventId>, msg: Bytes, out: &mut Vec<u8>) {
    use std::io::Write;
    let id = id.or_else(|| sink.log.borrow().as_ref().map(|l| l.record(msg.clone())));
    let id = id.map(|i| i.to_string());
    let mut ev = Vec::with_capacity(msg.len() + 48);
    crate::http::sse::write_event(&mut ev, id.as_deref(), &msg);
    let _ = write!(out, "{:x}\r\n", ev.len());
    out.extend_from_slice(&ev);
    out.extend_from_slice(b"\r\n");
}

/// Poll a future inside `catch_unwind`.
pub(crate) struct CatchUnwind<'a, F>(pub(crate) std::pin::Pin<&'a mut F>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<'_, F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}
