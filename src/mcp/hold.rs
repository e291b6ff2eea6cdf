//! Era bridging toward 2026-07-28 clients: a legacy server (stdio, SSE or Streamable HTTP) that asks the client something
//! mid-call (`sampling/createMessage`, `elicitation/create`, `roots/list`) cannot reach a 2026-07-28
//! client, which takes no server-to-client requests. The gateway holds the upstream call (its waiter
//! parks in this shard's table), answers the client with an `InputRequiredResult` carrying the
//! question and a sealed `requestState` naming the held call, and when the retry brings
//! `inputResponses` it answers the server and goes on waiting. A retry that reaches another shard
//! is handed to the holding one over its lane.
//!
//! Bounded: at most `MAX_HELD` calls per shard, each for at most the server's request timeout
//! (then the server is told to stop); only the waiter and the server's request id are kept.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{Frame, Kind};
use crate::shard::lane::{Delivery, Waiter};
use crate::shard::ShardCtx;
use crate::upstream::{Transport, Upstream};

/// What a sealed state of a held call says: `switchyard-hold:<lane>:<id>`.
pub const PREFIX: &str = "switchyard-hold:";
/// The one key of the `inputRequests` the gateway makes.
pub const KEY: &str = "input";
const MAX_HELD: usize = 1024;

struct HeldCall {
    waiter: Waiter,
    up: Arc<Upstream>,
    /// The server's id for its question.
    asked: Bytes,
    since: Instant,
}

/// One shard's held calls.
#[derive(Default)]
pub struct Held {
    calls: RefCell<HashMap<u64, HeldCall>>,
}

/// Where a call stands.
pub enum Step {
    Reply(Frame),
    /// Held: `hold` is the state to seal, `request` the server's question.
    Ask {
        hold: String,
        request: Frame,
    },
}

/// The client capability a server's question needs (`sampling`, `elicitation`, `roots`), or `None`
/// when the message is not a question only a client can answer.
pub fn needs(f: &Frame) -> Option<&'static str> {
    if f.kind != Kind::Request {
        return None;
    }
    match f.method().as_deref() {
        Some("sampling/createMessage") => Some("sampling"),
        Some("elicitation/create") => Some("elicitation"),
        Some("roots/list") => Some("roots"),
        _ => None,
    }
}

/// Which of `sampling`, `elicitation`, `roots` a 2026-07-28 client declared (its `_meta`).
#[derive(Clone, Copy, Default)]
pub struct Caps(u8);

impl Caps {
    const NAMES: [&'static str; 3] = ["sampling", "elicitation", "roots"];

    pub fn from_meta(meta: Option<&[u8]>) -> Caps {
        let mut bits = 0;
        if let Some(m) = meta {
            for (i, name) in Self::NAMES.iter().enumerate() {
                if sonic_rs::get(m, ["io.modelcontextprotocol/clientCapabilities", name]).is_ok() {
                    bits |= 1 << i;
                }
            }
        }
        Caps(bits)
    }

    fn has(self, name: &str) -> bool {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// Wait on an upstream call until its reply, or until the server asks a question (the call is then
/// held). Other messages (progress, log lines) go to `on_interim`.
///
/// A question the client could not answer (it did not declare the capability) is not the client's:
/// over stdio it is often the server's own session-level request (server-everything asks
/// `roots/list` 350 ms after `initialized`) merely attributed to the one call in flight. The server
/// gets the error a client without that capability would give, and the call goes on.
pub async fn drive(
    ctx: &ShardCtx,
    up: &Arc<Upstream>,
    mut waiter: Waiter,
    caps: Caps,
    on_interim: &dyn Fn(Frame),
) -> Result<Step, Error> {
    let deadline = monoio::time::Instant::now() + up.request_timeout;
    loop {
        match monoio::time::timeout_at(deadline, waiter.next()).await {
            Ok(Some(Delivery::Final(r))) => return r.map(Step::Reply),
            Ok(Some(Delivery::Interim(f))) if needs(&f).is_some_and(|n| !caps.has(n)) => {
                let need = needs(&f).unwrap_or_default();
                let mut msg = Vec::with_capacity(160);
                msg.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
                msg.extend_from_slice(f.id_raw().unwrap_or(b"null"));
                msg.extend_from_slice(b",\"error\":{\"code\":-32601,\"message\":\"Method not found: the client has no ");
                msg.extend_from_slice(need.as_bytes());
                msg.extend_from_slice(b" capability\"}}");
                crate::upstream::respond(&ctx.lane, up, msg).await?;
            }
            Ok(Some(Delivery::Interim(f))) if needs(&f).is_some() => {
                let asked = Bytes::copy_from_slice(f.id_raw().unwrap_or(b"null"));
                let id = hold(ctx, waiter, up, asked)?;
                return Ok(Step::Ask {
                    hold: format!("{PREFIX}{}:{id}", ctx.index()),
                    request: f,
                });
            }
            Ok(Some(Delivery::Interim(f))) => on_interim(f),
            Ok(None) => {
                return Err(Error::upstream(
                    ErrorKind::UpstreamUnavailable,
                    format!("server {:?} went away before answering", up.name),
                ))
            }
            Err(_) => {
                cancel(ctx, up, waiter.id, "switchyard: request timed out");
                return Err(Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("server {:?} did not answer in time", up.name),
                ));
            }
        }
    }
}

fn hold(ctx: &ShardCtx, waiter: Waiter, up: &Arc<Upstream>, asked: Bytes) -> Result<u64, Error> {
    let mut calls = ctx.held.calls.borrow_mut();
    if calls.len() >= MAX_HELD {
        let expired: Vec<u64> = calls
            .iter()
            .filter(|(_, c)| c.since.elapsed() > c.up.request_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(c) = calls.remove(&id) {
                cancel(
                    ctx,
                    &c.up,
                    c.waiter.id,
                    "switchyard: the client never answered",
                );
            }
        }
    }
    if calls.len() >= MAX_HELD {
        cancel(
            ctx,
            up,
            waiter.id,
            "switchyard: too many calls waiting for input",
        );
        return Err(Error::upstream(
            ErrorKind::UpstreamUnavailable,
            "too many calls are waiting for clients' input on this gateway",
        ));
    }
    let id = ctx.lane.next_id();
    calls.insert(
        id,
        HeldCall {
            waiter,
            up: up.clone(),
            asked,
            since: Instant::now(),
        },
    );
    Ok(id)
}

fn cancel(ctx: &ShardCtx, up: &Arc<Upstream>, id: u64, reason: &'static str) {
    match &up.transport {
        Transport::Stdio(s) => s.slot.cancel(&ctx.lane, id, reason),
        Transport::Sse(s) => s.slot.cancel(&ctx.lane, id, reason),
        // Over Streamable HTTP dropping the waiter ends the POST, which a 2025-11-25 server does
        // not take as cancellation: it is told.
        Transport::Http(_) => {
            let msg = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": { "requestId": id, "reason": reason },
            });
            crate::mcp::relay::respond_later(up.clone(), msg.to_string().into_bytes());
        }
    }
}

