//! The control thread (lane 0): brings upstreams up, restarts them when they die, refreshes their
//! lists when they change, and publishes each new catalog snapshot. Nothing here is on the request
//! path; shards only read what it publishes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::lane::Lane;
use super::{build_runtime, ControlMsg, LaneMsg, Shared};
use crate::catalog::{Catalog, HintRules, ListBody, Part, UpstreamLists};
use crate::config::Driver;
use crate::upstream::{isolate, subs, supervisor, Status, Transport, Upstream};

struct State {
    shared: Arc<Shared>,
    lane: Lane,
    lists: RefCell<Vec<Option<UpstreamLists>>>,
    generation: Cell<u64>,
    /// An upstream whose bring-up loop is running (its own retries cover deaths meanwhile).
    starting: RefCell<Vec<bool>>,
    /// Meta-tool mode: the thread that builds the routing index off-core.
    index_builder: Option<crate::router::IndexBuilder>,
    /// Sessions' dedicated upstreams (`isolation = "session"`).
    keeper: RefCell<isolate::Keeper>,
    /// Resource subscriptions held on shared upstreams for clients.
    subs: RefCell<subs::Book>,
    /// Those held on 2026-07-28 servers: their listen streams.
    watches: RefCell<hashbrown::HashMap<(u16, Box<str>), subs::Watch>>,
}

pub fn run(
    shared: Arc<Shared>,
    inbox: flume::Receiver<LaneMsg>,
    control: flume::Receiver<ControlMsg>,
) {
    let mut rt = match build_runtime(Driver::Epoll) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("control thread: cannot build its event loop: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let n = shared.upstreams.len();
        let st = Rc::new(State {
            shared: shared.clone(),
            lane: Lane::new(0),
            lists: RefCell::new(vec![None; n]),
            generation: Cell::new(0),
            starting: RefCell::new(vec![false; n]),
            index_builder: match shared.config.router.mode {
                crate::config::RouterMode::Metatool => {
                    match crate::router::IndexBuilder::spawn(shared.router.clone()) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            tracing::error!("cannot start the routing index builder: {e}");
                            None
                        }
                    }
                }
                crate::config::RouterMode::Passthrough => None,
            },
            keeper: RefCell::default(),
            subs: RefCell::default(),
            watches: RefCell::default(),
        });
        monoio::spawn(inbox_loop(st.clone(), inbox));
        let _ = publish(&st); // the empty first catalog: nobody to tell
        for up in shared.upstreams.iter() {
            if up.config.enabled {
                monoio::spawn(bring_up(st.clone(), up.clone(), Duration::ZERO));
            }
        }
        while let Ok(msg) = control.recv_async().await {
            match msg {
                ControlMsg::Exited {
                    upstream,
                    generation: _,
                } if upstream >= isolate::FIRST_INDEX => {
                    if st.keeper.borrow_mut().exited(upstream) {
                        publish_isolated(&st);
                    }
                }
                ControlMsg::Exited {
                    upstream,
                    generation: _,
                } => {
                    let Some(up) = shared.upstream(upstream).cloned() else {
                        continue;
                    };
                    // Its lists stay published while it restarts: a call to one of its tools then
                    // gets "server X is unavailable", not "unknown tool".
                    if !shared.is_stopping() && !st.starting.borrow()[upstream as usize] {
                        monoio::spawn(bring_up(st.clone(), up, Duration::from_millis(500)));
                    }
                }
                ControlMsg::ListChanged {
                    upstream,
                    generation: _,
                    kinds,
                } => {
                    let Some(up) = shared.upstream(upstream).cloned() else {
                        continue;
                    };
                    monoio::spawn(refresh(st.clone(), up, kinds));
                }
                ControlMsg::Republish => {
                    let changed = publish(&st);
                    crate::mcp::listen::broadcast_lists_changed(&st.shared.lanes, changed);
                }
                ControlMsg::Isolate {
                    server,
                    session,
                    reply,
                } => isolate_for(&st, server, session, reply),
                ControlMsg::Release { session } => {
                    let stop = st.keeper.borrow_mut().release(session);
                    if !stop.is_empty() {
                        publish_isolated(&st);
                        for up in stop {
                            tracing::debug!(server = %up.name, index = up.index, "session ended: its own connection stops");
                            monoio::spawn(isolate::stop_for_good(up));
                        }
                    }
                }
                ControlMsg::Subscribe {
                    upstream,
                    uri,
                    reply,
                } => {
                    if st.subs.borrow_mut().subscribe(upstream, &uri, reply) {
                        monoio::spawn(subscribe_upstream(st.clone(), upstream, uri));
                    }
                }
                ControlMsg::Resubscribe { upstream } => {
                    if let Some(up) = shared.upstream(upstream).cloned() {
                        monoio::spawn(resubscribe(st.clone(), up));
                    }
                }
                ControlMsg::Unsubscribe { upstream, uri } => {
                    if st.subs.borrow_mut().unsubscribe(upstream, &uri) {
                        monoio::spawn(unsubscribe_upstream(st.clone(), upstream, uri));
                    }
                }
                ControlMsg::Stop => break,
            }
        }
        let dedicated = st.keeper.borrow_mut().drain();
        publish_isolated(&st);
        stop_upstreams(&shared, &dedicated).await;
    });
}

