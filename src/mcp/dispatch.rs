//! The method handlers: what the gateway answers itself (discover, ping, merged lists) and what it
//! routes to the owning upstream (tools/call, prompts/get, resources/read, completion/complete) with
//! the original name restored and the reply re-addressed to the caller's id, payload bytes untouched.
//! The tools/call order is written out in one place: resolve the name → rewrite → relay.

use bytes::Bytes;
use serde_json::{json, Value};
use sonic_rs::JsonValueTrait;

use super::hold;
use super::lists::{self, ListKind};
use super::metatool;
use super::relay::Relay;
use super::session::Session;
use super::state;
use super::{ClientEra, Method};
use crate::audit::Note;
use crate::catalog::{params, Catalog, Route, View, UNLISTED};
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{response_with_id, splice, splice_many, Frame, Kind, Span};
use crate::policy::{Item, Principal};
use crate::shard::ShardCtx;
use crate::upstream::{self, MODERN_VERSION};

/// One client request on its way through.
pub struct Exchange<'a> {
    pub era: ClientEra,
    pub frame: &'a Frame,
    pub method: Method,
    pub session: Option<&'a Session>,
    pub who: Principal,
    pub note: &'a Note,
    /// Where messages for the client go before the answer (progress, logs, server requests).
    pub sink: &'a super::sink::Sink,
    /// The request's `Mcp-Param-*` headers (2026-07-28 over HTTP); `None` where there is no header
    /// layer (a meta-tool's inner call).
    pub mcp_params: Option<&'a [(String, String)]>,
}

