//! The Streamable HTTP front: one endpoint, `/mcp`, serving both eras as the spec's versioning page
//! describes for dual-era servers. A request whose `params._meta` claims a protocol version is served
//! statelessly by the 2026-07-28 rules; `initialize` opens a legacy session; everything else belongs to
//! a legacy session. Transport-level checks (Origin, media types, headers, sessions) happen here, in
//! order, each answering early with its own status and JSON-RPC code; then `dispatch` runs the method.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::dispatch::{self, Exchange};
use super::session::{home_of, Session, SessionMsg};
use super::sink::Sink;
use super::{ClientEra, Method};
use crate::audit::Note;
use crate::error::{Error, ErrorKind};
use crate::http::has_media_type;
use crate::http::server::{Head, HttpMethod, Response};
use crate::jsonrpc::{Frame, FrameError, Kind};
use crate::policy::{Credentials, Principal};
use crate::shard::{LaneMsg, ShardCtx};
use crate::upstream::handshake::{LEGACY_VERSIONS, META_CAPS, META_VERSION, MODERN_VERSION};
use crate::upstream::http::decode_header_value;
use std::net::SocketAddr;

pub async fn handle(
    ctx: &ShardCtx,
    head: &Head,
    body: Bytes,
    peer: SocketAddr,
    note: &Note,
    sink: &Sink,
) -> Response {
    // CORS headers for a browser origin that passed the Origin check (a refused one got 403);
    // a streamed answer takes them from the sink, its head being written before the answer exists.
    let cors_origin = head
        .origin()
        .filter(|o| origin_allowed(o, &ctx.shared.config.gateway.allowed_origins));
    if let Some(o) = cors_origin {
        let extra = crate::policy::cors::decorate(Response::new(200), o).headers;
        sink.headers.borrow_mut().extend(extra);
    }
    let resp = route(ctx, head, body, peer, note, sink).await;
    match cors_origin {
        Some(o) => crate::policy::cors::decorate(resp, o),
        None => resp,
    }
}

async fn route(
    ctx: &ShardCtx,
    head: &Head,
    body: Bytes,
    peer: SocketAddr,
    note: &Note,
    sink: &Sink,
) -> Response {
    match (head.path(), head.method()) {
        ("/health", HttpMethod::Get | HttpMethod::Head) => health(ctx),
        (p, HttpMethod::Get) if p.starts_with("/.well-known/oauth-protected-resource") => {
            resource_metadata(ctx, head)
        }
        ("/mcp", m) => {
            if let Some(resp) = check_origin(ctx, head) {
                return resp;
            }
            if m == HttpMethod::Options {
                return crate::policy::cors::preflight(head.origin());
            }
            // W3C trace context: the trace id is the second field of `traceparent`.
            let trace = head
                .traceparent()
                .and_then(|t| t.split('-').nth(1))
                .map(str::to_owned);
            note.set(|f| {
                f.trace = trace;
                f.shard = Some(ctx.index());
            });
            let who = match admit(ctx, head, peer, note).await {
                Ok(p) => p,
                Err(resp) => {
                    if m == HttpMethod::Post {
                        note_refused(ctx, note, &body);
                    }
                    return resp;
                }
            };
            match m {
                HttpMethod::Post => post(ctx, head, body, who, note, sink).await,
                HttpMethod::Get => get(ctx, head, who).await,
                HttpMethod::Delete => delete(ctx, head, who).await,
                _ => error_response(
                    &Error::downstream(ErrorKind::InvalidRequest, "method not allowed"),
                    None,
                    None,
                )
                .with_status(405)
                .header("Allow", "GET, POST, DELETE"),
            }
        }
        _ => Response::json(
            404,
            br#"{"error":"not found: the MCP endpoint is /mcp"}"#.to_vec(),
        ),
    }
}

