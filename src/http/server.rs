//! The front's HTTP/1.1 server codec: read one request (head with httparse, then a Content-Length or
//! chunked body, within limits) from a connection's buffer, and encode responses.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::time::Sleep;

use super::chunked::{ChunkError, ChunkedDecoder};
use super::io::read_more;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Delete,
    Options,
    Head,
    Other,
}

/// Where a kept value sits in `Head::text`.
#[derive(Debug, Default, Clone, Copy)]
struct Txt {
    start: u32,
    end: u32,
}

/// What the gateway needs from a request head; everything else is ignored. The path and the kept
/// header values share one buffer (`text`): one allocation per request instead of one per value.
#[derive(Debug, Default, Clone)]
pub struct Head {
    pub method: Option<HttpMethod>,
    pub keep_alive: bool,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub expect_continue: bool,
    /// `Mcp-Param-*` headers: (lower-case name after the prefix, value).
    pub mcp_params: Vec<(String, String)>,
    text: String,
    path: Txt,
    content_type: Option<Txt>,
    accept: Option<Txt>,
    origin: Option<Txt>,
    host: Option<Txt>,
    session_id: Option<Txt>,
    protocol_version: Option<Txt>,
    mcp_method: Option<Txt>,
    mcp_name: Option<Txt>,
    last_event_id: Option<Txt>,
    authorization: Option<Txt>,
    x_api_key: Option<Txt>,
    traceparent: Option<Txt>,
}

/// The accessors of the kept header values.
macro_rules! head_values {
    ($($name:ident),* $(,)?) => {
        $(
            pub fn $name(&self) -> Option<&str> {
                self.$name.map(|t| self.get(t))
            }
        )*
    };
}

impl Head {
    pub fn method(&self) -> HttpMethod {
        self.method.unwrap_or(HttpMethod::Other)
    }

    /// The request target without its query.
    pub fn path(&self) -> &str {
        self.get(self.path)
    }

    head_values!(
        content_type,
        accept,
        origin,
        host,
        session_id,
        protocol_version,
        mcp_method,
        mcp_name,
        last_event_id,
        authorization,
        x_api_key,
        traceparent,
    );

    fn get(&self, t: Txt) -> &str {
        self.text
            .get(t.start as usize..t.end as usize)
            .unwrap_or("")
    }

    /// Appends `v` to `text`.
    fn keep(&mut self, v: &str) -> Txt {
        let start = self.text.len() as u32;
        self.text.push_str(v);
        Txt {
            start,
            end: self.text.len() as u32,
        }
    }
}

/// Limits applied while reading.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    /// Idle time allowed before the first byte of a request.
    pub idle: Duration,
    /// Time allowed for the whole request (head and body) from its first byte (slow clients).
    pub read: Duration,
}

/// Why no request could be read. `status()` says what to answer before closing, if anything.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("idle timeout")]
    Idle,
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("request head over the size limit")]
    HeadTooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("body over the size limit")]
    BodyTooLarge,
    #[error("request not received in time")]
    SlowRequest,
}

impl ReadError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ReadError::Closed | ReadError::Idle | ReadError::Io(_) => None,
            ReadError::HeadTooLarge => Some(431),
            ReadError::Malformed(_) => Some(400),
            ReadError::BodyTooLarge => Some(413),
            ReadError::SlowRequest => Some(408),
        }
    }
}

