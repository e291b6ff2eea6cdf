//! Standing notification streams: a legacy session's `GET /mcp` stream and a 2026-07-28
//! `subscriptions/listen` stream. Each shard keeps the streams its own connections hold; the control
//! thread tells every shard when a role's lists changed and stdio readers tell them of
//! `notifications/resources/updated`, and each shard writes to the streams that may see it. Nothing
//! is shared between shards but those messages.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{json, Value};

use super::session::Session;
use super::sink::Sink;
use crate::shard::ShardCtx;

/// Which lists changed (bits).
pub const TOOLS: u8 = 1;
pub const PROMPTS: u8 = 2;
pub const RESOURCES: u8 = 4;

/// One resource subscription of a legacy session.
#[derive(Debug, Clone)]
pub struct Sub {
    pub upstream: u16,
    /// The URI as the upstream knows it.
    pub original: Box<str>,
    /// The URI as the client named it.
    pub public: Box<str>,
    /// Held in `upstream::subs`'s count (a shared connection), not on the session's own.
    pub counted: bool,
}

/// A legacy session's resource subscriptions.
pub type Subscriptions = ArcSwap<Vec<Sub>>;

enum Kind {
    /// A legacy session's GET stream: all list changes its role sees, its subscribed resources.
    Session(Arc<Session>),
    /// A 2026-07-28 listen stream: the kinds it asked for, the URIs it subscribed to, its id.
    Listen {
        kinds: u8,
        uris: Vec<Sub>,
        id: Bytes,
    },
}

struct Listener {
    role: u16,
    kind: Kind,
    sink: Weak<Sink>,
}

/// One shard's standing streams.
#[derive(Default)]
pub struct Listeners {
    all: RefCell<Vec<Listener>>,
}

impl Listeners {
    /// A legacy session's GET stream; the connection holds the returned sink while it lasts.
    pub fn session_stream(&self, role: u16, session: Arc<Session>) -> Rc<Sink> {
        self.add(role, Kind::Session(session))
    }

    /// A listen stream for `kinds` and resource `uris`; `id` is the listen request's raw id.
    pub fn listen_stream(&self, role: u16, kinds: u8, uris: Vec<Sub>, id: Bytes) -> Rc<Sink> {
        self.add(role, Kind::Listen { kinds, uris, id })
    }

    fn add(&self, role: u16, kind: Kind) -> Rc<Sink> {
        let sink = Rc::new(Sink::default());
        let mut all = self.all.borrow_mut();
        all.retain(|l| l.sink.strong_count() > 0);
        all.push(Listener {
            role,
            kind,
            sink: Rc::downgrade(&sink),
        });
        sink
    }

    /// `roles[r]` holds the kinds of list that changed for role `r`.
    pub fn lists_changed(&self, roles: &[u8]) {
        self.each(|l, sink| {
            let changed = roles.get(l.role as usize).copied().unwrap_or(0);
            let (wanted, sub) = match &l.kind {
                Kind::Session(_) => (changed, None),
                Kind::Listen { kinds, id, .. } => (changed & kinds, Some(id)),
            };
            for (bit, method) in [
                (TOOLS, "notifications/tools/list_changed"),
                (PROMPTS, "notifications/prompts/list_changed"),
                (RESOURCES, "notifications/resources/list_changed"),
            ] {
                if wanted & bit != 0 {
                    sink.push(notification(method, json!({}), sub));
                }
            }
        });
    }

    /// An upstream's `notifications/resources/updated` for its URI `uri`; `session` when it came
    /// from that session's own connection (`isolate`: for its subscriptions only).
    pub fn resource_updated(&self, upstream: u16, uri: &str, session: u64) {
        self.each(|l, sink| match &l.kind {
            Kind::Session(s) if session != 0 && s.tag() != session => {}
            Kind::Listen { .. } if session != 0 => {}
            Kind::Session(s) => {
                let subs = s.subscriptions.load();
                if let Some(sub) = subs
                    .iter()
                    .find(|sub| sub.upstream == upstream && &*sub.original == uri)
                {
                    sink.push(notification(
                        "notifications/resources/updated",
                        json!({ "uri": &*sub.public }),
                        None,
                    ));
                }
            }
            Kind::Listen { uris, id, .. } => {
                // Matched as the server knows it, told as the client named it.
                if let Some(sub) = uris
                    .iter()
                    .find(|sub| sub.upstream == upstream && &*sub.original == uri)
                {
                    sink.push(notification(
                        "notifications/resources/updated",
                        json!({ "uri": &*sub.public }),
                        Some(id),
                    ));
                }
            }
        });
    }

    /// An open GET stream keeps its session alive: its client is there, listening (touched on
    /// each sweep, whichever shard the session lives on).
    pub fn touch_sessions(&self) {
        self.each(|l, _| {
            if let Kind::Session(s) = &l.kind {
                s.touch();
            }
        });
    }

    /// The GET stream of the legacy session tagged `tag`, if this shard holds it.
    fn session_stream_of(&self, tag: u64) -> Option<(Arc<Session>, Rc<Sink>)> {
        self.all.borrow().iter().find_map(|l| match &l.kind {
            Kind::Session(s) if s.tag() == tag => Some((s.clone(), l.sink.upgrade()?)),
            _ => None,
        })
    }