/// A call refused at the gate is still audited with its method and tool: the body was read
/// before the gate, and parsing it here costs nothing on the admitted path. A body that does not
/// parse leaves them out.
/// As for an admitted call, `server` and `tool` name the upstream and its own tool name (a name
/// not in the catalog is kept as sent).
fn note_refused(ctx: &ShardCtx, note: &Note, body: &Bytes) {
    let Ok(frame) = Frame::parse(body.clone()) else {
        return;
    };
    let method = frame.method().map(|m| m.into_owned());
    let catalog = ctx.shared.catalog.load();
    let routes = match method.as_deref() {
        Some("tools/call") => Some(&catalog.tools),
        Some("prompts/get") => Some(&catalog.prompts),
        _ => None,
    };
    let (server, tool) = match (routes, frame.name()) {
        (Some(routes), Some(name)) => match routes.get(name.as_ref()) {
            Some(r) => (
                ctx.shared.upstream(r.upstream).map(|u| u.name.clone()),
                Some(r.original.to_string()),
            ),
            None => (None, Some(name.into_owned())),
        },
        _ => (None, None),
    };
    note.set(|f| {
        f.method = method;
        f.server = server;
        f.tool = tool;
    });
}

trait WithStatus {
    fn with_status(self, status: u16) -> Self;
}

impl WithStatus for Response {
    fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// A JSON-RPC error as an HTTP response; `id` is the raw request id when known.
pub fn error_response(e: &Error, id: Option<&[u8]>, era: Option<ClientEra>) -> Response {
    let mut status = e.http_status();
    // 2026-07-28: a method the server does not implement is a 404.
    if era == Some(ClientEra::Modern) && e.kind == ErrorKind::MethodNotFound {
        status = 404;
    }
    let resp = Response::json(status, e.to_jsonrpc(id));
    if e.kind == ErrorKind::Overloaded {
        // A server at its concurrency cap frees a place as soon as any of its calls ends.
        return resp.header("Retry-After", "1".to_owned());
    }
    resp
}

/// The answer to a request that could not even be read (bad head, too large, too slow).
pub fn transport_error(status: u16, msg: &str) -> Response {
    let kind = match status {
        413 => ErrorKind::BodyTooLarge,
        _ => ErrorKind::InvalidRequest,
    };
    Response::json(
        status,
        Error::downstream(kind, msg.to_owned()).to_jsonrpc(None),
    )
}

/// The request flow's gates over HTTP: the credentials of the headers through `authenticate` and
/// `authorize`, a refusal as an HTTP answer with its challenge.
async fn admit(
    ctx: &ShardCtx,
    head: &Head,
    peer: SocketAddr,
    note: &Note,
) -> Result<Principal, Response> {
    let creds = Credentials::from_headers(head.authorization(), head.x_api_key());
    let gate = ctx
        .shared
        .policy
        .load()
        .would_verify(&ctx.auth, creds)
        .then(|| failures_exhausted(ctx, peer.ip(), note))
        .flatten();
    let admitted = match gate {
        Some(r) => Err(r),
        None => match authenticate(ctx, creds, note).await {
            Ok((who, token)) => authorize(ctx, who, token, peer.ip(), note).map(|()| who),
            Err(r) if r.error.kind == ErrorKind::Unauthorized => {
                // A wrong key costs its address a token of `auth.ip_rate_per_s` (when set):
                // guessing is as slow as that rate, and the Argon2 thread is not a free oracle.
                match ctx.shared.policy.load().charge_failure(peer.ip()) {
                    Ok(()) => Err(r),
                    Err(wait) => Err(failures_refusal(wait, note)),
                }
            }
            Err(r) => Err(r),
        },
    };
    admitted.map_err(|r| {
        let mut resp = error_response(&r.error, None, None);
        if let Some(c) = &r.challenge {
            let challenge =
                ctx.shared
                    .policy
                    .load()
                    .www_authenticate(c, head.host(), ctx.shared.tls.is_some());
            resp = resp.header("WWW-Authenticate", challenge);
        }
        if let Some(secs) = r.retry_after_s {
            resp = resp.header("Retry-After", secs.max(1).to_string());
        }
        resp
    })
}

/// With auth on and `auth.ip_rate_per_s` set, an address whose failed authentications used up its
/// bucket gets 429 before a key of it is verified (see `Policy::would_verify` for which wait).
fn failures_exhausted(ctx: &ShardCtx, ip: std::net::IpAddr, note: &Note) -> Option<Refusal> {
    let policy = ctx.shared.policy.load();
    if !policy.auth_required {
        return None;
    }
    policy
        .ip_exhausted(ip)
        .map(|wait| failures_refusal(wait, note))
}

fn failures_refusal(wait: Duration, note: &Note) -> Refusal {
    rate_refusal(
        wait,
        note,
        "too many failed authentications from this address",
        "too many failed authentications; ",
    )
}

/// 429: denied for `reason` (audit), with `Retry-After` in whole seconds and `retryAfterMs`;
/// `what` (empty or ending in "; ") says which limit in the client's message.
fn rate_refusal(wait: Duration, note: &Note, reason: &str, what: &str) -> Refusal {
    note.set(|f| {
        f.event = Some("denied");
        f.reason = Some(reason.into());
    });
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refusal {
        error: Error::downstream(
            ErrorKind::RateLimited,
            format!("Too Many Requests: {what}retry after {secs} s"),
        )
        .with_data(&json!({ "retryAfterMs": wait.as_millis() as u64 })),
        challenge: None,
        retry_after_s: Some(secs),
    }
}

/// A caller refused at the gate: the error, and what an HTTP answer adds to it.
pub struct Refusal {
    pub error: Error,
    /// For `WWW-Authenticate`.
    pub challenge: Option<crate::policy::Challenge>,
    /// For `Retry-After`.
    pub retry_after_s: Option<u64>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal {
            error,
            challenge: None,
            retry_after_s: None,
        }
    }
}

