//! A blocking HTTP/1.1 client for plain threads: the legacy (2024-11-05) SSE transport, whose GET
//! stream is read like a stdio child's stdout and whose messages are POSTed one at a time over a
//! kept-alive connection. Shards never call it: a thread blocked here blocks no event loop.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::client::{request_bytes, ClientError, Url};
use super::has_media_type;
use super::response::{parse_head, BodyDecoder, Head};
use super::sse::{Event, SseParser};

/// Largest answer body read from a POST (a legacy server's answers are a word, "Accepted").
const MAX_POST_ANSWER: usize = 1 << 20;

/// Connect to `url`'s host, every socket operation then bounded by `timeout`.
fn connect(url: &Url, timeout: Duration) -> Result<TcpStream, ClientError> {
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(ClientError::Connect)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(ClientError::Connect(last))
}

/// Configured headers as `request_bytes` takes them.
fn pairs(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Read more bytes onto `buf`: how many (0 at the end of the stream).
fn read_some(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, ClientError> {
    let len = buf.len();
    buf.resize(len + (16 << 10), 0);
    let res = sock.read(&mut buf[len..]);
    buf.truncate(len + *res.as_ref().unwrap_or(&0));
    match res {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(ClientError::Timeout)
        }
        Err(e) => Err(ClientError::Io(e)),
    }
}

/// Read until `buf` starts with a whole response head (not `100 Continue`); the bytes after it stay.
fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Head, ClientError> {
    loop {
        if let Some((n, head)) = parse_head(buf)? {
            buf.drain(..n);
            if head.status == 100 {
                continue;
            }
            return Ok(head);
        }
        if read_some(sock, buf)? == 0 {
            return Err(ClientError::Closed);
        }
    }
}

/// TCP keepalive on a long-lived stream: probes after 30 s of silence, every 10 s, 3 unanswered
/// mean the peer is gone. A server that vanished without closing (a reboot, a NAT that forgot the
/// connection) would otherwise leave the reader waiting forever; the probes also keep NAT entries
/// fresh on a quiet stream.
fn keep_alive(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    for (level, name, value) in [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
    ] {
        let value: libc::c_int = value;
        // Safety: setsockopt on a socket we own, with a pointer to a c_int that outlives the call
        // and its exact size; a failure only leaves the kernel's defaults.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::debug!(
                "setsockopt({name}) on an event stream: {}",
                io::Error::last_os_error()
            );
        }
    }
}

/// A GET answered with `text/event-stream`, read event by event.
pub struct EventStream {
    sock: TcpStream,
    buf: Vec<u8>,
    body: BodyDecoder,
    data: Vec<u8>,
    parser: SseParser,
    done: bool,
    max_event: usize,
}

impl EventStream {
    /// Open the stream; connecting and the answer's head must each come within `timeout` (the
    /// socket keeps that read timeout until the caller changes it).
    pub fn open(
        url: &Url,
        headers: &[(String, String)],
        timeout: Duration,
        max_event: usize,
    ) -> Result<EventStream, ClientError> {
        let want = [
            ("Accept", "text/event-stream"),
            ("Cache-Control", "no-cache"),
        ];
        let req = request_bytes("GET", url, want.into_iter().chain(pairs(headers)), None);
        Self::start(url, &req, timeout, max_event)
    }

    /// POST `body` and read the answer as an event stream (a 2026-07-28 `subscriptions/listen`);
    /// an answer that is not `text/event-stream` (a JSON-RPC error, say) is `Malformed`.
    pub fn post(
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
        max_event: usize,
    ) -> Result<EventStream, ClientError> {
        let want = [("Accept", "application/json, text/event-stream")];
        let req = request_bytes(
            "POST",
            url,
            want.into_iter().chain(pairs(headers)),
            Some(body),
        );
        Self::start(url, &req, timeout, max_event)
    }

    fn start(
        url: &Url,
        req: &[u8],
        timeout: Duration,
        max_event: usize,
    ) -> Result<EventStream, ClientError> {
        let mut sock = connect(url, timeout)?;
        keep_alive(&sock);
        sock.write_all(req)?;
        let mut buf = Vec::with_capacity(16 << 10);
        let head = read_head(&mut sock, &mut buf)?;
        if head.status != 200 {
            return Err(ClientError::Status(head.status));
        }
        if !head
            .content_type
            .as_deref()
            .is_some_and(|ct| has_media_type(ct, "text/event-stream"))
        {
            return Err(ClientError::Malformed(
                "the answer is not text/event-stream",
            ));
        }
        Ok(EventStream {
            body: BodyDecoder::new(&head, usize::MAX)?,
            sock,
            buf,
            data: Vec::new(),
            parser: SseParser::default(),
            done: false,
            max_event,
        })
    }

    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// The next event; `None` once the server ended the stream.
    pub fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if !self.done {
                self.done = self.body.take(&mut self.buf, &mut self.data)?;
                self.parser.feed(&self.data);
                self.data.clear();
            }
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(ev));
            }
            if self.parser.pending() > self.max_event {
                return Err(ClientError::TooLarge);
            }
            if self.done || read_some(&mut self.sock, &mut self.buf)? == 0 {
                return Ok(None);
            }
        }
    }
}

/// POSTs to one URL over a kept-alive connection, one at a time.
pub struct Poster {
    url: Url,
    headers: Vec<(String, String)>,
    timeout: Duration,
    conn: Option<TcpStream>,
}

impl Poster {
    pub fn new(url: Url, headers: Vec<(String, String)>, timeout: Duration) -> Poster {
        Poster {
            url,
            headers,
            timeout,
            conn: None,
        }
    }

    /// POST one JSON body: the answer's status and the start of its body (for error messages). A
    /// kept-alive connection the server closed meanwhile is retried once on a new one.
    pub fn post(&mut self, body: &[u8]) -> Result<(u16, String), ClientError> {
        let req = request_bytes("POST", &self.url, pairs(&self.headers), Some(body));
        for attempt in 0..2 {
            let (mut sock, reused) = match self.conn.take() {
                Some(s) => (s, true),
                None => (connect(&self.url, self.timeout)?, false),
            };
            match exchange(&mut sock, &req) {
                Ok((status, text, reusable)) => {
                    if reusable {
                        self.conn = Some(sock);
                    }
                    return Ok((status, text));
                }
                Err(ClientError::Closed | ClientError::Io(_)) if reused && attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Closed)
    }
}

/// Write one request and read its answer: status, the start of the body, whether the connection
/// can carry another request.
fn exchange(sock: &mut TcpStream, req: &[u8]) -> Result<(u16, String, bool), ClientError> {
    sock.write_all(req)?;
    let mut buf = Vec::with_capacity(1024);
    let head = read_head(sock, &mut buf)?;
    let mut body = Vec::new();
    let mut reusable = !head.close;
    if head.status != 204 && head.status != 304 {
        let mut dec = BodyDecoder::new(&head, MAX_POST_ANSWER)?;
        while !dec.take(&mut buf, &mut body)? {
            if body.len() > MAX_POST_ANSWER {
                return Err(ClientError::TooLarge);
            }
            if read_some(sock, &mut buf)? == 0 {
                if dec.ends_at_close() {
                    reusable = false;
                    break;
                }
                return Err(ClientError::Closed);
            }
        }
    }
    body.truncate(200);
    Ok((
        head.status,
        String::from_utf8_lossy(&body).into_owned(),
        reusable && buf.is_empty(),
    ))
}
