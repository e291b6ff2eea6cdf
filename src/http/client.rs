//! The upstream HTTP/1.1 client: one JSON-RPC POST over a kept-alive connection, answered either as
//! `application/json` or as an SSE stream that is read until the response with our id arrives.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::io::read_more;
use super::media_types;
use super::response::{parse_head, BodyDecoder, Head};
use super::sse::SseParser;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `host:port` as sent in `Host`.
    pub authority: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(
                "https upstreams are not supported yet (TLS to upstreams is still to come)".into(),
            );
        } else {
            return Err(format!("{s:?} is not an http:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{s:?}: bad host"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("{s:?}: bad IPv6 host"))?;
            let port = v6[end + 1..]
                .strip_prefix(':')
                .map(|p| p.parse::<u16>())
                .transpose()
                .map_err(|_| format!("{s:?}: bad port"))?;
            (v6[..end].to_owned(), port.unwrap_or(80))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse::<u16>().map_err(|_| format!("{s:?}: bad port"))?,
                ),
                None => (authority.to_owned(), 80),
            }
        };
        Ok(Url {
            host,
            port,
            path: path.to_owned(),
            authority: authority.to_owned(),
        })
    }
}

impl Url {
    /// Resolve a URL reference against this one (a legacy SSE server's `endpoint` event: usually a
    /// path such as `/message?sessionId=…`). Refused when it names another host or port, as the
    /// TypeScript SDK refuses it: the messages we POST go only where the configured URL points.
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        let reference = reference.trim();
        let reference = reference.split('#').next().unwrap_or("");
        // A scheme is what comes before a ':' that precedes any '/', '?' or '#'.
        let absolute = reference
            .find([':', '/', '?', '#'])
            .is_some_and(|i| i > 0 && reference.as_bytes()[i] == b':');
        let joined = if absolute {
            Url::parse(reference)?
        } else if let Some(rest) = reference.strip_prefix("//") {
            Url::parse(&format!("http://{rest}"))?
        } else {
            let path = if reference.starts_with('/') {
                reference.to_owned()
            } else {
                let base = self.path.split('?').next().unwrap_or("/");
                if reference.starts_with('?') || reference.is_empty() {
                    format!("{base}{reference}")
                } else {
                    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                    format!("{dir}{reference}")
                }
            };
            Url {
                path,
                ..self.clone()
            }
        };
        if (joined.host.as_str(), joined.port) != (self.host.as_str(), self.port) {
            return Err(format!(
                "{reference:?} is on another origin than {}",
                self.authority
            ));
        }
        if joined
            .path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err(format!("{reference:?} is not a usable path"));
        }
        Ok(joined)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("connection closed before the response")]
    Closed,
    #[error("bad response: {0}")]
    Malformed(&'static str),
    #[error("response over the size limit")]
    TooLarge,
    #[error("no response in time")]
    Timeout,
    #[error("answered HTTP {0}")]
    Status(u16),
}

/// What one POST brought back.
#[derive(Debug, Default)]
pub struct PostOutcome {
    /// Status, session id, content type.
    pub head: Head,
    /// JSON-RPC messages received, in order: a JSON body is one message; an SSE stream gives every
    /// message up to and including the response whose id we waited for.
    pub messages: Vec<Bytes>,
    /// A non-JSON-RPC body (error pages), kept for the error message.
    pub other_body: Vec<u8>,
    /// The connection can carry another request.
    pub reusable: bool,
    /// An SSE answer: the response waited for came (else the stream ended before it).
    pub answered: bool,
    /// An SSE answer: the last event id and `retry`, to resume it with `GET` + `Last-Event-ID`.
    pub last_event_id: Option<String>,
    pub retry_ms: Option<u64>,
}