async fn inbox_loop(st: Rc<State>, inbox: flume::Receiver<LaneMsg>) {
    while let Ok(msg) = inbox.recv_async().await {
        match msg {
            LaneMsg::Reply { upstream, frame } => st.lane.complete(upstream, frame),
            LaneMsg::Interim {
                upstream,
                id,
                frame,
            } => st.lane.interim(upstream, id, frame),
            LaneMsg::ClientAnswer { .. }
            | LaneMsg::ListsChanged(_)
            | LaneMsg::Resume(_)
            | LaneMsg::Replay(_)
            | LaneMsg::Cancel { .. }
            | LaneMsg::ResourceUpdated { .. } => {}
            LaneMsg::Failed {
                upstream,
                id,
                error,
            } => st.lane.fail(upstream, id, error),
            LaneMsg::UpstreamGone { upstream, error } => st.lane.fail_upstream(upstream, &error),
            LaneMsg::Session(_) | LaneMsg::Unlinked(_) | LaneMsg::Stop => {}
        }
    }
}

/// Start an upstream, retrying with backoff until it is up or the gateway stops.
async fn bring_up(st: Rc<State>, up: Arc<Upstream>, first_wait: Duration) {
    let i = up.index as usize;
    if std::mem::replace(&mut st.starting.borrow_mut()[i], true) {
        return;
    }
    let mut wait = first_wait;
    loop {
        if !wait.is_zero() {
            monoio::time::sleep(wait).await;
        }
        if st.shared.is_stopping() {
            break;
        }
        up.status.store(Arc::new(Status::Starting));
        let res = async {
            let hs = supervisor::start(&st.shared, &st.lane, &up).await?;
            let hs = Arc::new(hs);
            let lists = supervisor::fetch_lists(&st.lane, &up, &hs).await?;
            Ok::<_, crate::error::Error>((hs, lists))
        }
        .await;
        match res {
            Ok((hs, lists)) => {
                tracing::info!(server = %up.name, era = %hs.version, tools = lists.tools.len(), prompts = lists.prompts.len(), resources = lists.resources.len(), "upstream ready");
                st.lists.borrow_mut()[i] = Some(lists);
                supervisor::listen_for_changes(&st.shared, &st.lane, &up, &hs);
                // Ready only once its lists are published, so /health "ready" (and the stdio
                // front's start gate) means callable.
                up.remember_handshake(hs.clone());
                let changed = publish(&st);
                up.set_ready(hs);
                crate::mcp::listen::broadcast_lists_changed(&st.shared.lanes, changed);
                // A restarted server forgot what clients subscribed to: ask again, in a task of
                // its own (this loop's `starting` mark must go first, or a death meanwhile would
                // not be restarted).
                monoio::spawn(resubscribe(st.clone(), up.clone()));
                break;
            }
            Err(e) => {
                tracing::error!(server = %up.name, "upstream failed to start: {e}");
                supervisor::mark_down(&up, e.to_string());
                // Whatever the failed attempt left running goes (a child, a half-open stream).
                match &up.transport {
                    Transport::Stdio(s) => s.terminate(),
                    Transport::Sse(s) => s.terminate(),
                    Transport::Http(_) => {}
                }
                wait = if wait.is_zero() {
                    Duration::from_secs(1)
                } else {
                    (wait * 2).min(supervisor::MAX_BACKOFF)
                };
            }
        }
    }
    st.starting.borrow_mut()[i] = false;
}

