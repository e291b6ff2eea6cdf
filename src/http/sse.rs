//! Server-Sent Events: an incremental parser (upstream streams) and the event writer (front streams).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Incremental SSE parser: feed bytes, take whole events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    cur: Event,
    has_data: bool,
    /// The last `id` seen (the stream's resumption point), priming events included.
    pub last_id: Option<String>,
    /// The last `retry` (ms) the server asked for.
    pub retry_ms: Option<u64>,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held for an event not yet complete (what bounds a stream's largest message).
    pub fn pending(&self) -> usize {
        self.buf.len() + self.cur.data.len()
    }

    /// The next complete event, if the fed bytes hold one.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let nl = memchr::memchr(b'\n', &self.buf)?;
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                if self.has_data {
                    self.has_data = false;
                    let mut ev = std::mem::take(&mut self.cur);
                    if ev.data.ends_with('\n') {
                        ev.data.pop();
                    }
                    return Some(ev);
                }
                self.cur = Event::default();
                continue;
            }
            if line[0] == b':' {
                continue; // comment / keepalive
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "data" => {
                    self.cur.data.push_str(&value);
                    self.cur.data.push('\n');
                    self.has_data = true;
                }
                "event" => self.cur.event = Some(value),
                // Kept only if it can go back in a header (`Last-Event-ID`).
                "id" if value.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
                    self.last_id = Some(value.clone());
                    self.cur.id = Some(value);
                }
                "retry" => self.retry_ms = value.parse().ok().or(self.retry_ms),
                _ => {} // unknown fields
            }
        }
    }
}

/// Append one `message` event carrying `data` (a JSON text, which has no raw newlines) to `out`.
pub fn write_event(out: &mut Vec<u8>, id: Option<&str>, data: &[u8]) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_events() {
        let wire =
            b": prime\n\nid: 1\nevent: message\ndata: {\"a\":1}\n\ndata: x\r\ndata: y\r\n\r\n";
        let mut p = SseParser::default();
        let mut got = Vec::new();
        for b in wire.iter() {
            p.feed(&[*b]);
            while let Some(e) = p.next_event() {
                got.push(e);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id.as_deref(), Some("1"));
        assert_eq!(got[0].data, "{\"a\":1}");
        assert_eq!(got[1].data, "x\ny");
        assert_eq!(p.last_id.as_deref(), Some("1"));
    }

    #[test]
    fn priming_event_sets_the_resumption_point() {
        let mut p = SseParser::default();
        p.feed(b"id: a.1.0\nretry: 250\ndata: \n\n");
        assert_eq!(p.next_event().map(|e| e.data), Some(String::new()));
        assert_eq!(
            (p.last_id.as_deref(), p.retry_ms),
            (Some("a.1.0"), Some(250))
        );
    }

    #[test]
    fn writes_event() {
        let mut out = Vec::new();
        write_event(&mut out, Some("7"), b"{}");
        assert_eq!(out, b"id: 7\nevent: message\ndata: {}\n\n");
    }
}
