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
//! `startup_timeout_ms`), so a client's first `tools/list` sees them. Later list changes reach a
//! legacy session as `notifications/*/list_changed` (its standing stream, as a GET stream over
//! HTTP) and a 2026-07-28 client through `subscriptions/listen`, whose notifications are written
//! while the request stays open. Stdin closing ends the process: requests in flight get the HTTP
//! front's drain bound, then the upstreams are stopped. Only JSON-RPC goes to stdout.

mod client;
mod pipes;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::shard::lane::Lane;
use crate::shard::{Gateway, LaneMsg, ShardCtx, Shared};
use crate::upstream::Status;
use client::Client;
use pipes::Line;

/// Where a stdio client's API key comes from: stdio has no headers.
pub const KEY_VAR: &str = "SWITCHYARD_API_KEY";

/// How long requests in flight when stdin closes may take (the HTTP front's drain bound).
const DRAIN: Duration = Duration::from_secs(10);
/// How often the start gate looks at the upstreams.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// How long the end waits for stdout to be written.
const FLUSH: Duration = Duration::from_secs(2);

/// What the process's signals ask of the stdio front.
pub enum Control {
    /// SIGINT or SIGTERM: stop now (requests in flight are cancelled).
    Stop,
    /// SIGHUP: the config read again; its `[auth]` and `[roles]` replace the policy.
    Reload(Box<Config>),
}

/// `switchyard stdio`: start the upstreams and serve the client on stdin/stdout until stdin closes
/// or `control` says stop; then stop everything. `key` is the client's API key (or token), if any.
pub fn serve(
    config: Config,
    key: Option<String>,
    control: flume::Receiver<Control>,
) -> Result<(), String> {
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
            control,
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
    control: flume::Receiver<Control>,
    max_line: usize,
}

/// Resolves when a stop is asked for (reloads are applied on the way); never, when nothing can ask.
async fn stop_asked(shared: &Shared, control: &flume::Receiver<Control>) {
    loop {
        match control.recv_async().await {
            Ok(Control::Stop) => return,
            Ok(Control::Reload(config)) => match shared.reload_auth(&config) {
                Ok(r) => tracing::info!(
                    keys = r.keys,
                    rules_changed = r.rules_changed,
                    "reloaded [auth] and [roles]"
                ),
                Err(e) => tracing::error!("reload refused, the previous policy stays: {e}"),
            },
            Err(_) => std::future::pending::<()>().await,
        }
    }
}

async fn run(shared: Arc<Shared>, pipe: Pipe, key: Option<String>) -> Result<(), String> {
    let ctx = Rc::new_cyclic(|me| ShardCtx {
        me: me.clone(),
        shared: shared.clone(),
        lane: Lane::new(1),
        sessions: Default::default(),
        active: Cell::new(0),
        auth: Default::default(),
        conns: Cell::new(0),
        refusing: Cell::new(0),
        answers: Default::default(),
        listeners: Default::default(),
        held: Default::default(),
        calls: Default::default(),
        streams: Default::default(),
    });
    // Its stop signal is the end of this function; `Gateway::stop` comes after.
    let (inbox_stop, _) = local_sync::oneshot::channel::<()>();
    monoio::spawn(crate::shard::inbox_loop(
        ctx.clone(),
        pipe.inbox,
        inbox_stop,
    ));
    let client = Client::new(ctx.clone(), pipe.out, key);
    client.check_identity().await?;
    tracing::info!(
        servers = shared.upstreams.len(),
        "switchyard serving one client on stdin/stdout"
    );
    monoio::select! {
        _ = settled(&shared) => {}
        _ = stop_asked(&shared, &pipe.control) => return Ok(()),
    }
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
            _ = stop_asked(&shared, &pipe.control) => {
                client.cancel_all();
                break;
            }
        }
        if client.is_gone() {
            tracing::info!("stdout is closed; stopping");
            break;
        }
    }
    // Stdin closed: requests in flight finish (bounded), unless a stop cuts them short.
    let deadline = Instant::now() + DRAIN;
    while client.working() > 0 && !client.is_gone() {
        if Instant::now() >= deadline {
            tracing::warn!(left = client.working(), "drain timed out; cancelling");
            break;
        }
        monoio::select! {
            _ = monoio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop_asked(&shared, &pipe.control) => break,
        }
    }
    client.cancel_all();
    // The cancelled ones still write their audit lines.
    let deadline = Instant::now() + Duration::from_secs(1);
    while client.in_flight() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    client.finish();
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