/// The first gate, for any front: who is calling (401). Also says whether a bearer token (not a
/// key) admitted the caller.
pub async fn authenticate(
    ctx: &ShardCtx,
    creds: Credentials<'_>,
    note: &Note,
) -> Result<(Principal, bool), Refusal> {
    let policy = ctx.shared.policy.load();
    let (who, subject) = match policy.authenticate(&ctx.auth, creds).await {
        Ok(a) => (a.who, a.subject),
        Err(d) => {
            note.set(|f| {
                f.event = Some("denied");
                f.key = d.key.clone();
                f.subject = d.subject.clone();
                f.reason = Some(d.error.context.to_string());
            });
            // A busy verifier (503) is no verdict on the credentials: no challenge.
            let challenge = (d.error.kind != ErrorKind::Overloaded).then_some(d.challenge);
            return Err(Refusal {
                error: d.error,
                challenge,
                retry_after_s: None,
            });
        }
    };
    note.set(|f| {
        f.key = who
            .key
            .and_then(|k| policy.keys.get(k as usize))
            .map(|k| k.id.clone());
        f.subject = subject.as_deref().map(str::to_owned);
        f.role = Some(policy.role_name(who.role).to_owned());
    });
    Ok((who, subject.is_some()))
}

/// The next gates, for any front: may the caller use anything here (403), is it within its rate
/// (429). `token` says a bearer token admitted it; `ip` is the client's address.
pub fn authorize(
    ctx: &ShardCtx,
    who: Principal,
    token: bool,
    ip: std::net::IpAddr,
    note: &Note,
) -> Result<(), Refusal> {
    let policy = ctx.shared.policy.load();
    let catalog = ctx.shared.catalog.load();
    if catalog.views.get(who.role as usize).is_some_and(|v| !v.any) {
        note.set(|f| {
            f.event = Some("denied");
            f.reason = Some("the role may use nothing on this gateway".into());
        });
        let e = Error::downstream(
            ErrorKind::NoAccess,
            format!(
                "Forbidden: role {:?} may use nothing on this gateway",
                policy.role_name(who.role)
            ),
        );
        // A token's role that may use nothing: the client may ask for other scopes.
        return Err(Refusal {
            error: e,
            challenge: token.then_some(crate::policy::Challenge::InsufficientScope),
            retry_after_s: None,
        });
    }
    if let Err(wait) = policy.charge(&who, ip) {
        return Err(rate_refusal(wait, note, "rate limited", ""));
    }
    Ok(())
}

/// RFC 9728 protected resource metadata (404 unless OAuth is configured).
fn resource_metadata(ctx: &ShardCtx, head: &Head) -> Response {
    let policy = ctx.shared.policy.load();
    match &policy.oauth {
        Some(o) if o.serves_metadata_at(head.path()) => {
            Response::json(200, o.metadata(head.host(), ctx.shared.tls.is_some()))
        }
        _ => Response::json(
            404,
            br#"{"error":"not found: no OAuth protected resource here"}"#.to_vec(),
        ),
    }
}