/// Read one request from `stream`. `buf` holds bytes already received (pipelining) and is handed back
/// holding whatever followed this request.
/// `timer` is the connection's one timer, reset for each read (see `within`).
pub async fn read_request<S>(
    stream: &mut S,
    mut buf: Vec<u8>,
    limits: &Limits,
    mut timer: Pin<&mut Sleep>,
) -> (Result<(Head, Bytes), ReadError>, Vec<u8>)
where
    S: AsyncReadRent + AsyncWriteRentExt,
{
    // The request-read clock starts at its first byte (which may be here already, pipelined), not
    // at the idle wait before it: a kept-alive client may idle, then send a head in pieces.
    let mut first_byte = (!buf.is_empty()).then(std::time::Instant::now);
    // The head.
    let (head, head_len) = loop {
        if !buf.is_empty() {
            match parse_head(&buf) {
                // A whole head that arrived in one read is held to the limit too.
                Ok(Some((_, len))) if len > limits.max_header_bytes => {
                    return (Err(ReadError::HeadTooLarge), buf)
                }
                Ok(Some(h)) => break h,
                Ok(None) if buf.len() > limits.max_header_bytes => {
                    return (Err(ReadError::HeadTooLarge), buf)
                }
                Ok(None) => {}
                Err(e) => return (Err(e), buf),
            }
        }
        let wait = match first_byte {
            None => limits.idle,
            Some(t) => limits.read.saturating_sub(t.elapsed()),
        };
        let (res, b) = match within(timer.as_mut(), after(wait), read_more(stream, buf)).await {
            Some(r) => r,
            None if first_byte.is_none() => return (Err(ReadError::Idle), Vec::new()),
            None => return (Err(ReadError::SlowRequest), Vec::new()),
        };
        buf = b;
        match res {
            Ok(0) => return (Err(ReadError::Closed), buf),
            Ok(_) => {
                first_byte.get_or_insert_with(std::time::Instant::now);
            }
            Err(e) => return (Err(ReadError::Io(e)), buf),
        }
    };
    let deadline = first_byte.unwrap_or_else(std::time::Instant::now) + limits.read;
    buf.drain(..head_len);
    if let Some(len) = head.content_length {
        if len > limits.max_body_bytes {
            return (Err(ReadError::BodyTooLarge), buf);
        }
    }
    if head.expect_continue
        && buf.is_empty()
        && (head.content_length.unwrap_or(0) > 0 || head.chunked)
    {
        let (res, _) = stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        if let Err(e) = res {
            return (Err(ReadError::Io(e)), buf);
        }
    }
    // The body.
    if head.chunked {
        let mut dec = ChunkedDecoder::new(limits.max_body_bytes);
        let mut body = Vec::new();
        loop {
            match dec.decode(&buf, &mut body) {
                Ok(used) => {
                    buf.drain(..used);
                }
                Err(ChunkError::TooLarge) => return (Err(ReadError::BodyTooLarge), buf),
                Err(ChunkError::BadSize) => {
                    return (Err(ReadError::Malformed("bad chunk size")), buf)
                }
            }
            if dec.is_done() {
                return (Ok((head, Bytes::from(body))), buf);
            }
            let (res, b) = read_with_deadline(stream, buf, deadline, timer.as_mut()).await;
            buf = b;
            if let Err(e) = res {
                return (Err(e), buf);
            }
        }
    }
    let len = head.content_length.unwrap_or(0);
    while buf.len() < len {
        let (res, b) = read_with_deadline(stream, buf, deadline, timer.as_mut()).await;
        buf = b;
        if let Err(e) = res {
            return (Err(e), buf);
        }
    }
    let body = Bytes::copy_from_slice(&buf[..len]);
    buf.drain(..len);
    (Ok((head, body)), buf)
}

async fn read_with_deadline<S: AsyncReadRent>(
    stream: &mut S,
    buf: Vec<u8>,
    deadline: std::time::Instant,
    timer: Pin<&mut Sleep>,
) -> (Result<(), ReadError>, Vec<u8>) {
    let wait = deadline.saturating_duration_since(std::time::Instant::now());
    match within(timer, after(wait), read_more(stream, buf)).await {
        None => (Err(ReadError::SlowRequest), Vec::new()),
        Some((Ok(0), b)) => (Err(ReadError::Closed), b),
        Some((Ok(_), b)) => (Ok(()), b),
        Some((Err(e), b)) => (Err(ReadError::Io(e)), b),
    }
}

/// `wait` from now; `None` past the end of time (a timer that never fires, as `timeout` makes it).
pub(crate) fn after(wait: Duration) -> Option<monoio::time::Instant> {
    monoio::time::Instant::now().checked_add(wait)
}