    /// End every stream (the shard is stopping).
    pub fn close_all(&self) {
        for l in self.all.borrow_mut().drain(..) {
            if let Some(s) = l.sink.upgrade() {
                s.close();
            }
        }
    }

    fn each(&self, mut f: impl FnMut(&Listener, &Sink)) {
        let mut all = self.all.borrow_mut();
        all.retain(|l| l.sink.strong_count() > 0);
        for l in all.iter() {
            if let Some(s) = l.sink.upgrade() {
                f(l, &s);
            }
        }
    }
}

/// A notification; on a listen stream its `_meta` names the subscription.
pub fn notification(method: &str, mut params: Value, subscription: Option<&Bytes>) -> Bytes {
    if let Some(id) = subscription {
        let id: Value = serde_json::from_slice(id).unwrap_or(Value::Null);
        params["_meta"] = json!({ "io.modelcontextprotocol/subscriptionId": id });
    }
    let msg = json!({ "jsonrpc": "2.0", "method": method, "params": params });
    Bytes::from(msg.to_string())
}

/// Tell every shard (lanes 1..) what changed, by role.
pub fn broadcast_lists_changed(ctx_lanes: &[flume::Sender<crate::shard::LaneMsg>], roles: Vec<u8>) {
    if roles.iter().all(|k| *k == 0) {
        return;
    }
    let roles: Arc<[u8]> = roles.into();
    for lane in ctx_lanes.iter().skip(1) {
        let _ = lane.send(crate::shard::LaneMsg::ListsChanged(roles.clone()));
    }
}

/// On a shard: a resource of `upstream` was updated (`session`: see `resource_updated`).
pub fn on_resource_updated(ctx: &ShardCtx, upstream: u16, uri: &str, session: u64) {
    ctx.listeners.resource_updated(upstream, uri, session);
}

/// On a shard: a legacy HTTP upstream's message for one client session (from its GET stream). The
/// shard holding the session's GET stream sends it there (a request under an id of ours, its answer
/// routed back like any relayed request's); the last shard refuses a request nobody took.
pub fn on_unlinked(ctx: &ShardCtx, u: &crate::upstream::stream::Unlinked) {
    use crate::jsonrpc::{splice, Kind};
    use crate::mcp::relay::{answer, respond_later, Answer};
    let Some(up) = ctx.shared.any_upstream(u.upstream) else {
        return;
    };
    let f = &u.frame;
    if let Some((session, sink)) = ctx.listeners.session_stream_of(u.session) {
        if u.claim() {
            if f.kind != Kind::Request {
                sink.push(f.bytes().clone());
                let _ = u.unclaimed_at_last();
                return;
            }
            let needs = match f.method().as_deref() {
                Some("sampling/createMessage") => Some("sampling"),
                Some("elicitation/create") => Some("elicitation"),
                Some("roots/list") => Some("roots"),
                _ => None,
            };
            let refusal = match needs {
                None => Some("not a server-to-client request".to_owned()),
                Some(n) if !session.has_capability(n) => Some(format!(
                    "Method not found: the client has no {n} capability"
                )),
                Some(_) => None,
            };
            let ours = ctx.lane.next_id();
            let to = Answer::Upstream {
                upstream: u.upstream,
                id: Bytes::copy_from_slice(f.id_raw().unwrap_or(b"null")),
            };
            match (refusal, f.id_span()) {
                (Some(why), _) => respond_later(up, answer(f, Err((-32601, &why)))),
                (None, Some(span))
                    if ctx.answers.insert(ours, u.session, to, up.request_timeout) =>
                {
                    sink.push(Bytes::from(splice(
                        f.bytes(),
                        span,
                        ours.to_string().as_bytes(),
                    )));
                }
                (None, _) => respond_later(
                    up,
                    answer(
                        f,
                        Err((-32603, "too many requests are waiting for clients' answers")),
                    ),
                ),
            }
            let _ = u.unclaimed_at_last();
            return;
        }
    }
    if u.unclaimed_at_last() && f.kind == Kind::Request {
        tracing::info!(server = %up.name, "server-to-client request refused: its client holds no GET stream");
        let why = "switchyard cannot route this request: the client it is for holds no GET stream";
        respond_later(up, answer(f, Err((-32603, why))));
    }
}

/// Most resource subscriptions one listen stream may ask for.
pub const MAX_LISTEN_URIS: usize = 256;