/// On the holding shard: answer the server's question with `answer` (a result object) and go on.
pub async fn resume(
    ctx: &ShardCtx,
    hold: u64,
    answer: serde_json::Value,
    caps: Caps,
    on_interim: &dyn Fn(Frame),
) -> Result<Step, Error> {
    let call = ctx.held.calls.borrow_mut().remove(&hold);
    let Some(call) = call else {
        return Err(Error::downstream(
            ErrorKind::InvalidParams,
            "Invalid requestState: the call it names is no longer waiting (answered or expired)",
        ));
    };
    if call.since.elapsed() > call.up.request_timeout {
        cancel(
            ctx,
            &call.up,
            call.waiter.id,
            "switchyard: the client answered too late",
        );
        return Err(Error::downstream(
            ErrorKind::InvalidParams,
            "Invalid requestState: the call it names expired",
        ));
    }
    let mut msg = Vec::with_capacity(64);
    msg.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    msg.extend_from_slice(&call.asked);
    msg.extend_from_slice(b",\"result\":");
    msg.extend_from_slice(answer.to_string().as_bytes());
    msg.push(b'}');
    crate::upstream::respond(&ctx.lane, &call.up, msg).await?;
    drive(ctx, &call.up, call.waiter, caps, on_interim).await
}

/// Let go of a call just held on this shard (the client cannot answer it): the server is told.
pub fn abandon(ctx: &ShardCtx, hold: &str) {
    let Some((_, id)) = hold.strip_prefix(PREFIX).and_then(parse) else {
        return;
    };
    let call = ctx.held.calls.borrow_mut().remove(&id);
    if let Some(c) = call {
        cancel(
            ctx,
            &c.up,
            c.waiter.id,
            "switchyard: the client cannot answer the question",
        );
    }
}

/// Parse `<lane>:<id>` after the prefix.
pub fn parse(hold: &str) -> Option<(u16, u64)> {
    let (lane, id) = hold.split_once(':')?;
    Some((lane.parse().ok()?, id.parse().ok()?))
}

/// A held call's resumption asked of its shard by another.
pub struct Resume {
    pub hold: u64,
    pub answer: serde_json::Value,
    pub caps: Caps,
    pub reply: flume::Sender<Result<Step, Error>>,
}

/// On the holding shard, for a retry that reached another one (progress of the rest is not relayed).
pub fn resume_for_other(ctx: std::rc::Rc<ShardCtx>, r: Resume) {
    monoio::spawn(async move {
        let step = resume(&ctx, r.hold, r.answer, r.caps, &|_| {}).await;
        let _ = r.reply.send(step);
    });
}
