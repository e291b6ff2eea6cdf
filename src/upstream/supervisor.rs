//! Bringing upstreams up and keeping them up (control thread): spawn or connect, handshake in the
//! server's era, fetch its lists; on failure or death, retry with exponential backoff.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::handshake::{self, Handshake};
use super::link::Slot;
use super::{Status, Transport, Upstream};
use crate::catalog::{Hint, Said, UpstreamLists};
use crate::config;
use crate::error::{Error, ErrorKind};
use crate::jsonrpc::{Frame, Kind};
use crate::shard::lane::Lane;
use crate::shard::Shared;

/// Era hints kept across restarts of one upstream.
pub const HINT_UNKNOWN: u8 = 0;
pub const HINT_LEGACY: u8 = 2;

/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Start (or restart) one upstream and handshake with it.
pub async fn start(
    shared: &Arc<Shared>,
    lane: &Lane,
    up: &Arc<Upstream>,
) -> Result<Handshake, Error> {
    let deadline = Instant::now() + Duration::from_millis(up.config.startup_timeout_ms);
    let pin = up.config.era;
    let try_modern = pin != config::EraPin::Legacy
        && (pin == config::EraPin::Modern || up.era_hint.load(Ordering::Relaxed) != HINT_LEGACY);
    let hs = match &up.transport {
        Transport::Stdio(s) => {
            s.spawn(shared, up).map_err(|e| {
                Error::upstream(
                    ErrorKind::UpstreamUnavailable,
                    format!("server {:?} failed to start: {e}", up.name),
                )
            })?;
            let mut found = None;
            if try_modern {
                // Probe the modern revision first; silence or any error means legacy.
                let probe_deadline = deadline.min(Instant::now() + Duration::from_secs(5));
                let discover = handshake::discover_params();
                match ask(
                    &s.slot,
                    lane,
                    up,
                    "server/discover",
                    &discover,
                    probe_deadline,
                )
                .await
                {
                    Ok(f) if f.kind == Kind::Response => {
                        found = f
                            .result_raw()
                            .and_then(|r| serde_json::from_slice::<Value>(r).ok())
                            .and_then(|r| Handshake::from_discover(&r));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::UpstreamUnavailable => {
                        // Some legacy servers exit on any request before initialize.
                        up.era_hint.store(HINT_LEGACY, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(_) => {}
                }
            }
            match found {
                Some(h) => h,
                None => legacy_handshake(&s.slot, lane, up, deadline).await?,
            }
        }
        // The 2024-11-05 transport predates the modern revision: never probed.
        Transport::Sse(s) => {
            s.connect(shared, up, deadline).await?;
            legacy_handshake(&s.slot, lane, up, deadline).await?
        }
        Transport::Http(h) => h.handshake(lane, up, deadline, try_modern).await?,
    };
    if hs.era == handshake::Era::Legacy {
        if pin == config::EraPin::Modern {
            return Err(Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!(
                    "server {:?} does not speak {} (era = \"modern\" in its config)",
                    up.name,
                    handshake::MODERN_VERSION
                ),
            ));
        }
        up.era_hint.store(HINT_LEGACY, Ordering::Relaxed);
        if let Transport::Http(h) = &up.transport {
            h.standing.start(shared, up, &hs);
            let _ = h.control.set(shared.control.clone());
        }
    }
    Ok(hs)
}

/// `initialize` and `notifications/initialized` over a stdio or SSE connection.
async fn legacy_handshake<H>(
    slot: &Slot<H>,
    lane: &Lane,
    up: &Upstream,
    deadline: Instant,
) -> Result<Handshake, Error> {
    let params = handshake::initialize_params();
    let f = ask(slot, lane, up, "initialize", &params, deadline).await?;
    let h = handshake::from_initialize_reply(&up.name, &f)?;
    slot.notify("notifications/initialized", None);
    Ok(h)
}

/// One gateway-internal request over a stdio or SSE connection.
async fn ask<H>(
    slot: &Slot<H>,
    lane: &Lane,
    up: &Upstream,
    method: &str,
    params: &[u8],
    deadline: Instant,
) -> Result<Frame, Error> {
    let call = super::Call::internal(lane);
    slot.request(lane, up, method, Some(params), deadline, &call)
        .await
}

/// Fetch every list the upstream offers, following its cursors, and what it said about each
/// list's freshness (a 2026-07-28 server's `ttlMs`/`cacheScope`; a legacy server says nothing).
pub async fn fetch_lists(
    lane: &Lane,
    up: &Upstream,
    hs: &Handshake,
) -> Result<UpstreamLists, Error> {
    let mut lists = UpstreamLists::default();
    if hs.has_capability("tools") {
        (lists.tools, lists.hints.tools) = fetch_all(lane, up, hs, "tools/list", "tools").await?;
    }
    if hs.has_capability("prompts") {
        (lists.prompts, lists.hints.prompts) =
            fetch_all(lane, up, hs, "prompts/list", "prompts").await?;
    }
    if hs.has_capability("resources") {
        (lists.resources, lists.hints.resources) =
            fetch_all(lane, up, hs, "resources/list", "resources").await?;
        // Templates are optional even for resource servers.
        (lists.templates, lists.hints.templates) = fetch_all(
            lane,
            up,
            hs,
            "resources/templates/list",
            "resourceTemplates",
        )
        .await
        .unwrap_or_default();
    }
    Ok(lists)
}

/// Most pages the gateway follows of one upstream list (a server that never ends its cursors
/// must not stall the catalog).
const MAX_PAGES: usize = 1000;

async fn fetch_all(
    lane: &Lane,
    up: &Upstream,
    hs: &Handshake,
    method: &str,
    key: &str,
) -> Result<(Vec<Value>, Said), Error> {
    let mut out = Vec::new();
    let mut said = Said::Silent;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => serde_json::json!({ "cursor": c }).to_string(),
            None => "{}".to_owned(),
        };
        let f = super::call_internal(lane, up, hs, method, Some(params.as_bytes())).await?;
        let Some(result) = f
            .result_raw()
            .and_then(|r| serde_json::from_slice::<Value>(r).ok())
        else {
            return Err(Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!(
                    "server {:?} failed {method}: {}",
                    up.name,
                    String::from_utf8_lossy(f.error_raw().unwrap_or(b""))
                ),
            ));
        };
        if let Some(items) = result.get(key).and_then(Value::as_array) {
            out.extend(items.iter().cloned());
        }
        if hs.era == handshake::Era::Modern {
            said = said.and_page(Hint::of_result(&result));
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() && cursor.as_deref() != Some(c) => cursor = Some(c.to_owned()),
            _ => return Ok((out, said)),
        }
    }
    tracing::warn!(server = %up.name, "{method}: stopped following cursors after {MAX_PAGES} pages");
    Ok((out, said))
}