/// 2026-07-28 `subscriptions/listen`: a standing stream whose first message acknowledges what it
/// will carry (the honoured subset), every message tagged with the listen request's id. Resource
/// subscriptions are honoured for URIs the caller may read whose server offers subscriptions (held
/// through `upstream::subs` while the stream lasts); others are left out of the acknowledgement.
pub async fn listen(
    ctx: &ShardCtx,
    frame: &crate::jsonrpc::Frame,
    who: crate::policy::Principal,
) -> crate::http::server::Response {
    let wanted: Value = frame
        .params_raw()
        .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        .and_then(|p| p.get("notifications").cloned())
        .unwrap_or(Value::Null);
    let flag = |k: &str| wanted.get(k).and_then(Value::as_bool) == Some(true);
    let mut kinds = 0;
    let mut honoured = serde_json::Map::new();
    for (key, bit) in [
        ("toolsListChanged", TOOLS),
        ("promptsListChanged", PROMPTS),
        ("resourcesListChanged", RESOURCES),
    ] {
        if flag(key) {
            kinds |= bit;
            honoured.insert(key.into(), true.into());
        }
    }
    let asked: Vec<&str> = match wanted.get("resourceSubscriptions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_LISTEN_URIS => {
            a.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => {
            let e = crate::error::Error::downstream(
                crate::error::ErrorKind::InvalidParams,
                format!(
                    "notifications.resourceSubscriptions must be an array of at most {MAX_LISTEN_URIS} URIs"
                ),
            );
            return super::front::error_response(
                &e,
                frame.id_raw(),
                Some(super::ClientEra::Modern),
            );
        }
    };
    let mut held = crate::upstream::subs::Held {
        shared: ctx.shared.clone(),
        uris: Vec::new(),
    };
    let uris = subscribe_all(ctx, who.role, &asked, &mut held).await;
    if !uris.is_empty() {
        let named: Vec<&str> = uris.iter().map(|s| &*s.public).collect();
        honoured.insert("resourceSubscriptions".into(), json!(named));
    }
    let id = Bytes::copy_from_slice(frame.id_raw().unwrap_or(b"null"));
    let sink = ctx
        .listeners
        .listen_stream(who.role, kinds, uris, id.clone());
    if !held.uris.is_empty() {
        *sink.keep.borrow_mut() = Some(Box::new(held));
    }
    sink.push(notification(
        "notifications/subscriptions/acknowledged",
        json!({ "notifications": Value::Object(honoured) }),
        Some(&id),
    ));
    crate::http::server::Response::stream(sink)
}

/// Hold each URI of `asked` that role `role` may read on the server that owns it; the URIs held
/// (as the client named them).
async fn subscribe_all(
    ctx: &ShardCtx,
    role: u16,
    asked: &[&str],
    held: &mut crate::upstream::subs::Held,
) -> Vec<Sub> {
    use crate::upstream::subs;
    let catalog = ctx.shared.catalog.load();
    let view = super::dispatch::role_view(&catalog, role);
    let mut uris: Vec<Sub> = Vec::new();
    for uri in asked {
        if uris.iter().any(|u| &*u.public == *uri) {
            continue;
        }
        let Some(route) = catalog.resource_route(uri).filter(|r| {
            super::dispatch::may_use(ctx, view, role, crate::policy::Item::Resource, r)
        }) else {
            continue;
        };
        if !ctx
            .shared
            .upstream(route.upstream)
            .is_some_and(|up| subs::offered(up))
        {
            continue;
        }
        match subs::hold(&ctx.shared, route.upstream, &route.original).await {
            Ok(Some(reply)) if reply.kind == crate::jsonrpc::Kind::ErrorResponse => {}
            Ok(_) => {
                held.uris.push((route.upstream, route.original.clone()));
                uris.push(Sub {
                    upstream: route.upstream,
                    original: route.original.clone(),
                    public: (*uri).into(),
                    counted: true,
                });
            }
            Err(e) => tracing::debug!(%uri, "listen: not subscribed: {e}"),
        }
    }
    uris
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::session::Sessions;

    #[test]
    fn a_dedicated_connections_update_reaches_its_own_session_only() {
        let sessions = Sessions::default();
        let (a, b) = (
            sessions.create(1, 0, "2025-11-25", Value::Null, Value::Null),
            sessions.create(1, 0, "2025-11-25", Value::Null, Value::Null),
        );
        for s in [&a, &b] {
            s.subscriptions.store(Arc::new(vec![Sub {
                upstream: 0,
                original: "demo://x".into(),
                public: "demo://x".into(),
                counted: true,
            }]));
        }
        let l = Listeners::default();
        let (sa, sb) = (
            l.session_stream(0, a.clone()),
            l.session_stream(0, b.clone()),
        );
        let sub = Sub {
            upstream: 0,
            original: "demo://x".into(),
            public: "demo://x".into(),
            counted: true,
        };
        let listen = l.listen_stream(0, 0, vec![sub], Bytes::from_static(b"7"));
        // From a's own connection: a only.
        l.resource_updated(0, "demo://x", a.tag());
        assert!(sa.try_next().is_some());
        assert!(sb.try_next().is_none());
        assert!(listen.try_next().is_none());
        // From the shared connection: every subscriber.
        l.resource_updated(0, "demo://x", 0);
        assert!(sa.try_next().is_some());
        assert!(sb.try_next().is_some());
        let msg = listen.try_next().expect("the listen stream's");
        assert!(std::str::from_utf8(&msg).is_ok_and(|m| m.contains("subscriptionId\":7")));
        // Another URI: nobody.
        l.resource_updated(0, "demo://y", 0);
        assert!(sa.try_next().is_none() && sb.try_next().is_none() && listen.try_next().is_none());
    }
}
