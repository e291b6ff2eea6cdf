//! One front connection: read a request, hand it to the MCP front, write the answer; keep-alive until
//! the client closes, idles out, or the shard stops.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::ShardCtx;
use crate::http::server::{read_request, Limits, Response};

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
        tracing::warn!(%peer, "connection limit of this shard reached; closed");
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

async fn serve<S: AsyncReadRent + AsyncWriteRent>(ctx: &ShardCtx, mut stream: S, peer: SocketAddr) {
    let gw = &ctx.shared.config.gateway;
    let limits = Limits {
        max_header_bytes: gw.max_header_bytes,
        max_body_bytes: gw.max_body_bytes,
        idle: Duration::from_millis(gw.idle_timeout_ms),
        read: Duration::from_secs(30),
    };
    let mut buf = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        let (res, b) = read_request(&mut stream, buf, &limits).await;
        buf = b;
        let (head, body) = match res {
            Ok(r) => r,
            Err(e) => {
                if let Some(status) = e.status() {
                    tracing::debug!(%peer, "bad request: {e}");
                    let resp = crate::mcp::front::transport_error(status, &e.to_string());
                    resp.encode(false, &mut out);
                    let _ = stream.write_all(std::mem::take(&mut out)).await;
                }
                return;
            }
        };
        let guard = ActiveGuard::new(ctx);
        let started = std::time::Instant::now();
        let note = crate::audit::Note::default();
        let bytes_in = body.len();
        // A bug that panics while serving one request must not take the shard (and every other
        // connection on it) down: it becomes a 500 for this request alone.
        let resp: Response = match CatchUnwind(Box::pin(crate::mcp::front::handle(
            ctx, &head, body, peer, &note,
        )))
        .await
        {
            Ok(r) => r,
            Err(()) => {
                tracing::error!(%peer, "a request handler panicked; answered 500");
                let mut r = crate::mcp::front::transport_error(500, "internal error");
                r.status = 500;
                r
            }
        };
        if let Some(audit) = &ctx.shared.audit {
            if head.path == "/mcp" {
                let code = if memchr::memmem::find(&resp.body, b"\"error\":{").is_some() {
                    sonic_rs::get(resp.body.as_slice(), ["error", "code"])
                        .ok()
                        .and_then(|v| v.as_raw_str().parse::<i64>().ok())
                } else {
                    None
                };
                let outcome = crate::audit::Outcome {
                    status: resp.status,
                    code,
                    duration: started.elapsed(),
                    bytes_in,
                    bytes_out: resp.body.len(),
                };
                // Strict durability waits here, before the response leaves.
                audit
                    .record(
                        ctx.index() as usize - 1,
                        crate::audit::line(&note.take(), &outcome),
                    )
                    .await;
            }
        }
        let keep_alive = head.keep_alive && !ctx.shared.is_stopping();
        resp.encode(keep_alive, &mut out);
        let (res, o) = stream.write_all(out).await;
        out = o;
        drop(guard);
        if res.is_err() || !keep_alive {
            return;
        }
    }
}

/// Poll a future inside `catch_unwind`.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
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