fn health(ctx: &ShardCtx) -> Response {
    let shared = &ctx.shared;
    let catalog = shared.catalog.load();
    let isolated = shared.isolated.load();
    let mut all_ready = true;
    let ups: Vec<Value> = shared
        .upstreams
        .iter()
        .map(|u| {
            let status = u.status.load();
            let mut v = json!({ "name": u.name, "state": status.label(), "tools": catalog.tool_counts.get(u.index as usize).copied().unwrap_or(0) });
            if u.config.isolation == crate::config::Isolation::Session {
                // Sessions with their own connection to it (`isolation = "session"`).
                v["sessions"] = isolated.count(u.index).into();
            }
            if let Some(cap) = u.config.max_concurrent {
                v["max_concurrent"] = cap.into();
                v["in_flight"] = u.in_flight().into();
            }
            match &**status {
                crate::upstream::Status::Ready(h) => {
                    v["era"] = h.version.clone().into();
                }
                crate::upstream::Status::Down { reason, since } => {
                    all_ready = false;
                    v["reason"] = reason.clone().into();
                    v["down_for_s"] = since.elapsed().as_secs().into();
                }
                crate::upstream::Status::Starting => all_ready = false,
                crate::upstream::Status::Disabled => {}
            }
            v
        })
        .collect();
    let mut body = json!({
        "status": if all_ready { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "shards": shared.shard_count,
        "uptime_s": shared.started.elapsed().as_secs(),
        "upstreams": ups,
    });
    if let Some(a) = &shared.audit {
        // The audit log's lag: lines waiting for the writer, and how often (and how long at
        // most) requests waited for queue room.
        let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        body["audit"] = json!({
            "written": n(&a.written),
            "backlog": a.backlog(),
            "waits": n(&a.waits),
            "max_wait_us": n(&a.max_wait_us),
            "errors": n(&a.errors),
        });
    }
    Response::json(200, body.to_string().into_bytes())
}

/// Origin validation: absent is fine (non-browser clients); present must be a loopback origin or one
/// of `gateway.allowed_origins`.
fn check_origin(ctx: &ShardCtx, head: &Head) -> Option<Response> {
    let origin = head.origin()?;
    if origin_allowed(origin, &ctx.shared.config.gateway.allowed_origins) {
        return None;
    }
    let e = Error::downstream(
        ErrorKind::Forbidden,
        format!("Origin {origin:?} is not allowed"),
    );
    Some(error_response(&e, None, None))
}

pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == origin || a == "*") {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().map(|h| format!("[{h}]"))
    } else {
        rest.split(':').next().map(str::to_owned)
    };
    matches!(host.as_deref(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

fn accepts(head: &Head, media: &str) -> bool {
    accepts_all(head, [media]) == [true]
}

/// For each of `media`, whether `Accept` lists it, its `type/*` or `*/*`: one walk of the header.
fn accepts_all<const N: usize>(head: &Head, media: [&str; N]) -> [bool; N] {
    let mut found = [false; N];
    let Some(accept) = head.accept() else {
        return found;
    };
    // By bytes: `str::split` here cost ~300 instructions per request.
    let majors = media.map(|m| {
        m.as_bytes()
            .iter()
            .position(|&c| c == b'/')
            .map_or(m, |i| &m[..i])
    });
    for t in crate::http::media_types(accept) {
        for ((m, major), hit) in media.iter().zip(majors).zip(found.iter_mut()) {
            *hit |= t.eq_ignore_ascii_case(m)
                || t == "*/*"
                || t.strip_suffix("/*")
                    .is_some_and(|x| x.eq_ignore_ascii_case(major));
        }
    }
    found
}

async fn post(
    ctx: &ShardCtx,
    head: &Head,
    body: Bytes,
    who: Principal,
    note: &Note,
    sink: &Sink,
) -> Response {
    if !head
        .content_type()
        .is_some_and(|ct| has_media_type(ct, "application/json"))
    {
        return error_response(
            &Error::downstream(
                ErrorKind::UnsupportedMediaType,
                "Content-Type must be application/json",
            ),
            None,
            None,
        );
    }
    if accepts_all(head, ["application/json", "text/event-stream"]) != [true, true] {
        return error_response(
            &Error::downstream(
                ErrorKind::NotAcceptable,
                "Accept must list application/json and text/event-stream",
            ),
            None,
            None,
        );
    }
    let frame = match Frame::parse(body) {
        Ok(f) => f,
        Err(FrameError::Parse(e)) => {
            return error_response(
                &Error::downstream(ErrorKind::Parse, format!("Parse error: {e}")),
                None,
                None,
            )
        }
        Err(FrameError::Invalid(e)) => {
            return error_response(
                &Error::downstream(ErrorKind::InvalidRequest, format!("Invalid Request: {e}")),
                None,
                None,
            )
        }
    };
    let method = frame.method().map(|m| Method::parse(&m));
    note.set(|f| f.method = frame.method().map(|m| m.into_owned()));
    let header_modern = head
        .protocol_version()
        .is_some_and(|v| !LEGACY_VERSIONS.contains(&v));
    if let Some(claim) = modern_claim(&frame) {
        return modern(ctx, head, &frame, claim, who, note, sink).await;
    }
    if method == Some(Method::Initialize) {
        if header_modern {
            let e = Error::downstream(
                ErrorKind::HeaderMismatch,
                "initialize is a legacy request but MCP-Protocol-Version names a modern revision",
            );
            return error_response(&e, frame.id_raw(), None);
        }
        return initialize(ctx, &frame, who, note);
    }
    if header_modern && frame.kind == Kind::Request {
        let e = Error::downstream(ErrorKind::MalformedEnvelope, format!("MCP-Protocol-Version names a modern revision but params._meta lacks {META_VERSION}"));
        return error_response(&e, frame.id_raw(), Some(ClientEra::Modern));
    }
    legacy(ctx, head, &frame, who, note, sink).await
}

/// The protocol version a request's `_meta` claims (the mark of a 2026-07-28 request).
pub fn modern_claim(frame: &Frame) -> Option<String> {
    let raw = frame.meta_version_raw()?;
    let plain = raw.len() >= 2 && raw[0] == b'"' && !raw.contains(&b'\\');
    Some(if plain {
        String::from_utf8_lossy(&raw[1..raw.len() - 1]).into_owned()
    } else {
        match sonic_rs::from_slice::<String>(raw) {
            Ok(s) => s,
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        }
    })
}

/// A 2026-07-28 claim of a version the gateway does not speak (any transport).
pub fn unsupported_version(claim: &str) -> Option<Error> {
    (claim != MODERN_VERSION).then(|| {
        Error::downstream(
            ErrorKind::UnsupportedVersion,
            "Unsupported protocol version",
        )
        .with_data(&json!({"supported": [MODERN_VERSION], "requested": claim}))
    })
}

/// A 2026-07-28 request whose `_meta` lacks the client capabilities (any transport).
pub fn missing_capabilities(frame: &Frame) -> Option<Error> {
    frame.meta_caps_raw().is_none().then(|| {
        Error::downstream(
            ErrorKind::MalformedEnvelope,
            format!("params._meta lacks the required {META_CAPS}"),
        )
    })
}

async fn modern(
    ctx: &ShardCtx,
    head: &Head,
    frame: &Frame,
    claim: String,
    who: Principal,
    note: &Note,
    sink: &Sink,
) -> Response {
    let id = frame.id_raw();
    let era = Some(ClientEra::Modern);
    // A header that disagrees with the body is a mismatch whatever the version says.
    if let Some(h) = head.protocol_version() {
        if h != claim {
            let e = Error::downstream(
                ErrorKind::HeaderMismatch,
                format!("Header mismatch: MCP-Protocol-Version header value {h:?} does not match body value {claim:?}"),
            )
            .with_data(&json!({"mismatch": {"header": h, "body": claim}}));
            return error_response(&e, id, era);
        }
    }
    if let Some(e) = unsupported_version(&claim) {
        return error_response(&e, id, era);
    }
    if frame.kind == Kind::Notification {
        return Response::new(202);
    }
    if frame.kind != Kind::Request {
        return error_response(
            &Error::downstream(
                ErrorKind::InvalidRequest,
                "2026-07-28 clients do not post responses",
            ),
            id,
            era,
        );
    }
    if let Some(e) = missing_capabilities(frame) {
        return error_response(&e, id, era);
    }
    // The standard headers must be present and agree with the body.
    let method = frame.method().unwrap_or_default();
    let mismatch = |what: &str, header: Option<&str>, body: &str| {
        let e = Error::downstream(
            ErrorKind::HeaderMismatch,
            format!(
                "Header mismatch: {what} header value {:?} does not match body value {body:?}",
                header.unwrap_or("(missing)")
            ),
        )
        .with_data(&json!({"mismatch": {"header": header.unwrap_or("(missing)"), "body": body}}));
        error_response(&e, id, era)
    };
    if head.protocol_version() != Some(claim.as_str()) {
        return mismatch("MCP-Protocol-Version", head.protocol_version(), &claim);
    }
    if head.mcp_method() != Some(method.as_ref()) {
        return mismatch("Mcp-Method", head.mcp_method(), &method);
    }
    let m = Method::parse(&method);
    if m.named() {
        let body_name = if m == Method::ResourcesRead {
            frame.uri()
        } else {
            frame.name()
        };
        if let Some(body_name) = body_name {
            let header = head.mcp_name().and_then(decode_header_value);
            if header.as_deref() != Some(body_name.as_ref()) {
                return mismatch("Mcp-Name", head.mcp_name(), &body_name);
            }
        }
    }
    if m == Method::Listen {
        return super::listen::listen(ctx, frame, who).await;
    }
    let ex = Exchange {
        era: ClientEra::Modern,
        frame,
        method: m,
        session: None,
        who,
        note,
        sink,
        mcp_params: Some(&head.mcp_params),
    };
    match dispatch::dispatch(ctx, &ex).await {
        Ok(body) => Response::json(200, body),
        Err(e) => error_response(&e, id, era),
    }
}

fn initialize(ctx: &ShardCtx, frame: &Frame, who: Principal, note: &Note) -> Response {
    let id = frame.id_raw();
    match initialize_session(ctx, frame, who, note) {
        Ok((session, result)) => {
            let body = dispatch::result_body(id.unwrap_or(b"null"), result.to_string().as_bytes());
            Response::json(200, body).header("Mcp-Session-Id", session.id.to_string())
        }
        Err(e) => error_response(&e, id, None),
    }
}

/// A legacy `initialize` (on any front): the version negotiated, a new session, and the result
/// (version, merged capabilities, serverInfo, instructions).
pub fn initialize_session(
    ctx: &ShardCtx,
    frame: &Frame,
    who: Principal,
    note: &Note,
) -> Result<(Arc<Session>, Value), Error> {
    if frame.kind != Kind::Request {
        return Err(Error::downstream(
            ErrorKind::InvalidRequest,
            "initialize must be a request",
        ));
    }
    let params: Value = frame
        .params_raw()
        .and_then(|p| serde_json::from_slice(p).ok())
        .unwrap_or(Value::Null);
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Err(Error::downstream(
            ErrorKind::InvalidParams,
            "initialize needs params.protocolVersion",
        ));
    };
    let version = if LEGACY_VERSIONS.contains(&requested) {
        requested
    } else {
        LEGACY_VERSIONS[0]
    };
    let session = ctx.sessions.create(
        ctx.index(),
        who.owner,
        version,
        params.get("capabilities").cloned().unwrap_or(Value::Null),
        params.get("clientInfo").cloned().unwrap_or(Value::Null),
    );
    session.touch();
    note.set(|f| f.session = Some(session.id.to_string()));
    let catalog = ctx.shared.catalog.load();
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": catalog.capabilities,
        "serverInfo": server_info(ctx),
    });
    if let Some(i) = &catalog.instructions {
        result["instructions"] = i.clone().into();
    }
    Ok((session, result))
}