/// `monoio::time::timeout_at(deadline, fut)` on a timer the caller keeps: `fut`'s output, or
/// `None` when `deadline` passes first (`fut` is polled first, as `Timeout` does; no deadline, no
/// timer). A new timer per read cost an insertion into the timer wheel and a removal per request;
/// resetting a kept one to a later deadline only moves its expiry (the wheel re-files it when the
/// old one comes). Only one task may use a kept timer: monoio keeps the first waker that polls it
/// until it fires, so a timer moved to another task (a pooled upstream connection's) would wake
/// the wrong one.
pub(crate) async fn within<F: Future>(
    mut timer: Pin<&mut Sleep>,
    deadline: Option<monoio::time::Instant>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(deadline) => timer.as_mut().reset(deadline),
        None => return Some(fut.await),
    }
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Parse a head; `Ok(None)` = incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ReadError> {
    // Uninitialized: filling 64 empty headers first was a 2 KB memset per request.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::HeadTooLarge),
        Err(_) => return Err(ReadError::Malformed("bad request head")),
    };
    let mut h = Head {
        method: Some(match req.method.unwrap_or("") {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "DELETE" => HttpMethod::Delete,
            "OPTIONS" => HttpMethod::Options,
            "HEAD" => HttpMethod::Head,
            _ => HttpMethod::Other,
        }),
        keep_alive: req.version == Some(1),
        // Room for the path and the values: the head holds them (the head is capped in size).
        text: String::with_capacity(n),
        ..Head::default()
    };
    let path = req.path.unwrap_or("/");
    h.path = h.keep(path.split('?').next().unwrap_or("/"));
    for hd in req.headers.iter() {
        let name = hd.name;
        let value = || super::header_text(hd.value);
        let canon = known_header(name);
        if canon.is_empty() {
            continue;
        }
        let slot = if canon == "content-length" {
            let v = std::str::from_utf8(hd.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
            match (v, h.content_length) {
                (None, _) => return Err(ReadError::Malformed("bad Content-Length")),
                (Some(a), Some(b)) if a != b => {
                    return Err(ReadError::Malformed("conflicting Content-Length"))
                }
                (Some(a), _) => h.content_length = Some(a),
            }
            continue;
        } else if canon == "transfer-encoding" {
            let v = value();
            if v.eq_ignore_ascii_case("chunked") {
                h.chunked = true;
            } else if !v.eq_ignore_ascii_case("identity") {
                return Err(ReadError::Malformed("unsupported Transfer-Encoding"));
            }
            continue;
        } else if canon == "connection" {
            let v = value();
            if v.eq_ignore_ascii_case("close") {
                h.keep_alive = false;
            } else if v.eq_ignore_ascii_case("keep-alive") {
                h.keep_alive = true;
            }
            continue;
        } else if canon == "expect" {
            h.expect_continue = value().eq_ignore_ascii_case("100-continue");
            continue;
        } else if canon == "content-type" {
            &mut h.content_type
        } else if canon == "accept" {
            // Several Accept headers combine into one list.
            let v = value();
            let list = match h.accept {
                Some(prev) => format!("{}, {v}", h.get(prev)),
                None => v.into_owned(),
            };
            h.accept = Some(h.keep(&list));
            continue;
        } else if canon == "origin" {
            &mut h.origin
        } else if canon == "host" {
            &mut h.host
        } else if canon == "mcp-session-id" {
            &mut h.session_id
        } else if canon == "mcp-protocol-version" {
            &mut h.protocol_version
        } else if canon == "mcp-method" {
            &mut h.mcp_method
        } else if canon == "mcp-name" {
            &mut h.mcp_name
        } else if canon == "mcp-param-" {
            h.mcp_params
                .push((name[10..].to_ascii_lowercase(), value().into_owned()));
            continue;
        } else if canon == "last-event-id" {
            &mut h.last_event_id
        } else if canon == "authorization" {
            &mut h.authorization
        } else if canon == "x-api-key" {
            &mut h.x_api_key
        } else if canon == "traceparent" {
            &mut h.traceparent
        } else {
            continue;
        };
        // A repeated header keeps its last value, as before.
        let start = h.text.len() as u32;
        h.text.push_str(&value());
        *slot = Some(Txt {
            start,
            end: h.text.len() as u32,
        });
    }
    if h.chunked && h.content_length.is_some() {
        return Err(ReadError::Malformed("both Content-Length and chunked"));
    }
    Ok(Some((h, n)))
}

/// The lower-case name of a request header the gateway reads (`"mcp-param-"` for that family), or
/// `""`: picked by length and first letter, so a header costs one case-insensitive comparison
/// rather than a chain of them.
fn known_header(name: &str) -> &'static str {
    let first = name.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
    let candidate = match (name.len(), first) {
        (14, b'c') => "content-length",
        (17, b't') => "transfer-encoding",
        (10, b'c') => "connection",
        (6, b'e') => "expect",
        (12, b'c') => "content-type",
        (6, b'a') => "accept",
        (6, b'o') => "origin",
        (4, b'h') => "host",
        (14, b'm') => "mcp-session-id",
        (20, b'm') => "mcp-protocol-version",
        (10, b'm') => "mcp-method",
        (8, b'm') => "mcp-name",
        (13, b'l') => "last-event-id",
        (13, b'a') => "authorization",
        (9, b'x') => "x-api-key",
        (11, b't') => "traceparent",
        _ => "",
    };
    let name = name.as_bytes();
    if !candidate.is_empty() && lower_eq(name, candidate.as_bytes()) {
        candidate
    } else if name.len() > 10 && lower_eq(&name[..10], b"mcp-param-") {
        "mcp-param-"
    } else {
        ""
    }
}

