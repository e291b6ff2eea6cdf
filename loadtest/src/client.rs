//! One keep-alive HTTP/1.1 client connection: write a request, read exactly one whole response.
//!
//! A request is written with one `write_all` and no pipelining. The response is read into a buffer
//! the connection keeps (no allocation per request once it has grown). A connection the server
//! closed while idle (a keep-alive race) is reopened and the request re-sent once, as browsers do —
//! only when not one byte of an answer had arrived; such reconnects are counted.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{self, Framing, WireError};

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    Connect(io::Error),
    Io(io::Error),
    Wire(WireError),
}

/// A whole response.
#[derive(Debug)]
pub struct Reply<'a> {
    pub status: u16,
    pub event_stream: bool,
    pub session_id: Option<String>,
    pub body: &'a [u8],
}

/// A client connection to one address, opened on first use and after any failure.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// Times a fresh connection had to be opened after the first.
    pub reconnects: u64,
    opened: bool,
}

enum BodyAt {
    Buf(usize, usize),
    Scratch,
}

/// A response found in the buffers, before it is lent out as a [`Reply`].
struct Got {
    status: u16,
    event_stream: bool,
    session_id: Option<String>,
    at: BodyAt,
    close: bool,
}

impl Conn {
    /// A connection to `addr` (not yet open).
    pub fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            scratch: Vec::new(),
            reconnects: 0,
            opened: false,
        }
    }

    /// Opens the connection now if it is not open.
    pub async fn ensure_open(&mut self) -> Result<(), ExchangeError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(ExchangeError::Connect)?;
            stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
            if self.opened {
                self.reconnects += 1;
            }
            self.opened = true;
            self.stream = Some(stream);
        }
        Ok(())
    }

    /// Drops the connection (after a timeout or an error: its state is unknown).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Sends `request` and reads its response.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Reply<'_>, ExchangeError> {
        let reused = self.stream.is_some();
        let first = self.try_exchange(request).await;
        let got = match first {
            Err(Retry::Stale) if reused => {
                self.reset();
                match self.try_exchange(request).await {
                    Ok(v) => v,
                    Err(Retry::Stale) => {
                        self.reset();
                        return Err(ExchangeError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                    Err(Retry::Fail(e)) => {
                        self.reset();
                        return Err(e);
                    }
                }
            }
            Ok(v) => v,
            Err(Retry::Stale) => {
                self.reset();
                return Err(ExchangeError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Err(Retry::Fail(e)) => {
                self.reset();
                return Err(e);
            }
        };
        if got.close {
            self.stream = None;
        }
        let body = match got.at {
            BodyAt::Buf(from, to) => &self.buf[from..to],
            BodyAt::Scratch => &self.scratch[..],
        };
        Ok(Reply {
            status: got.status,
            event_stream: got.event_stream,
            session_id: got.session_id,
            body,
        })
    }

    async fn try_exchange(&mut self, request: &[u8]) -> Result<Got, Retry> {
        self.ensure_open().await.map_err(Retry::Fail)?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Retry::Fail(ExchangeError::Io(
                io::ErrorKind::NotConnected.into(),
            )));
        };
        self.buf.clear();
        if let Err(e) = stream.write_all(request).await {
            return Err(stale_or(e));
        }
        let mut head: Option<wire::ResponseHead> = None;
        let mut eof = false;
        loop {
            if head.is_none() {
                head = wire::parse_response_head(&self.buf)
                    .map_err(|e| Retry::Fail(ExchangeError::Wire(e)))?;
            }
            if let Some(h) = &head {
                let rest = &self.buf[h.head_len..];
                let found = wire::complete_body(h.framing, rest, eof, &mut self.scratch)
                    .map_err(|e| Retry::Fail(ExchangeError::Wire(e)))?
                    .map(|b| (b.consumed, b.bytes.len()));
                if let Some((consumed, len)) = found {
                    let at = match h.framing {
                        Framing::Chunked => BodyAt::Scratch,
                        _ => BodyAt::Buf(h.head_len, h.head_len + len),
                    };
                    // Bytes past the response were never asked for: do not reuse the connection.
                    let extra = self.buf.len() > h.head_len + consumed;
                    return Ok(Got {
                        status: h.status,
                        event_stream: h.event_stream,
                        session_id: h.session_id.clone(),
                        at,
                        close: h.close || extra,
                    });
                }
            } else if eof {
                return Err(if self.buf.is_empty() {
                    Retry::Stale
                } else {
                    Retry::Fail(ExchangeError::Wire(WireError::Truncated))
                });
            }
            if eof {
                return Err(Retry::Fail(ExchangeError::Wire(WireError::Truncated)));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.len().max(16 * 1024));
            }
            match stream.read_buf(&mut self.buf).await {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if self.buf.is_empty() => return Err(stale_or(e)),
                Err(e) => return Err(Retry::Fail(ExchangeError::Io(e))),
            }
        }
    }
}

enum Retry {
    /// Nothing came back on a connection that may have been closed while idle.
    Stale,
    Fail(ExchangeError),
}

fn stale_or(e: io::Error) -> Retry {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => Retry::Stale,
        _ => Retry::Fail(ExchangeError::Io(e)),
    }
}
