//! HTTP/1.1 framing for both ends: responses the load client reads, requests the upstream reads.
//!
//! Parsing is split like mini-redis's frames: a head parse that answers "incomplete" or the head,
//! then a body step that answers "incomplete" or the body and how many bytes it used. Running out
//! of bytes is never an error. Bodies are `Content-Length`, chunked, or (responses only) until EOF.

use std::fmt;

/// The largest response or request head we accept.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body we accept.
pub const MAX_BODY: usize = 64 << 20;

/// A framing error: the peer sent something that is not HTTP/1.1 we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The head does not parse.
    Head(String),
    /// Head or body over the limits above.
    TooLarge,
    /// A malformed chunk.
    BadChunk,
    /// The connection closed in the middle of a message.
    Truncated,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Head(e) => write!(f, "bad HTTP head: {e}"),
            WireError::TooLarge => write!(f, "HTTP message over the size limit"),
            WireError::BadChunk => write!(f, "bad chunked encoding"),
            WireError::Truncated => write!(f, "connection closed mid-message"),
        }
    }
}

/// How the body of a message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// The body runs to the end of the connection (responses without a length).
    UntilClose,
}

/// The parts of a response head the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub head_len: usize,
    pub framing: Framing,
    /// `Content-Type: text/event-stream`.
    pub event_stream: bool,
    pub session_id: Option<String>,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// Parses a response head; `Ok(None)` means more bytes are needed.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(WireError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Head(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    if (100..200).contains(&status) {
        return Err(WireError::Head(format!(
            "unexpected interim status {status}"
        )));
    }
    let mut close = resp.version == Some(0);
    let mut event_stream = false;
    let mut session_id = None;
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::Head("conflicting Content-Length".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_token(h.value, "chunked");
        } else if name.eq_ignore_ascii_case("content-type") {
            event_stream = starts_with_ignore_case(h.value, b"text/event-stream");
        } else if name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, "close") {
                close = true;
            } else if contains_token(h.value, "keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("mcp-session-id") {
            session_id = std::str::from_utf8(h.value)
                .ok()
                .map(|s| s.trim().to_string());
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        head_len,
        framing,
        event_stream,
        session_id,
        close,
    }))
}

/// The request methods the upstream tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Get,
    Delete,
    Other,
}

/// The parts of a request head the upstream needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub path: String,
    pub head_len: usize,
    pub framing: Framing,
    pub session_id: Option<String>,
    pub close: bool,
}

/// Parses a request head; `Ok(None)` means more bytes are needed.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(WireError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Head(e.to_string())),
    };
    let method = match req.method {
        Some("POST") => Method::Post,
        Some("GET") => Method::Get,
        Some("DELETE") => Method::Delete,
        _ => Method::Other,
    };
    let path = req.path.unwrap_or("/").to_string();
    let mut close = req.version == Some(0);
    let mut session_id = None;
    let mut length = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::Head("conflicting Content-Length".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_token(h.value, "chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, "close") {
                close = true;
            } else if contains_token(h.value, "keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("mcp-session-id") {
            session_id = std::str::from_utf8(h.value)
                .ok()
                .map(|s| s.trim().to_string());
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        Framing::Length(length.unwrap_or(0))
    };
    Ok(Some(RequestHead {
        method,
        path,
        head_len,
        framing,
        session_id,
        close,
    }))
}

/// A whole body: where its bytes are, and how many bytes of the input it used.
#[derive(Debug)]
pub struct Body<'a> {
    pub bytes: &'a [u8],
    pub consumed: usize,
}

/// Finds the body that starts at `buf[0]`; `eof` says the peer has closed. Chunked bodies are
/// decoded into `scratch`. `Ok(None)` means more bytes are needed.
pub fn complete_body<'a>(
    framing: Framing,
    buf: &'a [u8],
    eof: bool,
    scratch: &'a mut Vec<u8>,
) -> Result<Option<Body<'a>>, WireError> {
    let found = match framing {
        Framing::Length(n) if n > MAX_BODY => return Err(WireError::TooLarge),
        Framing::Length(n) if buf.len() >= n => Some(Body {
            bytes: &buf[..n],
            consumed: n,
        }),
        Framing::Length(_) => None,
        Framing::UntilClose if buf.len() > MAX_BODY => return Err(WireError::TooLarge),
        Framing::UntilClose if eof => Some(Body {
            bytes: buf,
            consumed: buf.len(),
        }),
        Framing::UntilClose => None,
        Framing::Chunked => match dechunk(buf, scratch)? {
            Some(consumed) => {
                let decoded: &'a Vec<u8> = scratch;
                Some(Body {
                    bytes: decoded.as_slice(),
                    consumed,
                })
            }
            None => None,
        },
    };
    if found.is_none() && eof {
        return Err(WireError::Truncated);
    }
    Ok(found)
}

