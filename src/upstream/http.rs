//! Streamable HTTP upstreams: pooled keep-alive connections per lane, the upstream's own
//! `Mcp-Session-Id` kept and renewed transparently when the upstream forgets it, and (legacy
//! servers) the session's standing GET stream (`stream`).

use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

use super::handshake::{self, Era, Handshake, MODERN_VERSION};
use super::{Call, Transport, Upstream};
use crate::error::{Error, ErrorKind};
use crate::http::client::{self, ClientError, PostOutcome, Url};
use crate::jsonrpc::{request_with_id, Frame, Kind};
use crate::shard::lane::{Lane, Waiter};
use crate::shard::ShardCtx;

/// Largest response body accepted from an upstream.
const MAX_RESPONSE: usize = 64 << 20;

pub struct HttpUpstream {
    pub url: Url,
    headers: Vec<(String, String)>,
    /// The legacy session the upstream gave us (shared by every lane: one upstream session serves
    /// all downstream clients).
    session: ArcSwapOption<String>,
    /// The legacy session's GET stream.
    pub standing: super::stream::Standing,
    /// The control thread's inbox, told when the server forgot our session and a new one was
    /// opened (what clients subscribed to must be asked again). Set at the first handshake.
    pub control: std::sync::OnceLock<flume::Sender<crate::shard::ControlMsg>>,
}

impl HttpUpstream {
    pub fn new(url: &str, headers: &[(String, String)]) -> Result<HttpUpstream, String> {
        Ok(HttpUpstream {
            url: Url::parse(url)?,
            headers: headers.to_vec(),
            session: ArcSwapOption::empty(),
            standing: Default::default(),
            control: Default::default(),
        })
    }

    /// The legacy session the upstream gave us, if any.
    pub fn session(&self) -> Option<Arc<String>> {
        self.session.load_full()
    }