pub fn server_info(ctx: &ShardCtx) -> Value {
    json!({"name": ctx.shared.config.gateway.server_name, "title": "switchyard MCP gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// The legacy session a request names: 400 without one, 404 for one that does not exist.
async fn session_of(ctx: &ShardCtx, head: &Head, who: Principal) -> Result<Arc<Session>, Error> {
    let Some(id) = head.session_id() else {
        return Err(Error::downstream(ErrorKind::SessionRequired, "Bad Request: Mcp-Session-Id header is required (send initialize first, or use the 2026-07-28 revision)"));
    };
    match find_session(ctx, id).await {
        // A session belongs to the key that opened it; to any other caller it does not exist.
        Some(s) if s.owner == who.owner => Ok(s),
        _ => Err(Error::downstream(
            ErrorKind::SessionNotFound,
            "Session not found",
        )),
    }
}

async fn find_session(ctx: &ShardCtx, id: &str) -> Option<Arc<Session>> {
    if let Some(s) = ctx.sessions.get(id) {
        return Some(s);
    }
    let home = home_of(id)?;
    if home == ctx.index() || home == 0 || home as usize > ctx.shared.shard_count {
        return None;
    }
    let (tx, rx) = flume::bounded(1);
    ctx.shared.lanes[home as usize]
        .send(LaneMsg::Session(SessionMsg::Lookup {
            id: id.into(),
            reply: tx,
        }))
        .ok()?;
    let s = monoio::time::timeout(Duration::from_secs(2), rx.recv_async())
        .await
        .ok()?
        .ok()??;
    ctx.sessions.insert(s.clone());
    Some(s)
}

async fn legacy(
    ctx: &ShardCtx,
    head: &Head,
    frame: &Frame,
    who: Principal,
    note: &Note,
    sink: &Sink,
) -> Response {
    let id = frame.id_raw();
    let era = Some(ClientEra::Legacy);
    let session = match session_of(ctx, head, who).await {
        Ok(s) => s,
        Err(e) => return error_response(&e, id, era),
    };
    if let Some(v) = head.protocol_version() {
        if !LEGACY_VERSIONS.contains(&v) {
            let e = Error::downstream(
                ErrorKind::BadProtocolVersionHeader,
                format!(
                    "Bad Request: Unsupported protocol version: {v} (supported versions: {})",
                    LEGACY_VERSIONS.join(", ")
                ),
            );
            return error_response(&e, id, era);
        }
    }
    session.touch();
    let sid = session.id.to_string();
    note.set(|f| f.session = Some(sid.clone()));
    if matches!(frame.kind, Kind::Response | Kind::ErrorResponse) {
        // The client's answer to a server-to-client request we relayed.
        if !super::relay::client_answer(ctx, &session, frame.clone()) {
            tracing::debug!(session = %sid, "an answer to no request of ours; ignored");
        }
        return Response::new(202).header("Mcp-Session-Id", sid);
    }
    if frame.kind != Kind::Request {
        // Notifications are accepted; a cancellation reaches whichever shard runs that request.
        if frame.method().as_deref() == Some("notifications/cancelled") {
            if let Some(rid) = frame
                .params_raw()
                .and_then(|p| sonic_rs::get(p, ["requestId"]).ok())
            {
                let rid = bytes::Bytes::copy_from_slice(rid.as_raw_str().as_bytes());
                let tag = session.tag();
                super::relay::cancel(ctx, tag, &rid, "cancelled by the client");
                for (i, lane) in ctx.shared.lanes.iter().enumerate().skip(1) {
                    if i != ctx.index() as usize {
                        let _ = lane.send(LaneMsg::Cancel {
                            session: tag,
                            id: rid.clone(),
                        });
                    }
                }
            }
        }
        return Response::new(202).header("Mcp-Session-Id", sid);
    }
    let method = Method::parse(&frame.method().unwrap_or_default());
    if method == Method::Initialize {
        let e = Error::downstream(
            ErrorKind::InvalidRequest,
            "Invalid Request: this session is already initialized",
        );
        return error_response(&e, id, era).header("Mcp-Session-Id", sid);
    }
    sink.headers
        .borrow_mut()
        .push(("Mcp-Session-Id", sid.clone()));
    if accepts(head, "text/event-stream") {
        // Its answer may stream (and be resumed); the connection decides when it streams.
        *sink.resumable.borrow_mut() = Some(session.clone());
    }
    let ex = Exchange {
        era: ClientEra::Legacy,
        frame,
        method,
        session: Some(&session),
        who,
        note,
        sink,
        mcp_params: Some(&head.mcp_params),
    };
    let resp = match dispatch::dispatch(ctx, &ex).await {
        Ok(body) => Response::json(200, body),
        // A cancelled request gets no response (the spec's SHOULD NOT): an empty event stream.
        Err(e) if e.kind == ErrorKind::Cancelled => {
            let mut r = Response::new(200);
            r.content_type = Some("text/event-stream");
            r
        }
        Err(e) => error_response(&e, id, era),
    };
    resp.header("Mcp-Session-Id", sid)
}

async fn get(ctx: &ShardCtx, head: &Head, who: Principal) -> Response {
    if !accepts(head, "text/event-stream") {
        return error_response(
            &Error::downstream(
                ErrorKind::NotAcceptable,
                "Not Acceptable: GET needs Accept: text/event-stream",
            ),
            None,
            None,
        );
    }
    let session = match session_of(ctx, head, who).await {
        Ok(s) => s,
        Err(e) => return error_response(&e, None, Some(ClientEra::Legacy)),
    };
    session.touch();
    let sid = session.id.to_string();
    // The session's standing stream: list changes its role can see, its subscribed resources;
    // its events are numbered and kept so that it can be resumed too.
    let fresh = || {
        let sink = ctx.listeners.session_stream(who.role, session.clone());
        let limits = &ctx.shared.config.gateway.resume;
        *sink.log.borrow_mut() = Some(ctx.streams.open(ctx.index(), &session, true, limits));
        sink
    };
    let Some(last) = head.last_event_id().filter(|l| !l.is_empty()) else {
        return Response::stream(fresh()).header("Mcp-Session-Id", sid);
    };
    match super::resume::resume(ctx, &session, last, fresh).await {
        Ok(sink) => Response::stream(sink).header("Mcp-Session-Id", sid),
        // 400, not 404: a 404 on a session's request tells the client its session is gone.
        Err(e) => {
            let why = match e {
                super::resume::ResumeError::Malformed => "is not an event id of this gateway",
                super::resume::ResumeError::Unknown => {
                    "names no stream of this session (unknown, or its events expired)"
                }
            };
            let e = Error::downstream(
                ErrorKind::InvalidRequest,
                format!("Bad Request: Last-Event-ID {last:?} {why}"),
            );
            error_response(&e, None, Some(ClientEra::Legacy)).header("Mcp-Session-Id", sid)
        }
    }
}

async fn delete(ctx: &ShardCtx, head: &Head, who: Principal) -> Response {
    let session = match session_of(ctx, head, who).await {
        Ok(s) => s,
        Err(e) => return error_response(&e, None, Some(ClientEra::Legacy)),
    };
    let id = session.id.clone();
    ctx.sessions.remove(&id);
    ctx.streams.forget_session(&id);
    if let Some(home) = home_of(&id).filter(|h| *h != ctx.index()) {
        let (tx, rx) = flume::bounded(1);
        if let Some(lane) = ctx.shared.lanes.get(home as usize) {
            let _ = lane.send(LaneMsg::Session(SessionMsg::Delete {
                id: id.clone(),
                reply: tx,
            }));
            let _ = monoio::time::timeout(Duration::from_secs(2), rx.recv_async()).await;
        }
    }
    // Its own upstream connections (`isolation = "session"`) go.
    super::session::ended(&ctx.shared, &session);
    // Every shard has forgotten the session before the 200: a request that follows the DELETE
    // gets 404 wherever it lands (a shard's cached copy would otherwise still serve it).
    let (ack, acks) = flume::unbounded();
    let told = broadcast_forget(ctx, &id, Some(&ack));
    drop(ack);
    let _ = monoio::time::timeout(Duration::from_secs(2), async {
        for _ in 0..told {
            if acks.recv_async().await.is_err() {
                break;
            }
        }
    })
    .await;
    Response::new(200)
}

/// Tell every other shard to forget session `id`; returns how many were told.
fn broadcast_forget(ctx: &ShardCtx, id: &str, ack: Option<&flume::Sender<()>>) -> usize {
    let mut told = 0;
    for (i, lane) in ctx.shared.lanes.iter().enumerate().skip(1) {
        if i != ctx.index() as usize {
            let sent = lane.send(LaneMsg::Session(SessionMsg::Forget {
                id: id.into(),
                ack: ack.cloned(),
            }));
            told += usize::from(sent.is_ok());
        }
    }
    told
}

/// Session traffic from other shards.
pub fn session_msg(ctx: &ShardCtx, msg: SessionMsg) {
    match msg {
        SessionMsg::Lookup { id, reply } => {
            let s = if home_of(&id) == Some(ctx.index()) {
                ctx.sessions.get(&id)
            } else {
                None
            };
            let _ = reply.send(s);
        }
        SessionMsg::Delete { id, reply } => {
            let existed = ctx.sessions.remove(&id);
            ctx.streams.forget_session(&id);
            let _ = reply.send(existed);
        }
        SessionMsg::Forget { id, ack } => {
            ctx.sessions.remove(&id);
            ctx.streams.forget_session(&id);
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed("http://localhost:6274", &none));
        assert!(origin_allowed("http://127.0.0.1", &none));
        assert!(origin_allowed("http://[::1]:3000", &none));
        assert!(!origin_allowed("http://evil.example", &none));
        assert!(!origin_allowed("http://localhost.evil.example", &none));
        assert!(!origin_allowed("null", &none));
        assert!(origin_allowed(
            "https://app.example.com",
            &["https://app.example.com".to_owned()]
        ));
    }
}
