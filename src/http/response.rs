//! An upstream's HTTP/1.1 response as the clients read it: the head (httparse) and the framing of the
//! body that follows (Content-Length, chunked, or until the connection closes). Shared by the async
//! client (shards) and the blocking one (plain threads), which differ only in how bytes arrive.

use super::chunked::ChunkedDecoder;
use super::client::ClientError;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 << 10;

/// What a response head says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub session_id: Option<String>,
    pub content_type: Option<String>,
    /// Where the body ends.
    pub framing: Framing,
    /// The server closes the connection after this response (HTTP/1.0 or `Connection: close`).
    pub close: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// Neither: the body ends when the connection closes.
    #[default]
    UntilClose,
}

/// Parse a response head at the start of `buf`: its length and what it says, or `None` while it is
/// incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, ClientError> {
    // Uninitialized: filling 64 empty headers first was a 2 KB memset per response.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => {
            let mut head = Head {
                status: resp.code.unwrap_or(0),
                close: resp.version == Some(0),
                ..Head::default()
            };
            let mut chunked = false;
            for h in resp.headers.iter() {
                // Only the values read are made text (and owned only when kept).
                let v = || super::header_text(h.value);
                if h.name.eq_ignore_ascii_case("content-length") {
                    let len = v()
                        .parse::<usize>()
                        .map_err(|_| ClientError::Malformed("bad Content-Length"))?;
                    head.framing = Framing::Length(len);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v().to_ascii_lowercase().contains("chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    head.close |= v().eq_ignore_ascii_case("close");
                } else if h.name.eq_ignore_ascii_case("content-type") {
                    head.content_type = Some(v().into_owned());
                } else if h.name.eq_ignore_ascii_case("mcp-session-id") {
                    head.session_id = Some(v().into_owned());
                }
            }
            if chunked {
                // Chunked wins over a Content-Length (RFC 9112, 6.3).
                head.framing = Framing::Chunked;
            }
            Ok(Some((n, head)))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            Err(ClientError::Malformed("response head too large"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(ClientError::Malformed("bad response head")),
    }
}

/// Takes a body out of the bytes read after its head, whatever its framing.
#[derive(Debug)]
pub struct BodyDecoder {
    chunked: Option<ChunkedDecoder>,
    /// Content-Length bytes still to come.
    left: Option<usize>,
}

impl BodyDecoder {
    /// A decoder for the body `head` announces, refusing one over `limit` bytes where that is known
    /// up front (a body that ends at close is bounded by the caller).
    pub fn new(head: &Head, limit: usize) -> Result<BodyDecoder, ClientError> {
        let (chunked, left) = match head.framing {
            Framing::Chunked => (Some(ChunkedDecoder::new(limit)), None),
            Framing::Length(len) if len > limit => return Err(ClientError::TooLarge),
            Framing::Length(len) => (None, Some(len)),
            Framing::UntilClose => (None, None),
        };
        Ok(BodyDecoder { chunked, left })
    }

    /// The body ends only when the connection closes.
    pub fn ends_at_close(&self) -> bool {
        self.chunked.is_none() && self.left.is_none()
    }

    /// Move what `buf` holds of the body onto `out` (leaving any bytes after it in `buf`); true
    /// once the whole body has been taken.
    pub fn take(&mut self, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<bool, ClientError> {
        if let Some(d) = &mut self.chunked {
            let used = d.decode(buf, out).map_err(|e| match e {
                super::chunked::ChunkError::TooLarge => ClientError::TooLarge,
                super::chunked::ChunkError::BadSize => ClientError::Malformed("bad chunked body"),
            })?;
            buf.drain(..used);
            return Ok(d.is_done());
        }
        match &mut self.left {
            Some(left) => {
                let n = (*left).min(buf.len());
                out.extend(buf.drain(..n));
                *left -= n;
                Ok(*left == 0)
            }
            None => {
                out.append(buf);
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_framings() {
        let wire = b"HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\nContent-Type: text/plain\r\n\r\nAcceptedNEXT";
        assert!(parse_head(&wire[..20]).unwrap().is_none());
        let (n, head) = parse_head(wire).unwrap().unwrap();
        let want = Head {
            status: 202,
            session_id: None,
            content_type: Some("text/plain".into()),
            framing: Framing::Length(8),
            close: false,
        };
        assert_eq!(head, want);
        let mut d = BodyDecoder::new(&head, 100).unwrap();
        let mut buf = wire[n..].to_vec();
        let mut out = Vec::new();
        assert!(d.take(&mut buf, &mut out).unwrap());
        assert_eq!(
            (out.as_slice(), buf.as_slice()),
            (&b"Accepted"[..], &b"NEXT"[..])
        );
        assert!(matches!(
            BodyDecoder::new(&head, 4),
            Err(ClientError::TooLarge)
        ));

        let (_, head) = parse_head(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.framing == Framing::Chunked && head.close);
        let mut d = BodyDecoder::new(&head, 100).unwrap();
        let (mut buf, mut out) = (b"3\r\nabc\r\n".to_vec(), Vec::new());
        assert!(!d.take(&mut buf, &mut out).unwrap());
        assert_eq!(out, b"abc");

        let (_, head) = parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        let d = BodyDecoder::new(&head, 100).unwrap();
        assert!(d.ends_at_close());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