    /// Owned `base_headers`, for the GET stream's thread.
    pub fn headers_for(
        &self,
        version: &str,
        session: Option<&Arc<String>>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.base_headers(version, session.map(|s| s.as_str()), &mut out);
        out.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// One POST on a pooled (or new) connection; a stale pooled connection is retried once on a new one.
    #[allow(clippy::too_many_arguments)] // one call site per purpose; a struct would only rename them
    async fn post(
        &self,
        lane: &Lane,
        up: &Upstream,
        headers: &[(&str, &str)],
        body: &[u8],
        deadline: Instant,
        want: Option<u64>,
        on_interim: &dyn Fn(Frame),
    ) -> Result<PostOutcome, Error> {
        // Every message of an SSE answer passes here as it arrives: the reply ends the wait, the
        // rest (progress, log lines, server-to-client requests) go on to the client at once.
        let on_message = move |msg: &Bytes| {
            if want.is_some()
                && sonic_rs::get(msg.as_ref(), ["id"])
                    .ok()
                    .and_then(|v| v.as_raw_str().parse::<u64>().ok())
                    == want
            {
                return true;
            }
            if let Ok(f) = Frame::parse(Bytes::clone(msg)) {
                if matches!(f.kind, Kind::Notification | Kind::Request) {
                    on_interim(f);
                }
            }
            false
        };
        for attempt in 0..2 {
            let (mut conn, reused) = match lane.take_conn(up.index) {
                Some(c) if attempt == 0 => (c, true),
                _ => {
                    // Boxed: rare (the pool usually has a connection) and it would size every call.
                    let c = Box::pin(self.connect(up, deadline)).await?;
                    (c, false)
                }
            };
            match client::post(
                &mut conn,
                &self.url,
                headers,
                body,
                MAX_RESPONSE,
                deadline,
                &on_message,
            )
            .await
            {
                Ok(mut out) => {
                    if out.reusable {
                        lane.put_conn(up.index, conn);
                    }
                    // Only an SSE answer that ended early has a point to resume from (a JSON
                    // answer is never `answered`: the check keeps it off the resume path).
                    if want.is_some() && !out.answered && out.last_event_id.is_some() {
                        self.resume(lane, up, headers, deadline, &on_message, &mut out)
                            .await?;
                    }
                    return Ok(out);
                }
                Err(ClientError::Closed | ClientError::Io(_)) if reused => continue,
                Err(ClientError::Timeout) => {
                    return Err(Error::upstream(
                        ErrorKind::UpstreamTimeout,
                        format!("server {:?} did not answer in time", up.name),
                    ))
                }
                Err(e) => return Err(unavailable(up, &e)),
            }
        }
        Err(Error::upstream(
            ErrorKind::UpstreamUnavailable,
            format!("server {:?}: connection failed", up.name),
        ))
    }

    /// The upstream ended an SSE answer before the response (2025-11-25 polling, or a dropped
    /// connection): resume it with `GET` + `Last-Event-ID` after the `retry` it asked for, a few
    /// times, until the response comes or the deadline passes.
    async fn resume(
        &self,
        lane: &Lane,
        up: &Upstream,
        headers: &[(&str, &str)],
        deadline: Instant,
        on_message: &dyn Fn(&Bytes) -> bool,
        out: &mut PostOutcome,
    ) -> Result<(), Error> {
        const ATTEMPTS: usize = 8;
        // Headers that describe a POST's body have no place on the GET.
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !(k == "mcp-method" || k == "mcp-name" || k.starts_with("mcp-param-"))
            })
            .collect();
        for _ in 0..ATTEMPTS {
            let Some(last) = out.last_event_id.take() else {
                return Ok(());
            };
            let wait = Duration::from_millis(out.retry_ms.unwrap_or(0).min(5_000));
            if Instant::now() + wait >= deadline {
                return Ok(());
            }
            monoio::time::sleep(wait).await;
            let mut conn = match lane.take_conn(up.index) {
                Some(c) => c,
                None => Box::pin(self.connect(up, deadline)).await?,
            };
            let more = client::resume(
                &mut conn,
                &self.url,
                &headers,
                &last,
                MAX_RESPONSE,
                deadline,
                on_message,
            )
            .await
            .map_err(|e| match e {
                ClientError::Timeout => Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("server {:?} did not answer in time", up.name),
                ),
                e => unavailable(up, &e),
            })?;
            if more.reusable {
                lane.put_conn(up.index, conn);
            }
            out.messages.extend(more.messages);
            out.answered = more.answered;
            // A stream that gave nothing new keeps the old resumption point.
            out.last_event_id = more.last_event_id.or(Some(last));
            out.retry_ms = more.retry_ms.or(out.retry_ms);
            if out.answered || !(200..300).contains(&more.head.status) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A new connection to the server, by `deadline`.
    async fn connect(
        &self,
        up: &Upstream,
        deadline: Instant,
    ) -> Result<monoio::net::TcpStream, Error> {
        let wait = deadline.saturating_duration_since(Instant::now());
        monoio::time::timeout(wait, client::connect(&self.url))
            .await
            .map_err(|_| {
                Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("server {:?}: connect timed out", up.name),
                )
            })?
            .map_err(|e| unavailable(up, &e))
    }

    fn base_headers<'a>(
        &'a self,
        version: &'a str,
        session: Option<&'a str>,
        out: &mut Vec<(&'a str, &'a str)>,
    ) {
        // 2025-03-26 and older have no version header.
        if version >= "2025-06-18" {
            out.push(("MCP-Protocol-Version", version));
        }
        if let Some(s) = session {
            out.push(("Mcp-Session-Id", s));
        }
        for (k, v) in &self.headers {
            out.push((k.as_str(), v.as_str()));
        }
    }

    /// Send one request and await its reply, within the upstream's request timeout.
    #[allow(clippy::too_many_arguments)] // mirrors `upstream::call_with`
    pub async fn call(
        &self,
        lane: &Lane,
        up: &Upstream,
        hs: &Handshake,
        method: &str,
        params: Option<&[u8]>,
        name: Option<&str>,
        call: &Call<'_>,
    ) -> Result<Frame, Error> {
        let deadline = Instant::now() + up.request_timeout;
        let id = call.id;
        let body = request_with_id(Some(id), method, params);
        let encoded_name = name.map(encode_header_value);
        // A legacy server may send what concerns this client on its GET stream: its reader must
        // know who has calls in flight.
        let _in_flight = match hs.era {
            Era::Legacy if call.origin != 0 => self.standing.track(id, call.origin),
            _ => None,
        };
        for attempt in 0..2 {
            let session = self.session.load_full();
            let mut headers = Vec::with_capacity(8);
            self.base_headers(
                &hs.version,
                session.as_deref().map(String::as_str),
                &mut headers,
            );
            if hs.era == Era::Modern {
                headers.push(("Mcp-Method", method));
                if let Some(n) = &encoded_name {
                    headers.push(("Mcp-Name", n.as_str()));
                }
                for (k, v) in call.headers {
                    headers.push((k.as_str(), v.as_str()));
                }
            }
            let out = self
                .post(
                    lane,
                    up,
                    &headers,
                    &body,
                    deadline,
                    Some(id),
                    call.on_interim,
                )
                .await?;
            if hs.era == Era::Legacy && session.is_some() && attempt == 0 && session_lost(&out) {
                tracing::info!(server = %up.name, "upstream forgot our session; initializing a new one");
                self.session.compare_and_swap(&session, None);
                Box::pin(self.legacy_handshake(lane, up, deadline)).await?;
                if let Some(control) = self.control.get() {
                    let _ =
                        control.send(crate::shard::ControlMsg::Resubscribe { upstream: up.index });
                }
                continue;
            }
            return find_reply(up, &out, id);
        }
        Err(Error::upstream(
            ErrorKind::UpstreamProtocol,
            format!("server {:?} keeps losing its session", up.name),
        ))
    }

    /// Send a request and return what to wait on, without waiting, like a stdio server's
    /// `Slot::send_request` (a held call keeps the waiter; see `mcp::hold`): a task of this shard
    /// keeps reading the POST's answer and hands what comes (the server's questions, the reply) to
    /// the lane as a stdio reader would. Dropping the waiter ends the task and its POST.
    pub fn send_request(
        ctx: Rc<ShardCtx>,
        up: &Arc<Upstream>,
        method: &str,
        params: &[u8],
        id: u64,
    ) -> Result<Waiter, Error> {
        let Some(hs) = up.ready() else {
            return Err(up.unavailable());
        };
        let waiter = ctx.lane.expect(id, up.index);
        let (stop, stopped) = local_sync::oneshot::channel::<()>();
        let (up, method, params) = (up.clone(), method.to_owned(), params.to_vec());
        monoio::spawn(async move {
            let Transport::Http(h) = &up.transport else {
                return;
            };
            let (lane, upstream) = (&ctx.lane, up.index);
            let on_interim = |frame: Frame| lane.interim(upstream, id, frame);
            let call = Call {
                id,
                origin: id,
                on_interim: &on_interim,
                headers: &[],
                client_caps: None,
                modern_meta: false,
            };
            let posted =
                std::pin::pin!(h.call(lane, &up, &hs, &method, Some(&params), None, &call));
            monoio::select! {
                r = posted => match r {
                    Ok(frame) => lane.complete(upstream, frame),
                    Err(error) => lane.fail(upstream, id, error),
                },
                _ = stopped => {}
            }
        });
        Ok(waiter.with_stop(stop))
    }

    /// Probe `server/discover`; fall back to `initialize`.
    pub async fn handshake(
        &self,
        lane: &Lane,
        up: &Upstream,
        deadline: Instant,
        try_modern: bool,
    ) -> Result<Handshake, Error> {
        if try_modern {
            let id = lane.next_id();
            let body = request_with_id(
                Some(id),
                "server/discover",
                Some(&handshake::discover_params()),
            );
            let mut headers = vec![
                ("MCP-Protocol-Version", MODERN_VERSION),
                ("Mcp-Method", "server/discover"),
            ];
            for (k, v) in &self.headers {
                headers.push((k.as_str(), v.as_str()));
            }
            let probe_deadline = deadline.min(Instant::now() + Duration::from_secs(10));
            let out = self
                .post(
                    lane,
                    up,
                    &headers,
                    &body,
                    probe_deadline,
                    Some(id),
                    &drop_interim,
                )
                .await?;
            if (200..300).contains(&out.head.status) {
                if let Ok(f) = find_reply(up, &out, id) {
                    if let Some(h) = f
                        .result_raw()
                        .and_then(|r| serde_json::from_slice::<Value>(r).ok())
                        .and_then(|r| Handshake::from_discover(&r))
                    {
                        return Ok(h);
                    }
                }
            }
        }
        self.legacy_handshake(lane, up, deadline).await
    }

    async fn legacy_handshake(
        &self,
        lane: &Lane,
        up: &Upstream,
        deadline: Instant,
    ) -> Result<Handshake, Error> {
        let id = lane.next_id();
        let body = request_with_id(
            Some(id),
            "initialize",
            Some(&handshake::initialize_params()),
        );
        let mut headers = Vec::new();
        for (k, v) in &self.headers {
            headers.push((k.as_str(), v.as_str()));
        }
        let out = self
            .post(lane, up, &headers, &body, deadline, Some(id), &drop_interim)
            .await?;
        let frame = find_reply(up, &out, id)?;
        let hs = handshake::from_initialize_reply(&up.name, &frame)?;
        let session = out.head.session_id.clone();
        let mut headers = Vec::new();
        self.base_headers(&hs.version, session.as_deref(), &mut headers);
        let note = request_with_id(None, "notifications/initialized", None);
        let out = self
            .post(lane, up, &headers, &note, deadline, None, &drop_interim)
            .await?;
        if !(200..300).contains(&out.head.status) {
            return Err(Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!(
                    "server {:?} refused notifications/initialized with HTTP {}",
                    up.name, out.head.status
                ),
            ));
        }
        self.session.store(session.map(Arc::new));
        Ok(hs)
    }

    /// POST a message that expects no reply (our answer to a server-to-client request).
    pub async fn send_message(
        &self,
        lane: &Lane,
        up: &Upstream,
        hs: &Handshake,
        msg: &[u8],
    ) -> Result<(), Error> {
        let deadline = Instant::now() + up.request_timeout;
        let session = self.session.load_full();
        let mut headers = Vec::with_capacity(4);
        self.base_headers(
            &hs.version,
            session.as_deref().map(String::as_str),
            &mut headers,
        );
        let out = self
            .post(lane, up, &headers, msg, deadline, None, &drop_interim)
            .await?;
        if (200..300).contains(&out.head.status) {
            Ok(())
        } else {
            Err(Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!(
                    "server {:?} refused our answer to its request with HTTP {}",
                    up.name, out.head.status
                ),
            ))
        }
    }

    /// End our upstream session (at shutdown).
    pub async fn close_session(&self, up: &Upstream) {
        self.standing.stop();
        let Some(session) = self.session.swap(None) else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        if let Ok(Ok(mut conn)) =
            monoio::time::timeout(Duration::from_secs(2), client::connect(&self.url)).await
        {
            let headers = [("Mcp-Session-Id", session.as_str())];
            if let Err(e) =
                client::bodiless(&mut conn, "DELETE", &self.url, &headers, deadline).await
            {
                tracing::debug!(server = %up.name, "closing the upstream session: {e}");
            }
        }
    }
}