pub async fn connect(url: &Url) -> Result<TcpStream, ClientError> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ClientError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One request's bytes: its line, `Host`, `headers`, a JSON body's type and length, the body.
pub fn request_bytes<'a>(
    method: &str,
    url: &Url,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    // Plain appends, not `write!`: this runs for every proxied call.
    let mut req = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
    for part in [
        method,
        " ",
        &url.path,
        " HTTP/1.1\r\nHost: ",
        &url.authority,
        "\r\n",
    ] {
        req.extend_from_slice(part.as_bytes());
    }
    for (k, v) in headers {
        for part in [k, ": ", v, "\r\n"] {
            req.extend_from_slice(part.as_bytes());
        }
    }
    if let Some(body) = body {
        req.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
        req.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        req.extend_from_slice(b"\r\n\r\n");
        req.extend_from_slice(body);
    } else {
        req.extend_from_slice(b"\r\n");
    }
    req
}

/// Write one POST and read its answer. `on_message` sees each SSE message as it arrives and tells
/// whether it is the response we wait for.
pub async fn post(
    conn: &mut TcpStream,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    max_body: usize,
    deadline: Instant,
    on_message: &dyn Fn(&Bytes) -> bool,
) -> Result<PostOutcome, ClientError> {
    let accept = [("Accept", "application/json, text/event-stream")];
    let req = request_bytes(
        "POST",
        url,
        accept.into_iter().chain(headers.iter().copied()),
        Some(body),
    );
    let (res, _) = conn.write_all(req).await;
    res?;
    read_response(conn, max_body, deadline, on_message, false).await
}

/// Resume an SSE answer that ended early: `GET` with `Last-Event-ID`, read like a POST's answer.
pub async fn resume(
    conn: &mut TcpStream,
    url: &Url,
    headers: &[(&str, &str)],
    last_event_id: &str,
    max_body: usize,
    deadline: Instant,
    on_message: &dyn Fn(&Bytes) -> bool,
) -> Result<PostOutcome, ClientError> {
    let extra = [
        ("Accept", "text/event-stream"),
        ("Last-Event-ID", last_event_id),
    ];
    let req = request_bytes(
        "GET",
        url,
        extra.into_iter().chain(headers.iter().copied()),
        None,
    );
    let (res, _) = conn.write_all(req).await;
    res?;
    read_response(conn, max_body, deadline, on_message, false).await
}

/// Write a bodiless request (DELETE) and read the answer.
pub async fn bodiless(
    conn: &mut TcpStream,
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    deadline: Instant,
) -> Result<PostOutcome, ClientError> {
    let req = request_bytes(method, url, headers.iter().copied(), None);
    let (res, _) = conn.write_all(req).await;
    res?;
    read_response(conn, 1 << 20, deadline, &|_| false, method == "HEAD").await
}

async fn read_more_by(
    conn: &mut TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
) -> Result<(usize, Vec<u8>), ClientError> {
    let wait = deadline.saturating_duration_since(Instant::now());
    match monoio::time::timeout(wait, read_more(conn, buf)).await {
        Err(_) => Err(ClientError::Timeout),
        Ok((Ok(n), b)) => Ok((n, b)),
        Ok((Err(e), _)) => Err(ClientError::Io(e)),
    }
}