/// `name` equals `lower` (lower-case letters and `-`) ignoring ASCII case. Exact for header names
/// (httparse admits only token bytes, and the one byte that `| 0x20` maps onto `-` is CR); without
/// an early exit the loop compiles to a few wide operations (`eq_ignore_ascii_case` went byte by
/// byte here).
fn lower_eq(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(0u8, |diff, (a, b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// A whole response (the front writes no streamed bodies yet).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// A standing SSE stream (a GET stream, a listen stream): its messages follow the head until
    /// it is closed or the client goes.
    pub stream: Option<std::rc::Rc<crate::mcp::sink::Sink>>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
        }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body,
            stream: None,
        }
    }

    /// A standing SSE stream fed by `sink`.
    pub fn stream(sink: std::rc::Rc<crate::mcp::sink::Sink>) -> Self {
        let mut r = Response::new(200);
        r.stream = Some(sink);
        r
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Encode head and body into `out` (cleared first).
    pub fn encode(&self, keep_alive: bool, out: &mut Vec<u8>) {
        // Plain appends, not `write!`: this runs for every answer.
        out.clear();
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(n.format(self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(super::reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = self.content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (k, v) in &self.headers {
            for part in [k, ": ", v.as_str(), "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(n.format(self.body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept timer fires on each reuse: after a read that beat it, after one it ended, after a
    /// pause longer than it, with a later and with an earlier deadline.
    #[test]
    fn a_kept_timer_ends_each_slow_wait() {
        for driver in [crate::config::Driver::Epoll, crate::config::Driver::Auto] {
            let mut rt = crate::shard::build_runtime(driver).expect("runtime");
            rt.block_on(async {
                let mut timer = Box::pin(monoio::time::sleep(Duration::from_secs(3600)));
                let ms = Duration::from_millis;
                let at = |d| Some(monoio::time::Instant::now() + d);
                let slow = || monoio::time::sleep(ms(400));
                for (deadline, pause) in [(100, 0), (300, 0), (50, 0), (100, 250), (60, 0)] {
                    let fast = within(timer.as_mut(), at(ms(deadline)), async { 7 }).await;
                    assert_eq!(fast, Some(7));
                    // Armed, nobody waiting: it may fire now, or still be armed on the next use.
                    monoio::time::sleep(ms(pause)).await;
                    let started = std::time::Instant::now();
                    let r = within(timer.as_mut(), at(ms(deadline)), slow()).await;
                    let took = started.elapsed();
                    assert!(r.is_none(), "{driver:?} {deadline} ms: not timed out");
                    assert!(
                        took >= ms(deadline - 5) && took < ms(350),
                        "{driver:?} {took:?}"
                    );
                }
            });
        }
    }

    #[test]
    fn head_fields() {
        let raw = b"POST /mcp?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nAccept: application/json\r\nAccept: text/event-stream\r\nMcp-Session-Id: s1\r\nContent-Length: 2\r\n\r\n{}";
        let (h, n) = parse_head(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 2);
        assert_eq!(h.method(), HttpMethod::Post);
        assert_eq!(h.path(), "/mcp");
        assert!(h.keep_alive);
        assert_eq!(h.content_length, Some(2));
        assert_eq!(h.session_id(), Some("s1"));
        assert_eq!(h.accept(), Some("application/json, text/event-stream"));
        assert_eq!(h.host(), Some("a"));
        assert_eq!(h.content_type(), Some("application/json"));
        assert_eq!(h.mcp_name(), None);
    }

    #[test]
    fn known_headers_by_any_case() {
        for (name, canon) in [
            ("Content-Length", "content-length"),
            ("MCP-PROTOCOL-VERSION", "mcp-protocol-version"),
            ("mcp-name", "mcp-name"),
            ("Mcp-Param-Region", "mcp-param-"),
            ("Mcp-Param-", ""),
            ("mcp-sessionXid", ""),
            ("Authorization", "authorization"),
            ("Last-Event-Id", "last-event-id"),
            ("X-Api-Key", "x-api-key"),
            ("User-Agent", ""),
            ("", ""),
            ("Mcp-Name\r", ""),
            ("Mcp_Name", ""),
        ] {
            assert_eq!(known_header(name), canon, "{name}");
        }
    }

    #[test]
    fn bad_heads() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"\x01\x02 nonsense\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn encode_response() {
        let mut out = Vec::new();
        Response::json(200, b"{}".to_vec())
            .header("Mcp-Session-Id", "x")
            .encode(false, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }
}
