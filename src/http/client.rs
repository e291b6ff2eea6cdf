//! The upstream HTTP/1.1 client: one JSON-RPC POST over a kept-alive connection, answered either as
//! `application/json` or as an SSE stream that is read until the response with our id arrives.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::chunked::ChunkedDecoder;
use super::has_media_type;
use super::io::read_more;
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
}

/// What one POST brought back.
#[derive(Debug, Default)]
pub struct PostOutcome {
    pub status: u16,
    pub session_id: Option<String>,
    pub content_type: Option<String>,
    /// JSON-RPC messages received, in order: a JSON body is one message; an SSE stream gives every
    /// message up to and including the response whose id we waited for.
    pub messages: Vec<Bytes>,
    /// A non-JSON-RPC body (error pages), kept for the error message.
    pub other_body: Vec<u8>,
    /// The connection can carry another request.
    pub reusable: bool,
}

pub async fn connect(url: &Url) -> Result<TcpStream, ClientError> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ClientError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
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
    use std::io::Write;
    let mut req = Vec::with_capacity(256 + body.len());
    let _ = write!(req, "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n", url.path, url.authority, body.len());
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
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
    use std::io::Write;
    let mut req = Vec::with_capacity(256);
    let _ = write!(
        req,
        "{method} {} HTTP/1.1\r\nHost: {}\r\n",
        url.path, url.authority
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.extend_from_slice(b"\r\n");
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
    let (head_len, content_length, chunked, mut close) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                out.status = resp.code.unwrap_or(0);
                let mut cl = None;
                let mut chunked = false;
                let mut close = resp.version == Some(0);
                for h in resp.headers.iter() {
                    let v = String::from_utf8_lossy(h.value).trim().to_owned();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        cl = Some(
                            v.parse::<usize>()
                                .map_err(|_| ClientError::Malformed("bad Content-Length"))?,
                        );
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = v.to_ascii_lowercase().contains("chunked");
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close |= v.eq_ignore_ascii_case("close");
                    } else if h.name.eq_ignore_ascii_case("content-type") {
                        out.content_type = Some(v);
                    } else if h.name.eq_ignore_ascii_case("mcp-session-id") {
                        out.session_id = Some(v);
                    }
                }
                if out.status == 100 {
                    buf.drain(..n);
                    continue;
                }
                break (n, cl, chunked, close);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > 64 << 10 {
                    return Err(ClientError::Malformed("response head too large"));
                }
            }
            Err(_) => return Err(ClientError::Malformed("bad response head")),
        }
        let (n, b) = read_more_by(conn, buf, deadline).await?;
        buf = b;
        if n == 0 {
            return Err(ClientError::Closed);
        }
    };
    buf.drain(..head_len);
    if no_body || out.status == 204 || out.status == 304 {
        out.reusable = !close;
        return Ok(out);
    }
    let sse = out
        .content_type
        .as_deref()
        .is_some_and(|ct| has_media_type(ct, "text/event-stream"));
    let json = out
        .content_type
        .as_deref()
        .is_some_and(|ct| has_media_type(ct, "application/json"));
    let mut body = Vec::new();
    let mut dec = chunked.then(|| ChunkedDecoder::new(max_body));
    let mut parser = SseParser::default();
    let mut fed = 0usize;
    let mut got_ours = false;
    let mut linger: Option<Instant> = None;
    loop {
        // Move what arrived into `body`.
        let done = match (&mut dec, content_length) {
            (Some(d), _) => {
                let used = d
                    .decode(&buf, &mut body)
                    .map_err(|_| ClientError::Malformed("bad chunked body"))?;
                buf.drain(..used);
                d.is_done()
            }
            (None, Some(len)) => {
                if len > max_body {
                    return Err(ClientError::TooLarge);
                }
                let take = (len - body.len()).min(buf.len());
                body.extend(buf.drain(..take));
                body.len() == len
            }
            (None, None) => {
                body.append(&mut buf);
                false
            }
        };
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
            if content_length.is_none() && dec.is_none() {
                close = true;
                break; // body delimited by close
            }
            return Err(ClientError::Closed);
        }
    }
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
        assert!(Url::parse("http://h:x/").is_err());
    }
}