/// A session asks for its own connection to configured server `server`.
fn isolate_for(st: &Rc<State>, server: u16, session: u64, reply: isolate::Reply) {
    let Some(parent) = st.shared.upstream(server).cloned() else {
        let _ = reply.send(Err(crate::error::Error::internal(
            "isolation asked for a server that does not exist",
        )));
        return;
    };
    if st.shared.is_stopping() {
        let _ = reply.send(Err(crate::error::Error::new(
            crate::error::ErrorKind::ShuttingDown,
            crate::error::Source::Internal,
            "the gateway is stopping",
        )));
        return;
    }
    let limit = parent.config.isolation_limit;
    let Some(index) = st
        .keeper
        .borrow_mut()
        .ask(session, server, &parent.name, limit, reply)
    else {
        return;
    };
    let up = match Upstream::dedicated(index, session, &parent) {
        Ok(up) => Arc::new(up),
        Err(e) => {
            let e = crate::error::Error::upstream(
                crate::error::ErrorKind::UpstreamUnavailable,
                format!("server {:?}: {e}", parent.name),
            );
            st.keeper.borrow_mut().started(session, server, Err(e));
            return;
        }
    };
    let st = st.clone();
    monoio::spawn(async move {
        let outcome = match supervisor::start(&st.shared, &st.lane, &up).await {
            Ok(hs) => {
                up.set_ready(Arc::new(hs));
                // Still connected after saying so: a death just before would have been
                // overwritten, and its exit not counted (the book still had it starting).
                if isolate::connected(&up) {
                    tracing::info!(server = %up.name, index, "a session's own connection is up");
                    Ok(up.clone())
                } else {
                    Err(crate::error::Error::upstream(
                        crate::error::ErrorKind::UpstreamUnavailable,
                        format!("server {:?} exited right after starting", up.name),
                    ))
                }
            }
            Err(e) => {
                tracing::warn!(server = %up.name, "a session's own connection failed to start: {e}");
                isolate::stop(&up);
                Err(e)
            }
        };
        let late = st.keeper.borrow_mut().started(session, server, outcome);
        publish_isolated(&st);
        if let Some(up) = late {
            isolate::stop_for_good(up).await;
        }
    });
}

/// The first client subscribed to `uri` of `upstream`: ask the server, answer the waiters.
async fn subscribe_upstream(st: Rc<State>, upstream: u16, uri: Box<str>) {
    let outcome = match st.shared.upstream(upstream).cloned() {
        Some(up) => hold_upstream(&st, &up, &uri).await,
        None => Err(crate::error::Error::internal(
            "subscription to a missing upstream",
        )),
    };
    if st.subs.borrow_mut().subscribed(upstream, &uri, outcome) {
        unsubscribe_upstream(st, upstream, uri).await;
    }
}

/// Hold again on `up` what clients hold there (it restarted, or forgot its session). A URI whose
/// last holder left meanwhile is let go at once.
async fn resubscribe(st: Rc<State>, up: Arc<Upstream>) {
    let held = st.subs.borrow().held_on(up.index);
    for uri in held {
        if let Err(e) = hold_upstream(&st, &up, &uri).await {
            tracing::warn!(server = %up.name, %uri, "subscribing again: {e}");
            continue;
        }
        if st.subs.borrow().holders(up.index, &uri) == 0 {
            unsubscribe_upstream(st.clone(), up.index, uri).await;
        }
    }
}