impl Exchange<'_> {
    fn id(&self) -> &[u8] {
        self.frame.id_raw().unwrap_or(b"null")
    }
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`.
pub fn result_body(id: &[u8], result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + id.len() + result.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// Run one request; the answer is a whole JSON-RPC response body.
pub async fn dispatch(ctx: &ShardCtx, ex: &Exchange<'_>) -> Result<Vec<u8>, Error> {
    debug_assert_eq!(ex.frame.kind, Kind::Request);
    let catalog = ctx.shared.catalog.load();
    let view = view_of(&catalog, ex);
    match (ex.method, ex.era) {
        (Method::Ping, ClientEra::Legacy) => Ok(result_body(ex.id(), b"{}")),
        (Method::Discover, ClientEra::Modern) => Ok(result_body(ex.id(), discover(ctx).as_bytes())),
        (Method::ToolsList, _) => lists::serve(ctx, ex, &catalog, view, ListKind::Tools),
        (Method::PromptsList, _) => lists::serve(ctx, ex, &catalog, view, ListKind::Prompts),
        (Method::ResourcesList, _) => lists::serve(ctx, ex, &catalog, view, ListKind::Resources),
        (Method::ResourceTemplatesList, _) => {
            lists::serve(ctx, ex, &catalog, view, ListKind::Templates)
        }
        (Method::ToolsCall | Method::PromptsGet, _)
            if ex
                .frame
                .arguments_raw()
                .is_some_and(|a| a.first() != Some(&b'{')) =>
        {
            Err(Error::downstream(
                ErrorKind::InvalidParams,
                "params.arguments must be an object",
            ))
        }
        (Method::ToolsCall, _) => {
            let name = ex.frame.name().ok_or_else(|| {
                Error::downstream(ErrorKind::InvalidParams, "tools/call needs params.name")
            })?;
            if catalog.meta_list.is_some() {
                if let Some(meta) = metatool::which(ctx, &name) {
                    return metatool::call(ctx, ex, &catalog, view, meta).await;
                }
            }
            let route = catalog
                .tools
                .get(name.as_ref())
                .cloned()
                .ok_or_else(|| unknown(ctx, "tool", &name))?;
            if ctx.shared.config.audit.include_arguments {
                if let Some(raw) = ex.frame.arguments_raw() {
                    ex.note
                        .set(|f| f.arguments = Some(crate::audit::Arguments::of(raw)));
                }
            }
            if !may_use(ctx, view, ex.who.role, Item::Tool, &route) {
                return Err(hidden(ctx, ex, &route, "Unknown tool", &name));
            }
            let params = catalog.tool_params.get(&route.index);
            let args: Option<Value> = params.and_then(|_| {
                ex.frame
                    .arguments_raw()
                    .and_then(|a| serde_json::from_slice(a).ok())
            });
            let null = Value::Null;
            let args = args.as_ref().unwrap_or(&null);
            if let (Some(p), ClientEra::Modern, Some(h)) = (params, ex.era, ex.mcp_params) {
                params::check(p, args, h)
                    .map_err(|why| Error::downstream(ErrorKind::HeaderMismatch, why))?;
            }
            let headers: Vec<(String, String)> = params
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    params::header_value(args, p).map(|v| (format!("Mcp-Param-{}", p.name), v))
                })
                .collect();
            forward_call(ctx, ex, &route, &headers).await
        }
        (Method::PromptsGet, _) => {
            let name = ex.frame.name().ok_or_else(|| {
                Error::downstream(ErrorKind::InvalidParams, "prompts/get needs params.name")
            })?;
            let route = catalog
                .prompts
                .get(name.as_ref())
                .cloned()
                .ok_or_else(|| unknown(ctx, "prompt", &name))?;
            if !may_use(ctx, view, ex.who.role, Item::Prompt, &route) {
                return Err(hidden(ctx, ex, &route, "Unknown prompt", &name));
            }
            forward_renamed(ctx, ex, "prompts/get", &route, ex.frame.name_span()).await
        }
        (Method::ResourcesRead, _) => {
            let uri = ex.frame.uri().ok_or_else(|| {
                Error::downstream(ErrorKind::InvalidParams, "resources/read needs params.uri")
            })?;
            let found = catalog.resource_route(&uri);
            let route = found
                .clone()
                .filter(|r| may_use(ctx, view, ex.who.role, Item::Resource, r));
            let Some(route) = route else {
                // Refused like a missing one, but audited as blocked with the real reason.
                if let Some(r) = &found {
                    note_hidden(ctx, ex, r, Item::Resource);
                }
                // 2026-07-28 retired -32002 in favour of -32602.
                let kind = if ex.era == ClientEra::Modern {
                    ErrorKind::InvalidParams
                } else {
                    ErrorKind::ResourceNotFound
                };
                return Err(
                    Error::downstream(kind, "Resource not found").with_data(&json!({ "uri": uri }))
                );
            };
            let span = if *route.original != *uri {
                ex.frame.uri_span()
            } else {
                None
            };
            let answer = forward_renamed(ctx, ex, "resources/read", &route, span).await?;
            Ok(lists::scoped_to_caller(ctx, ex, answer))
        }
        (Method::ResourcesSubscribe | Method::ResourcesUnsubscribe, ClientEra::Legacy) => {
            Box::pin(subscribe(ctx, ex, &catalog, view)).await
        }
        (Method::Complete, _) => Box::pin(complete(ctx, ex, &catalog, view)).await,
        (Method::SetLogLevel, ClientEra::Legacy) => {
            Box::pin(set_log_level(ctx, ex)).await;
            Ok(result_body(ex.id(), b"{}"))
        }
        (Method::Initialize, ClientEra::Modern) => Err(Error::downstream(
            ErrorKind::MethodNotFound,
            "Method not found: initialize (removed in 2026-07-28)",
        )),
        (Method::Initialize, _) => Err(Error::downstream(
            ErrorKind::InvalidRequest,
            "initialize is only valid as the first request of a legacy session",
        )),
        (m, _) => {
            let name = ex.frame.method().unwrap_or_default().into_owned();
            let why = if m == Method::Other {
                "Method not found"
            } else {
                "Method not supported by switchyard for this protocol revision"
            };
            Err(Error::downstream(
                ErrorKind::MethodNotFound,
                format!("{why}: {name}"),
            ))
        }
    }
}

/// The caller's view of the catalog (an unknown role sees nothing).
fn view_of<'c>(catalog: &'c Catalog, ex: &Exchange<'_>) -> &'c View {
    role_view(catalog, ex.who.role)
}

/// Role `role`'s view of the catalog (an unknown role sees nothing).
pub(crate) fn role_view(catalog: &Catalog, role: u16) -> &View {
    static NOTHING: std::sync::OnceLock<View> = std::sync::OnceLock::new();
    catalog
        .views
        .get(role as usize)
        .unwrap_or_else(|| NOTHING.get_or_init(View::default))
}

/// May the caller use what `route` leads to? Listed things answer from the role's bits; a URI
/// reached through a template is checked against the rules themselves.
pub(crate) fn may_use(ctx: &ShardCtx, view: &View, role: u16, item: Item, route: &Route) -> bool {
    if route.index != UNLISTED {
        return match item {
            Item::Tool => view.tools.get(route.index),
            Item::Prompt => view.prompts.get(route.index),
            Item::Resource => view.resources.get(route.index),
        };
    }
    ctx.shared
        .config
        .servers
        .get(route.upstream as usize)
        .is_some_and(|s| ctx.shared.policy.visible(role, s, item, &route.original))
}

/// A refusal that does not confirm the thing exists; the real reason goes to the log (and, with
/// the audit log, to its line).
fn hidden(ctx: &ShardCtx, ex: &Exchange<'_>, route: &Route, what: &str, name: &str) -> Error {
    let item = if what == "Unknown prompt" {
        Item::Prompt
    } else {
        Item::Tool
    };
    note_hidden(ctx, ex, route, item);
    Error::downstream(ErrorKind::InvalidParams, format!("{what}: {name}"))
}

/// The audit side of a refusal of something the role may not see: `blocked`, and the rule that
/// refused it.
fn note_hidden(ctx: &ShardCtx, ex: &Exchange<'_>, route: &Route, item: Item) {
    ex.note.set(|f| {
        let policy = ctx.shared.policy.load();
        let server = ctx.shared.config.servers.get(route.upstream as usize);
        let why = server.and_then(|s| policy.refusal(ex.who.role, s, item, &route.original));
        let role = policy.role_name(ex.who.role);
        f.event = Some("blocked");
        f.server = ctx.shared.upstream(route.upstream).map(|u| u.name.clone());
        f.tool = Some(route.original.to_string());
        // The visibility sets were compiled from the same rules; a reload in between may
        // leave no rule to name.
        f.reason = Some(match why {
            Some(w) => format!("not visible to role {role:?}: {w}"),
            None => format!("not visible to role {role:?} (the rules changed since)"),
        });
    });
}

/// An unknown tool or prompt. When its name carries the prefix of a server that is not up (it never
/// listed anything), say that server is unavailable rather than that the name is unknown.
fn unknown(ctx: &ShardCtx, what: &str, name: &str) -> Error {
    let sep = &ctx.shared.config.naming.separator;
    let down = ctx.shared.upstreams.iter().find(|u| {
        u.ready().is_none()
            && name
                .strip_prefix(u.name.as_str())
                .is_some_and(|rest| rest.starts_with(sep.as_str()))
    });
    match down {
        Some(u) => u.unavailable(),
        None => {
            let what = if what == "tool" {
                "Unknown tool"
            } else {
                "Unknown prompt"
            };
            Error::downstream(ErrorKind::InvalidParams, format!("{what}: {name}"))
        }
    }
}

fn discover(ctx: &ShardCtx) -> String {
    let catalog = ctx.shared.catalog.load();
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": [MODERN_VERSION],
        "capabilities": catalog.capabilities,
        "_meta": { "io.modelcontextprotocol/serverInfo": super::front::server_info(ctx) },
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(i) = &catalog.instructions {
        result["instructions"] = i.clone().into();
    }
    result.to_string()
}

/// tools/call: forwarded with its `Mcp-Param-*` headers (for an HTTP upstream).
async fn forward_call(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    route: &Route,
    headers: &[(String, String)],
) -> Result<Vec<u8>, Error> {
    forward(ctx, ex, "tools/call", route, ex.frame.name_span(), headers).await
}

/// Forward the request to the route's upstream with `rename` (the span of the public name or URI in
/// the request) replaced by the original.
async fn forward_renamed(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    method: &str,
    route: &Route,
    rename: Option<Span>,
) -> Result<Vec<u8>, Error> {
    forward(ctx, ex, method, route, rename, &[]).await
}

async fn forward(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    method: &str,
    route: &Route,
    rename: Option<Span>,
    headers: &[(String, String)],
) -> Result<Vec<u8>, Error> {
    let up = ctx
        .shared
        .upstream(route.upstream)
        .ok_or_else(|| Error::internal("route to a missing upstream"))?;
    ex.note.set(|f| {
        f.server = Some(up.name.clone());
        f.tool = Some(route.original.to_string());
    });
    // The server's `max_concurrent`, held until this function returns or its future is dropped.
    let _slot = take_slot(ex, up)?;
    let params_span = ex
        .frame
        .params_span()
        .ok_or_else(|| Error::downstream(ErrorKind::InvalidParams, "missing params"))?;
    // What changes on the way upstream, applied in one copy: the public name (or URI) back to the
    // original, a sealed requestState opened, the progress token swapped for our request id.
    let (quoted, opened);
    let mut edits: smallvec::SmallVec<[(Span, &[u8]); 3]> = smallvec::SmallVec::new();
    if let Some(span) = rename {
        quoted = crate::jsonrpc::quote(&route.original);
        edits.push((span, quoted.as_bytes()));
    }
    // 2026-07-28 retries carry the state we sealed: open it (or refuse) before the upstream sees it.
    let binding = state::Binding {
        upstream: up.index,
        method,
        name: &route.original,
        key: ex.who.key,
    };
    if let (ClientEra::Modern, Some(span)) = (ex.era, ex.frame.request_state_span()) {
        let state = sonic_rs::from_slice::<String>(ex.frame.slice(span))
            .ok()
            .and_then(|sealed| ctx.shared.state_key.open(&binding, &sealed))
            .ok_or_else(|| {
                Error::downstream(
                    ErrorKind::InvalidParams,
                    "Invalid requestState: not issued by this gateway for this request",
                )
            })?;
        opened = Value::from(state).to_string();
        edits.push((span, opened.as_bytes()));
    }
    let buf = ex.frame.bytes();
    // The params as the upstream must see them, but for the progress token (each round has its id).
    let rewritten = || -> std::borrow::Cow<'_, [u8]> {
        if edits.is_empty() {
            std::borrow::Cow::Borrowed(ex.frame.slice(params_span))
        } else {
            std::borrow::Cow::Owned(splice_many(buf, params_span, &mut edits.clone()))
        }
    };
    // A 2026-07-28 client of a legacy server: questions the server asks mid-call are bridged (the
    // call is held between the client's rounds).
    if ex.era == ClientEra::Modern && up.ready().is_some_and(|h| h.era == upstream::Era::Legacy) {
        // Boxed: its own waits would size every call's future.
        return Box::pin(held_call(ctx, ex, up, method, &binding, &rewritten())).await;
    }
    // A legacy session of a server with `isolation = "session"` calls its own connection.
    let dedicated;
    let up = match ex.session {
        Some(s) if upstream::isolate::wanted(up) => {
            // Boxed: a rare wait that would size every call's future.
            dedicated = Box::pin(upstream::isolate::dedicated(&ctx.shared, s.tag(), up)).await?;
            &dedicated
        }
        _ => up,
    };
    let caps = ex
        .session
        .map(|s| &*s.client_capabilities_json)
        .filter(|c| !c.is_empty());
    let mut round_params: Option<Vec<u8>> = None;
    let mut rounds = 0;
    let reply = loop {
        let id = ctx.lane.next_id();
        let mut relayer = Relay::new(ctx, ex, up);
        let mut id_text = itoa::Buffer::new();
        let built;
        let params: &[u8] = match &round_params {
            None => {
                let mut all: smallvec::SmallVec<[(Span, &[u8]); 4]> =
                    edits.iter().copied().collect();
                if let Some(token) = ex.frame.progress_token_span() {
                    relayer.set_progress(ex.frame.slice(token));
                    all.push((token, id_text.format(id).as_bytes()));
                }
                if all.is_empty() {
                    ex.frame.slice(params_span)
                } else {
                    built = splice_many(buf, params_span, &mut all);
                    &built
                }
            }
            // Later rounds of a bridged InputRequiredResult (rare): params the gateway built.
            Some(p) => {
                built = relayer.map_progress(p, id).unwrap_or_else(|| p.clone());
                &built
            }
        };
        let on_interim = |f: Frame| relayer.on_interim(f);
        let call = upstream::Call {
            id,
            origin: ex.session.map_or(id, |s| s.tag()),
            on_interim: &on_interim,
            headers,
            client_caps: caps,
            modern_meta: ex.era == ClientEra::Modern,
        };
        let tracked = ex
            .session
            .map(|s| ctx.calls.track(s.tag(), ex.id(), up.index, id));
        let relayed = upstream::call_relayed(
            &ctx.lane,
            up,
            method,
            Some(params),
            Some(&route.original),
            &call,
        );
        let reply = match tracked {
            // A legacy client may cancel: the call is dropped (the upstream is told).
            Some(mut t) => {
                let mut relayed = std::pin::pin!(relayed);
                monoio::select! {
                    r = &mut relayed => r?,
                    stop = &mut t.stopped => match stop {
                        Ok(()) => {
                            return Err(Error::downstream(
                                ErrorKind::Cancelled,
                                "Request cancelled by the client",
                            ))
                        }
                        // Another request of the session reused this id: only the newest can be
                        // cancelled by it; this one runs on.
                        Err(_) => relayed.await?,
                    }
                }
            }
            None => relayed.await?,
        };
        // A legacy client cannot read an InputRequiredResult: the gateway asks it the embedded
        // requests itself and retries upstream with the answers.
        match ex.session {
            Some(session) if super::relay::input_required(&reply) => {
                rounds += 1;
                if rounds > super::relay::MAX_ROUNDS {
                    return Err(Error::upstream(
                        ErrorKind::UpstreamProtocol,
                        format!(
                            "server {:?} still asked for input after {} rounds",
                            up.name,
                            super::relay::MAX_ROUNDS
                        ),
                    ));
                }
                let original = match round_params.take() {
                    Some(p) => p,
                    None => rewritten().into_owned(),
                };
                round_params =
                    Some(super::relay::ask_client(ctx, ex, session, up, &reply, &original).await?);
            }
            _ => break reply,
        }
    };
    if ex.era == ClientEra::Modern {
        if let Some(e) = transport_error(&reply) {
            return Err(e);
        }
    }
    if ex.era == ClientEra::Modern && super::relay::input_required(&reply) {
        if let Some(sealed) = seal_state(ctx, &binding, &reply) {
            return Ok(relay(ex, &sealed));
        }
    }
    Ok(relay(ex, &reply))
}

/// A 2026-07-28 client's call to a legacy stdio server, or its retry with the answer to the
/// question the server asked (see `hold`).
async fn held_call(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    up: &std::sync::Arc<upstream::Upstream>,
    method: &str,
    binding: &state::Binding<'_>,
    params: &[u8],
) -> Result<Vec<u8>, Error> {
    let invalid = |why: &str| Error::downstream(ErrorKind::InvalidParams, why.to_owned());
    let resumed = sonic_rs::get(params, ["requestState"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .and_then(|s| s.strip_prefix(hold::PREFIX).map(str::to_owned));
    let mut relayer = Relay::new(ctx, ex, up);
    let caps = hold::Caps::from_meta(ex.frame.meta_raw());
    let step = match resumed {
        Some(h) => {
            let (lane, id) = hold::parse(&h).ok_or_else(|| invalid("Invalid requestState"))?;
            let answer: Value = sonic_rs::get(params, ["inputResponses", hold::KEY])
                .ok()
                .and_then(|v| serde_json::from_str(v.as_raw_str()).ok())
                .ok_or_else(|| invalid("inputResponses.input is required to resume this call"))?;
            if lane == ctx.index() {
                hold::resume(ctx, id, answer, caps, &|f| relayer.on_interim(f)).await?
            } else {
                let (tx, rx) = flume::bounded(1);
                let lanes = &ctx.shared.lanes;
                let sent = lane != 0
                    && lanes.get(lane as usize).is_some_and(|l| {
                        l.send(crate::shard::LaneMsg::Resume(hold::Resume {
                            hold: id,
                            answer,
                            caps,
                            reply: tx,
                        }))
                        .is_ok()
                    });
                if !sent {
                    return Err(invalid("Invalid requestState"));
                }
                let wait = up.request_timeout + std::time::Duration::from_secs(1);
                monoio::time::timeout(wait, rx.recv_async())
                    .await
                    .map_err(|_| {
                        Error::upstream(ErrorKind::UpstreamTimeout, "held call timed out")
                    })?
                    .map_err(|_| Error::internal("the holding shard went away"))??
            }
        }
        None => {
            let id = ctx.lane.next_id();
            let mapped = relayer.map_progress(params, id);
            let params = mapped.as_deref().unwrap_or(params);
            let call = upstream::Call::internal_with_id(id);
            let waiter = match &up.transport {
                upstream::Transport::Stdio(s) => {
                    s.slot
                        .send_request(&ctx.lane, up, method, Some(params), &call)?
                }
                upstream::Transport::Sse(s) => {
                    s.slot
                        .send_request(&ctx.lane, up, method, Some(params), &call)?
                }
                upstream::Transport::Http(_) => {
                    let me = ctx
                        .rc()
                        .ok_or_else(|| Error::internal("the shard is stopping"))?;
                    upstream::http::HttpUpstream::send_request(me, up, method, params, id)?
                }
            };
            hold::drive(ctx, up, waiter, caps, &|f| relayer.on_interim(f)).await?
        }
    };
    match step {
        hold::Step::Reply(f) => Ok(relay(ex, &f)),
        hold::Step::Ask { hold, request } => {
            let asked = request.method().unwrap_or_default().into_owned();
            let params: Value = request
                .params_raw()
                .and_then(|p| serde_json::from_slice(p).ok())
                .unwrap_or_else(|| json!({}));
            let result = json!({
                "resultType": "input_required",
                "inputRequests": { hold::KEY: { "method": asked, "params": params } },
                "requestState": ctx.shared.state_key.seal(binding, &hold),
            });
            Ok(result_body(ex.id(), result.to_string().as_bytes()))
        }
    }
}

/// The reply with its `result.requestState` sealed; `None` when it carries none.
fn seal_state(ctx: &ShardCtx, binding: &state::Binding<'_>, reply: &Frame) -> Option<Frame> {
    let span = reply.result_state_span()?;
    let state = sonic_rs::from_slice::<String>(reply.slice(span)).ok()?;
    let sealed = ctx.shared.state_key.seal(binding, &state);
    let out = splice(
        reply.bytes(),
        span,
        Value::from(sealed).to_string().as_bytes(),
    );
    Frame::parse(Bytes::from(out)).ok()
}

/// An upstream's 2026-07-28 error that the HTTP binding answers with 400 (header mismatch, missing
/// capability, unsupported version): raised as ours so the status follows, message and data kept.
fn transport_error(reply: &Frame) -> Option<Error> {
    let err = reply.error_raw()?;
    let code = sonic_rs::get(err, ["code"])
        .ok()?
        .as_raw_str()
        .parse::<i32>()
        .ok()?;
    let kind = match code {
        -32020 => ErrorKind::HeaderMismatch,
        -32021 => ErrorKind::MissingCapability,
        -32022 => ErrorKind::UnsupportedVersion,
        _ => return None,
    };
    let v: Value = serde_json::from_slice(err).ok()?;
    let message = v.get("message").and_then(Value::as_str).unwrap_or("error");
    let mut e = Error::upstream(kind, message.to_owned());
    if let Some(data) = v.get("data") {
        e = e.with_data(data);
    }
    Some(e)
}

/// The upstream's reply, re-addressed to the caller; for a 2026-07-28 caller the result gains the
/// fields that revision requires when a legacy upstream did not give them.
fn relay(ex: &Exchange<'_>, reply: &Frame) -> Vec<u8> {
    if ex.era == ClientEra::Modern {
        if let Some(result) = reply.result_raw() {
            if result.first() == Some(&b'{') && reply.result_type_raw().is_none() {
                let mut add = String::from("\"resultType\":\"complete\"");
                if ex.method == Method::ResourcesRead && !reply.result_has_ttl() {
                    add.push_str(",\"ttlMs\":0,\"cacheScope\":\"private\"");
                }
                let empty = result[1..]
                    .iter()
                    .all(|b| b.is_ascii_whitespace() || *b == b'}');
                let mut r = Vec::with_capacity(result.len() + add.len() + 1);
                r.push(b'{');
                r.extend_from_slice(add.as_bytes());
                if !empty {
                    r.push(b',');
                }
                r.extend_from_slice(&result[1..]);
                return result_body(ex.id(), &r);
            }
        }
    }
    response_with_id(reply, ex.id())
}

/// completion/complete: route by `params.ref` (a prompt's public name or a resource URI).
async fn complete(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    catalog: &Catalog,
    view: &View,
) -> Result<Vec<u8>, Error> {
    let mut params: Value = ex
        .frame
        .params_raw()
        .and_then(|p| serde_json::from_slice(p).ok())
        .ok_or_else(|| {
            Error::downstream(ErrorKind::InvalidParams, "completion/complete needs params")
        })?;
    let r = params.get_mut("ref").ok_or_else(|| {
        Error::downstream(
            ErrorKind::InvalidParams,
            "completion/complete needs params.ref",
        )
    })?;
    let route = match r.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let route = catalog
                .prompts
                .get(name)
                .cloned()
                .filter(|r| may_use(ctx, view, ex.who.role, Item::Prompt, r))
                .ok_or_else(|| {
                    Error::downstream(ErrorKind::InvalidParams, format!("Unknown prompt: {name}"))
                })?;
            r["name"] = Value::from(&*route.original);
            route
        }
        Some("ref/resource") => {
            let uri = r.get("uri").and_then(Value::as_str).unwrap_or_default();
            let route = catalog
                .resource_route(uri)
                .or_else(|| {
                    catalog
                        .templates
                        .iter()
                        .find(|(t, _)| t.raw == uri)
                        .map(|(_, up)| Route {
                            upstream: *up,
                            original: uri.into(),
                            index: UNLISTED,
                        })
                })
                .filter(|r| may_use(ctx, view, ex.who.role, Item::Resource, r))
                .ok_or_else(|| {
                    Error::downstream(ErrorKind::InvalidParams, format!("Unknown resource: {uri}"))
                })?;
            r["uri"] = Value::from(&*route.original);
            route
        }
        _ => {
            return Err(Error::downstream(
                ErrorKind::InvalidParams,
                "params.ref.type must be ref/prompt or ref/resource",
            ))
        }
    };
    let up = ctx
        .shared
        .upstream(route.upstream)
        .ok_or_else(|| Error::internal("route to a missing upstream"))?;
    let _slot = take_slot(ex, up)?;
    let body = params.to_string();
    let reply = upstream::call(
        &ctx.lane,
        up,
        "completion/complete",
        Some(body.as_bytes()),
        None,
    )
    .await?;
    Ok(relay(ex, &reply))
}

/// A place under the server's `max_concurrent` (none to take when it has no cap), or the 503
/// refusal, audited as `refused`.
fn take_slot<'a>(
    ex: &Exchange<'_>,
    up: &'a crate::upstream::Upstream,
) -> Result<Option<crate::upstream::Slot<'a>>, Error> {
    up.slot().map_err(|cap| {
        ex.note.set(|f| {
            f.event = Some("refused");
            f.reason = Some(format!(
                "server {:?} has its max_concurrent = {cap} requests in flight",
                up.name
            ));
        });
        Error::upstream(
            ErrorKind::Overloaded,
            format!(
                "Server {} is busy ({cap} requests in flight); retry shortly",
                up.name
            ),
        )
    })
}

/// resources/subscribe and unsubscribe (legacy): passed to the URI's owner when it is a legacy
/// server that offers subscriptions, under its own URI.
async fn subscribe(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    catalog: &Catalog,
    view: &View,
) -> Result<Vec<u8>, Error> {
    let uri = ex
        .frame
        .uri()
        .ok_or_else(|| Error::downstream(ErrorKind::InvalidParams, "params.uri is required"))?;
    let route = catalog
        .resource_route(&uri)
        .filter(|r| may_use(ctx, view, ex.who.role, Item::Resource, r))
        .ok_or_else(|| {
            Error::downstream(ErrorKind::ResourceNotFound, "Resource not found")
                .with_data(&json!({ "uri": uri }))
        })?;
    let up = ctx
        .shared
        .upstream(route.upstream)
        .ok_or_else(|| Error::internal("route to a missing upstream"))?;
    if !upstream::subs::offered(up) {
        return Err(Error::downstream(
            ErrorKind::MethodNotFound,
            format!(
                "Method not found: server {:?} offers no resource subscriptions",
                up.name
            ),
        ));
    }
    let span = if *route.original != *uri {
        ex.frame.uri_span()
    } else {
        None
    };
    let subscribing = ex.method == Method::ResourcesSubscribe;
    let method = if subscribing {
        "resources/subscribe"
    } else {
        "resources/unsubscribe"
    };
    let Some(session) = ex.session else {
        return forward_renamed(ctx, ex, method, &route, span).await;
    };
    let gone = || Error::downstream(ErrorKind::SessionNotFound, "Session not found");
    if session.has_ended() {
        return Err(gone());
    }
    // A session's own connection (`isolation = "session"`) holds its subscriptions itself; a
    // shared one's are counted (`upstream::subs`).
    let counted = !upstream::isolate::wanted(up);
    // What the session's GET stream carries: set first (the previous set tells whether the
    // session held it already), undone if the server refuses.
    let this =
        |sub: &super::listen::Sub| sub.upstream == route.upstream && sub.original == route.original;
    let set = |on: bool| {
        session.subscriptions.rcu(|subs| {
            let mut subs: Vec<_> = subs.iter().filter(|e| !this(e)).cloned().collect();
            if on {
                subs.push(super::listen::Sub {
                    upstream: route.upstream,
                    original: route.original.clone(),
                    public: uri.as_ref().into(),
                    counted,
                });
            }
            subs
        })
    };
    let before = set(subscribing);
    let held = before.iter().find(|s| this(s)).map(|s| s.counted);
    if subscribing && held.is_none() && before.len() >= MAX_SESSION_SUBSCRIPTIONS {
        set(false);
        return Err(Error::downstream(
            ErrorKind::InvalidParams,
            format!(
                "a session may hold at most {MAX_SESSION_SUBSCRIPTIONS} resource subscriptions"
            ),
        ));
    }
    if !counted {
        // The session's own connection (`isolation = "session"`): its subscriptions are its own.
        let reply = forward_renamed(ctx, ex, method, &route, span).await;
        if reply.is_err() && subscribing && held.is_none() {
            set(false);
        }
        return reply;
    }
    // A shared connection: the server hears the first subscribe and the last unsubscribe of all
    // its clients (`upstream::subs`); a session's repeats change nothing.
    match (subscribing, held) {
        (true, None) => {
            let outcome = upstream::subs::hold(&ctx.shared, route.upstream, &route.original).await;
            if session.has_ended() {
                // It ended while the server was asked: `session::ended` could not see this one.
                if matches!(outcome, Ok(ref r) if r.as_ref().is_none_or(|f| f.kind != Kind::ErrorResponse))
                {
                    upstream::subs::let_go(&ctx.shared, route.upstream, &route.original);
                }
                return Err(gone());
            }
            match outcome {
                Ok(Some(reply)) => {
                    if reply.kind == Kind::ErrorResponse {
                        set(false);
                    }
                    Ok(relay(ex, &reply))
                }
                Ok(None) => Ok(result_body(ex.id(), b"{}")),
                Err(e) => {
                    set(false);
                    Err(e)
                }
            }
        }
        // Let go as it was held (a shared count; or, after a config change, not at all).
        (false, Some(true)) => {
            upstream::subs::let_go(&ctx.shared, route.upstream, &route.original);
            Ok(result_body(ex.id(), b"{}"))
        }
        _ => Ok(result_body(ex.id(), b"{}")),
    }
}

/// Most resource subscriptions one legacy session may hold.
const MAX_SESSION_SUBSCRIPTIONS: usize = 256;

/// logging/setLevel reaches every ready upstream that offers logging (and the session's own
/// connections, `isolation = "session"`).
async fn set_log_level(ctx: &ShardCtx, ex: &Exchange<'_>) {
    let params = ex.frame.params_raw();
    let own: Vec<_> = match ex.session {
        Some(s) => ctx
            .shared
            .isolated
            .load()
            .of_session(s.tag())
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    for up in ctx.shared.upstreams.iter().chain(own.iter()) {
        let Some(hs) = up.ready() else { continue };
        if hs.era != upstream::Era::Legacy || !hs.has_capability("logging") {
            continue;
        }
        if let Err(e) = upstream::call(&ctx.lane, up, "logging/setLevel", params, None).await {
            tracing::warn!(server = %up.name, "logging/setLevel: {e}");
        }
    }
}