fn drop_interim(f: Frame) {
    tracing::debug!(method = %f.method().unwrap_or_default(), "a message during a handshake; dropped");
}

fn unavailable(up: &Upstream, e: &ClientError) -> Error {
    Error::upstream(
        ErrorKind::UpstreamUnavailable,
        format!("server {:?} is unavailable: {e}", up.name),
    )
}

/// The upstream no longer knows our session: 404 (the spec), or the 400 "no valid session" some
/// servers answer instead.
fn session_lost(out: &PostOutcome) -> bool {
    match out.head.status {
        404 => true,
        400 => {
            let text = out
                .messages
                .first()
                .map(|m| m.as_ref())
                .unwrap_or(&out.other_body);
            let text = String::from_utf8_lossy(text).to_ascii_lowercase();
            text.contains("session") || text.contains("not initialized")
        }
        _ => false,
    }
}

/// The reply to request `id` among what came back.
fn find_reply(up: &Upstream, out: &PostOutcome, id: u64) -> Result<Frame, Error> {
    let mut unaddressed_error: Option<Frame> = None;
    for msg in &out.messages {
        let Ok(f) = Frame::parse(Bytes::clone(msg)) else {
            continue;
        };
        match f.kind {
            Kind::Response | Kind::ErrorResponse if f.id_u64() == Some(id) => return Ok(f),
            Kind::ErrorResponse => unaddressed_error = Some(f),
            _ => {}
        }
    }
    let detail = match &unaddressed_error {
        Some(f) => String::from_utf8_lossy(f.error_raw().unwrap_or(b"")).into_owned(),
        None => {
            String::from_utf8_lossy(&out.other_body[..out.other_body.len().min(200)]).into_owned()
        }
    };
    Err(Error::upstream(
        ErrorKind::UpstreamProtocol,
        format!(
            "server {:?} answered HTTP {} without a response: {detail}",
            up.name, out.head.status
        ),
    ))
}

/// An `Mcp-Name`-style header value: plain when it is safe ASCII, else `=?base64?…?=`.
pub fn encode_header_value(v: &str) -> String {
    use base64::Engine;
    let looks_encoded = v.starts_with("=?base64?") && v.ends_with("?=");
    let safe_ascii = v.bytes().all(|b| (0x20..0x7f).contains(&b));
    let plain =
        !v.is_empty() && safe_ascii && !v.starts_with(' ') && !v.ends_with(' ') && !looks_encoded;
    if plain {
        v.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        )
    }
}

/// Decode a header value that may use the base64 sentinel; `None` when malformed.
pub fn decode_header_value(v: &str) -> Option<String> {
    use base64::Engine;
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(encode_header_value("get_weather"), "get_weather");
        let e = encode_header_value("héllo");
        assert!(e.starts_with("=?base64?"));
        assert_eq!(decode_header_value(&e).as_deref(), Some("héllo"));
        assert_eq!(
            decode_header_value(&encode_header_value(" padded ")).as_deref(),
            Some(" padded ")
        );
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }
}