/// Mark an upstream down.
pub fn mark_down(up: &Upstream, reason: String) {
    up.status.store(Arc::new(Status::Down {
        reason,
        since: Instant::now(),
    }));
}

/// A 2026-07-28 server tells of list changes only on a `subscriptions/listen` stream: open one on a
/// stdio or HTTP server for the lists it says change (its notifications reach control like a legacy
/// server's; the listen request itself is never answered until the server ends it).
pub fn listen_for_changes(shared: &Arc<Shared>, lane: &Lane, up: &Arc<Upstream>, hs: &Handshake) {
    if hs.era != handshake::Era::Modern {
        return;
    }
    let s = match &up.transport {
        Transport::Stdio(s) => s,
        // Over HTTP the listen request's answer is the stream: a thread holds it (`stream`).
        Transport::Http(h) => return h.standing.start(shared, up, hs),
        Transport::Sse(_) => return,
    };
    let changes = |cap: &str| hs.capabilities[cap]["listChanged"] == serde_json::json!(true);
    let wanted = serde_json::json!({
        "toolsListChanged": changes("tools"),
        "promptsListChanged": changes("prompts"),
        "resourcesListChanged": changes("resources"),
    });
    if !["tools", "prompts", "resources"].iter().any(|c| changes(c)) {
        return;
    }
    let params = handshake::with_modern_meta(
        Some(
            serde_json::json!({ "notifications": wanted })
                .to_string()
                .as_bytes(),
        ),
        None,
    );
    let msg = crate::jsonrpc::request_with_id(
        Some(lane.next_id()),
        "subscriptions/listen",
        Some(&params),
    );
    if !s.slot.send(msg) {
        tracing::debug!(server = %up.name, "could not open a listen stream");
    }
}