/// Subscribe `up` to `uri`: `resources/subscribe` to a legacy server (its answer), a listen stream
/// of its own on a 2026-07-28 one (an empty result once acknowledged).
async fn hold_upstream(
    st: &State,
    up: &Arc<Upstream>,
    uri: &str,
) -> Result<crate::jsonrpc::Frame, crate::error::Error> {
    let Some(hs) = up.ready() else {
        return Err(up.unavailable());
    };
    if hs.era == crate::upstream::Era::Legacy {
        return resources_call(st, up, "resources/subscribe", uri).await;
    }
    let w = subs::watch(&st.shared, &st.lane, up, &hs, uri).await?;
    if let Some(old) = st.watches.borrow_mut().insert((up.index, uri.into()), w) {
        old.end(up);
    }
    crate::jsonrpc::Frame::parse(bytes::Bytes::from_static(
        br#"{"jsonrpc":"2.0","id":0,"result":{}}"#,
    ))
    .map_err(|e| crate::error::Error::internal(e.to_string()))
}

/// The last client let go of `uri` of `upstream`: tell the server.
async fn unsubscribe_upstream(st: Rc<State>, upstream: u16, uri: Box<str>) {
    let Some(up) = st.shared.upstream(upstream).cloned() else {
        return;
    };
    if let Some(w) = st.watches.borrow_mut().remove(&(upstream, uri.clone())) {
        w.end(&up);
        return;
    }
    match resources_call(&st, &up, "resources/unsubscribe", &uri).await {
        Ok(f) if f.kind == crate::jsonrpc::Kind::ErrorResponse => {
            tracing::debug!(server = %up.name, %uri, "resources/unsubscribe refused")
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(server = %up.name, %uri, "resources/unsubscribe: {e}"),
    }
}

/// `resources/subscribe` or `resources/unsubscribe` for `uri`, from the control lane.
async fn resources_call(
    st: &State,
    up: &Upstream,
    method: &str,
    uri: &str,
) -> Result<crate::jsonrpc::Frame, crate::error::Error> {
    let params = serde_json::json!({ "uri": uri }).to_string();
    crate::upstream::call(&st.lane, up, method, Some(params.as_bytes()), None).await
}

/// Let the shards see the dedicated upstreams as they are now.
fn publish_isolated(st: &State) {
    let reg = st.keeper.borrow().registry();
    st.shared.isolated.store(Arc::new(reg));
}

/// Re-fetch one upstream's lists after it said they changed.
async fn refresh(st: Rc<State>, up: Arc<Upstream>, kinds: u8) {
    let Some(hs) = up.ready() else { return };
    match supervisor::fetch_lists(&st.lane, &up, &hs).await {
        Ok(lists) => {
            st.lists.borrow_mut()[up.index as usize] = Some(lists);
            let mut roles = publish(&st);
            // The server said its list changed: whoever sees any of its entries of that kind is
            // told, even when the merged list reads the same.
            let catalog = st.shared.catalog.load();
            for (r, seen) in roles.iter_mut().zip(catalog.roles_seeing(up.index, kinds)) {
                *r |= seen;
            }
            crate::mcp::listen::broadcast_lists_changed(&st.shared.lanes, roles);
        }
        Err(e) => tracing::warn!(server = %up.name, "refreshing lists failed: {e}"),
    }
}

/// Build and publish a new catalog from every ready upstream's lists; per role, which of its lists
/// changed.
fn publish(st: &State) -> Vec<u8> {
    let gen = st.generation.get() + 1;
    st.generation.set(gen);
    let lists = st.lists.borrow();
    // Ready upstreams, and down ones that were ready before (their last lists stay listed).
    let handshakes: Vec<_> = st
        .shared
        .upstreams
        .iter()
        .map(|u| u.ready().or_else(|| u.last_handshake()))
        .collect();
    let parts: Vec<Part<'_>> = st
        .shared
        .upstreams
        .iter()
        .zip(lists.iter())
        .zip(handshakes.iter())
        .filter_map(|((u, l), h)| {
            Some(Part {
                index: u.index,
                name: &u.name,
                handshake: h.as_deref()?,
                lists: l.as_ref()?,
            })
        })
        .collect();
    let policy = st.shared.policy.load();
    let servers = &st.shared.config.servers;
    let visible = |role: u16, up: u16, item, name: &str| {
        servers
            .get(up as usize)
            .is_some_and(|s| policy.visible(role, s, item, name))
    };
    let rules = HintRules {
        legacy_ttl_ms: st.shared.config.gateway.list_ttl_ms,
        shared: !policy.auth_required,
    };
    // In meta-tool mode the meta-tools' names are the gateway's: an upstream tool of the same name
    // is named as on a collision, so it stays reachable through call_tool.
    let meta_names = st.shared.config.router.names.all();
    let names = crate::catalog::NameRules {
        naming: &st.shared.config.naming,
        reserved: if st.index_builder.is_some() {
            &meta_names
        } else {
            &[]
        },
    };
    let catalog = Catalog::build(
        gen,
        &parts,
        names,
        st.shared.upstreams.len(),
        policy.role_count(),
        &visible,
        &rules,
    );
    let mut catalog = catalog;
    if let Some(builder) = &st.index_builder {
        let meta = crate::router::meta::meta_tools_named(&st.shared.config.router.names);
        let items = meta.as_array().cloned().unwrap_or_default();
        // The gateway's own three tools: nobody upstream has a say in their hint.
        let hint = rules.merge([], true);
        catalog.meta_list = Some(ListBody::new("tools", &items, hint));
        // The index numbers tools as the catalog does; the shards map hits back by name anyway.
        let docs = catalog
            .tool_entries
            .iter()
            .zip(&catalog.tool_upstream)
            .map(|(t, up)| {
                let server = servers.get(*up as usize).map_or("", |s| s.name.as_str());
                let public = t
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                crate::router::ToolDoc::from_tool(server, public, t)
            })
            .collect();
        if builder.rebuild(gen, docs).is_err() {
            tracing::error!("the routing index builder is gone; searches use the last index");
        }
    }
    let old = st.shared.catalog.swap(Arc::new(catalog));
    let new = st.shared.catalog.load();
    changed_by_role(&old, &new)
}

/// Per role, which of its lists differ between two catalogs (what its clients are told).
fn changed_by_role(old: &Catalog, new: &Catalog) -> Vec<u8> {
    use crate::mcp::listen::{PROMPTS, RESOURCES, TOOLS};
    if old.views.is_empty() {
        return Vec::new(); // the first catalog: nobody has listed anything yet
    }
    new.views
        .iter()
        .enumerate()
        .map(|(role, v)| {
            let Some(o) = old.views.get(role) else {
                return TOOLS | PROMPTS | RESOURCES;
            };
            fn tools<'a>(c: &'a Catalog, v: &'a crate::catalog::View) -> &'a ListBody {
                c.meta_list.as_ref().unwrap_or(&v.tools_list)
            }
            let mut bits = 0;
            if !tools(old, o).same_entries(tools(new, v)) {
                bits |= TOOLS;
            }
            if !o.prompts_list.same_entries(&v.prompts_list) {
                bits |= PROMPTS;
            }
            if !o.resources_list.same_entries(&v.resources_list)
                || !o.templates_list.same_entries(&v.templates_list)
            {
                bits |= RESOURCES;
            }
            bits
        })
        .collect()
}

/// Stop every upstream, the configured ones and sessions' dedicated ones.
async fn stop_upstreams(shared: &Shared, dedicated: &[Arc<Upstream>]) {
    for up in dedicated {
        isolate::stop(up);
    }
    for up in shared.upstreams.iter() {
        match &up.transport {
            Transport::Stdio(s) => s.terminate(),
            Transport::Sse(s) => s.terminate(),
            Transport::Http(h) => h.close_session(up).await,
        }
    }
    // Give children a moment to exit on SIGTERM (and streams to close) before the process ends.
    for _ in 0..40 {
        if shared
            .upstreams
            .iter()
            .chain(dedicated)
            .all(|u| match &u.transport {
                Transport::Stdio(s) => s.pid().is_none(),
                Transport::Sse(s) => s.slot.current().is_none(),
                Transport::Http(_) => true,
            })
        {
            break;
        }
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
}