/// Decodes a whole chunked body into `out`; returns the bytes used, or `None` if incomplete.
fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, WireError> {
    out.clear();
    let mut pos = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(WireError::BadChunk),
        };
        pos += size_len;
        if size == 0 {
            // Trailers: header lines up to an empty line.
            loop {
                let rest = &buf[pos..];
                match memchr::memmem::find(rest, b"\r\n") {
                    Some(0) => return Ok(Some(pos + 2)),
                    Some(i) => pos += i + 2,
                    None => return Ok(None),
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| WireError::TooLarge)?;
        if size > MAX_BODY || out.len() + size > MAX_BODY {
            return Err(WireError::TooLarge);
        }
        if buf.len() - pos < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(WireError::BadChunk);
        }
        pos += size + 2;
    }
}

/// Appends a whole response (head and body) to `out`.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&str>,
    session_id: Option<&str>,
    body: &[u8],
    close: bool,
) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(ct) = content_type {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    if let Some(sid) = session_id {
        let _ = write!(out, "Mcp-Session-Id: {sid}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn parse_length(value: &[u8]) -> Result<usize, WireError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or_else(|| WireError::Head("bad Content-Length".into()))
}

fn contains_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn starts_with_ignore_case(value: &[u8], prefix: &[u8]) -> bool {
    let v = value.trim_ascii_start();
    v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `msg` in every split and checks that only the whole message completes.
    fn response_at_every_split(msg: &[u8]) -> (ResponseHead, Vec<u8>) {
        for cut in 0..msg.len() {
            let part = &msg[..cut];
            if let Some(head) = parse_response_head(part).unwrap() {
                let mut scratch = Vec::new();
                let body = complete_body(head.framing, &part[head.head_len..], false, &mut scratch);
                assert!(
                    body.unwrap().is_none(),
                    "complete at {cut} of {}",
                    msg.len()
                );
            }
        }
        let head = parse_response_head(msg).unwrap().unwrap();
        let mut scratch = Vec::new();
        let body = complete_body(head.framing, &msg[head.head_len..], false, &mut scratch)
            .unwrap()
            .unwrap();
        assert_eq!(head.head_len + body.consumed, msg.len());
        let bytes = body.bytes.to_vec();
        (head, bytes)
    }

    #[test]
    fn content_length_response() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: abc \r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        let (head, body) = response_at_every_split(msg);
        assert_eq!(head.status, 200);
        assert!(!head.event_stream && !head.close);
        assert_eq!(head.session_id.as_deref(), Some("abc"));
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn chunked_sse_response_with_extensions_and_trailers() {
        let msg = b"HTTP/1.1 200 OK\r\ncontent-type: Text/Event-Stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n\
5;ext=1\r\nevent\r\n9\r\n: message\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let (head, body) = response_at_every_split(msg);
        assert!(head.event_stream);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(body, b"event: message");
    }

    #[test]
    fn no_length_reads_until_close_and_202_is_empty() {
        let msg = b"HTTP/1.1 200 OK\r\n\r\nhello";
        let head = parse_response_head(msg).unwrap().unwrap();
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(head.close);
        let mut s = Vec::new();
        let rest = &msg[head.head_len..];
        assert!(complete_body(head.framing, rest, false, &mut s)
            .unwrap()
            .is_none());
        let body = complete_body(head.framing, rest, true, &mut s)
            .unwrap()
            .unwrap();
        assert_eq!(body.bytes, b"hello");
        let msg = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (head, body) = response_at_every_split(msg);
        assert_eq!(head.status, 202);
        assert!(head.close && body.is_empty());
    }

    #[test]
    fn broken_responses_are_errors() {
        assert!(parse_response_head(b"HTTQ/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 100 Continue\r\n\r\n").is_err());
        assert!(parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        )
        .is_err());
        let mut s = Vec::new();
        assert_eq!(
            complete_body(Framing::Chunked, b"zz\r\n", false, &mut s).unwrap_err(),
            WireError::BadChunk
        );
        assert_eq!(
            complete_body(Framing::Chunked, b"2\r\nabXX0\r\n\r\n", false, &mut s).unwrap_err(),
            WireError::BadChunk
        );
        assert_eq!(
            complete_body(Framing::Length(10), b"abc", true, &mut s).unwrap_err(),
            WireError::Truncated
        );
        let mut huge = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        huge.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_response_head(&huge).unwrap_err(), WireError::TooLarge);
    }

    #[test]
    fn request_heads() {
        let msg =
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nmcp-session-id: s1\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse_request_head(msg).unwrap().unwrap();
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.path, "/mcp");
        assert_eq!(head.framing, Framing::Length(2));
        assert_eq!(head.session_id.as_deref(), Some("s1"));
        assert!(!head.close);
        assert!(parse_request_head(b"POST /mcp HTTP/1.1\r\nHost")
            .unwrap()
            .is_none());
        let head = parse_request_head(b"DELETE / HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::Delete);
        assert!(head.close);
        assert_eq!(head.framing, Framing::Length(0));
    }

    #[test]
    fn written_responses_parse_back() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            Some("application/json"),
            Some("s-1"),
            b"{}",
            false,
        );
        write_response(&mut out, 202, None, None, b"", true);
        let head = parse_response_head(&out).unwrap().unwrap();
        assert_eq!(head.session_id.as_deref(), Some("s-1"));
        assert_eq!(head.framing, Framing::Length(2));
        let next = &out[head.head_len + 2..];
        let head = parse_response_head(next).unwrap().unwrap();
        assert_eq!(head.status, 202);
        assert!(head.close);
    }
}