async fn read_response(
    conn: &mut TcpStream,
    max_body: usize,
    deadline: Instant,
    on_message: &dyn Fn(&Bytes) -> bool,
    no_body: bool,
) -> Result<PostOutcome, ClientError> {
    let mut buf = Vec::with_capacity(8192);
    let mut out = PostOutcome::default();
    let head = loop {
        if let Some((n, head)) = parse_head(&buf)? {
            buf.drain(..n);
            if head.status == 100 {
                continue;
            }
            break head;
        }
        let (n, b) = read_more_by(conn, buf, deadline).await?;
        buf = b;
        if n == 0 {
            return Err(ClientError::Closed);
        }
    };
    let mut close = head.close;
    if no_body || head.status == 204 || head.status == 304 {
        out.head = head;
        out.reusable = !close;
        return Ok(out);
    }
    // One walk of Content-Type for both kinds.
    let (mut sse, mut json) = (false, false);
    for t in media_types(head.content_type.as_deref().unwrap_or("")) {
        sse |= t.eq_ignore_ascii_case("text/event-stream");
        json |= t.eq_ignore_ascii_case("application/json");
    }
    let mut body = Vec::new();
    let mut dec = BodyDecoder::new(&head, max_body)?;
    out.head = head;
    let mut parser = SseParser::default();
    let mut fed = 0usize;
    let mut got_ours = false;
    let mut linger: Option<Instant> = None;
    loop {
        // Move what arrived into `body`.
        let done = dec.take(&mut buf, &mut body)?;
        if body.len() > max_body {
            return Err(ClientError::TooLarge);
        }
        if sse && !got_ours {
            parser.feed(&body[fed..]);
            fed = body.len();
            while let Some(ev) = parser.next_event() {
                if ev.event.as_deref().is_some_and(|e| e != "message") || ev.data.is_empty() {
                    continue;
                }
                let msg = Bytes::from(ev.data.into_bytes());
                let ours = on_message(&msg);
                out.messages.push(msg);
                if ours {
                    got_ours = true;
                    break;
                }
            }
        }
        if done {
            break;
        }
        if got_ours {
            // The server should end the stream right after the response; give it a moment so the
            // connection can be reused, else drop the connection.
            let until = *linger.get_or_insert_with(|| Instant::now() + Duration::from_millis(50));
            if Instant::now() >= until {
                close = true;
                break;
            }
            match read_more_by(conn, buf, until.min(deadline)).await {
                Ok((0, b)) => {
                    buf = b;
                    close = true;
                    break;
                }
                Ok((_, b)) => buf = b,
                Err(_) => {
                    buf = Vec::new();
                    close = true;
                    break;
                }
            }
            continue;
        }
        let (n, b) = read_more_by(conn, buf, deadline).await?;
        buf = b;
        if n == 0 {
            if dec.ends_at_close() {
                close = true;
                break; // body delimited by close
            }
            return Err(ClientError::Closed);
        }
    }
    out.answered = got_ours;
    out.last_event_id = parser.last_id.take();
    out.retry_ms = parser.retry_ms;
    if !sse {
        if json && !body.is_empty() {
            out.messages.push(Bytes::from(body));
        } else {
            out.other_body = body;
        }
    }
    out.reusable = !close && buf.is_empty();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/mcp").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/mcp")
        );
        let u = Url::parse("http://[::1]:9/x/y?q=1").unwrap();
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.path.as_str(),
                u.authority.as_str()
            ),
            ("::1", 9, "/x/y?q=1", "[::1]:9")
        );
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        assert!(Url::parse("ftp://h").is_err());
        let base = Url::parse("http://127.0.0.1:9/mcp/sse?x=1").unwrap();
        let j = |r: &str| base.join(r).map(|u| u.path);
        assert_eq!(
            j("/message?sessionId=a").as_deref(),
            Ok("/message?sessionId=a")
        );
        assert_eq!(j("messages/?s=1").as_deref(), Ok("/mcp/messages/?s=1"));
        assert_eq!(j("?s=2").as_deref(), Ok("/mcp/sse?s=2"));
        assert_eq!(j("http://127.0.0.1:9/m#frag").as_deref(), Ok("/m"));
        assert!(j("http://127.0.0.1:10/m").is_err());
        assert!(j("//evil.example/m").is_err());
        assert!(j("https://127.0.0.1:9/m").is_err());
        assert!(j("/a b").is_err());
        assert_eq!(j("/m?next=http://x/").as_deref(), Ok("/m?next=http://x/"));
        assert!(j("ftp://127.0.0.1:9/m").is_err());
        assert!(Url::parse("http://h:x/").is_err());
    }
}
