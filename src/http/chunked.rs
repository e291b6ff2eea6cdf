//! An incremental decoder for `Transfer-Encoding: chunked` bodies.
//!
//! `decode` consumes as much of the input as forms whole pieces, appends payload to `out`, and
//! reports how many input bytes it used; running out of input is not an error (mini-redis's
//! *incomplete*), a malformed size line is.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunk size line")]
    BadSize,
    #[error("chunked body over the size limit")]
    TooLarge,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    limit: usize,
    total: usize,
}

impl ChunkedDecoder {
    pub fn new(limit: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            limit,
            total: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from `input`; returns the number of input bytes consumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok(pos),
                State::Size => {
                    let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                        if input.len() - pos > 1024 {
                            return Err(ChunkError::BadSize);
                        }
                        return Ok(pos);
                    };
                    let line = &input[pos..pos + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| ChunkError::BadSize)?
                        .trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| ChunkError::BadSize)?;
                    pos += nl + 1;
                    self.total = self.total.saturating_add(size);
                    if self.total > self.limit {
                        return Err(ChunkError::TooLarge);
                    }
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    let avail = (input.len() - pos).min(left);
                    if avail == 0 {
                        return Ok(pos);
                    }
                    out.extend_from_slice(&input[pos..pos + avail]);
                    pos += avail;
                    self.state = if avail == left {
                        State::DataEnd
                    } else {
                        State::Data(left - avail)
                    };
                }
                State::DataEnd => {
                    let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                        return Ok(pos);
                    };
                    pos += nl + 1;
                    self.state = State::Size;
                }
                State::Trailer => {
                    // Trailer fields end with an empty line; we ignore their content.
                    let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                        return Ok(pos);
                    };
                    let line = &input[pos..pos + nl];
                    pos += nl + 1;
                    if line.is_empty() || line == b"\r" {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_in_pieces() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::new(100);
            let mut out = Vec::new();
            let mut buf = wire[..split].to_vec();
            let used = d.decode(&buf, &mut out).unwrap();
            buf.drain(..used);
            buf.extend_from_slice(&wire[split..]);
            let used = d.decode(&buf, &mut out).unwrap();
            assert!(d.is_done());
            assert_eq!(out, b"hello world");
            assert_eq!(&buf[used..], b"NEXT");
        }
    }

    #[test]
    fn limits_and_errors() {
        let mut d = ChunkedDecoder::new(4);
        assert_eq!(
            d.decode(b"5\r\nhello\r\n", &mut Vec::new()),
            Err(ChunkError::TooLarge)
        );
        let mut d = ChunkedDecoder::new(100);
        assert_eq!(
            d.decode(b"zz\r\n", &mut Vec::new()),
            Err(ChunkError::BadSize)
        );
    }
}
