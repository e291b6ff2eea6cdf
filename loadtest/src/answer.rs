//! What an answer means: JSON or SSE bodies read, the JSON-RPC response found, checked, classified.
//!
//! A Streamable HTTP server may answer a POST with `application/json` (one message) or with
//! `text/event-stream` (events whose `data` are JSON-RPC messages: notifications or requests may
//! come before the response). The response must carry the request's id, and when the arguments
//! carried `${seq}` the result must carry it back: a gateway that mixed up two callers' answers is
//! caught here, not averaged into a throughput figure.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// A non-2xx status without a JSON-RPC error.
    Http(u16),
    /// A non-2xx status with a JSON-RPC error code.
    HttpRpc(u16, i64),
    /// A JSON-RPC error in a 2xx answer.
    Rpc(i64),
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// The answer carried another request's id, or not the `${seq}` it was sent.
    Mismatch,
    /// Not a JSON-RPC response (or broken HTTP).
    Protocol,
    /// No answer within `--timeout`.
    Timeout,
    /// The connection could not be opened.
    Connect,
    /// The connection broke mid-request.
    Io,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Http(s) => write!(f, "http_{s}"),
            ErrorKind::HttpRpc(s, c) => write!(f, "http_{s}/jsonrpc_{c}"),
            ErrorKind::Rpc(c) => write!(f, "jsonrpc_{c}"),
            ErrorKind::ToolError => f.write_str("tool_error"),
            ErrorKind::Mismatch => f.write_str("mismatch"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Io => f.write_str("io"),
        }
    }
}

/// What the client checks about an answer.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The request's id.
    pub id: u64,
    /// The result must contain `id` as a number (the arguments carried `${seq}`).
    pub echo_seq: bool,
    /// A `tools/call`: `isError: true` is an error.
    pub tool_call: bool,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
}

#[derive(Deserialize)]
struct ToolResult {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

/// Classifies an answer: `Ok(())` for a well-formed success.
pub fn classify(
    status: u16,
    event_stream: bool,
    body: &[u8],
    expect: Expect,
) -> Result<(), ErrorKind> {
    let success = (200..300).contains(&status);
    let found = if event_stream {
        find_in_events(body, expect)
    } else {
        serde_json::from_slice::<Envelope<'_>>(body)
            .ok()
            .filter(|e| e.method.is_none())
            .map(|e| check_envelope(&e, expect))
    };
    match found {
        Some(Err(ErrorKind::Rpc(code))) if !success => Err(ErrorKind::HttpRpc(status, code)),
        _ if !success => Err(ErrorKind::Http(status)),
        Some(result) => result,
        None => Err(ErrorKind::Protocol),
    }
}

/// The verdict on the response in an event stream (messages that are not responses are skipped).
fn find_in_events(body: &[u8], expect: Expect) -> Option<Result<(), ErrorKind>> {
    for data in sse_messages(body) {
        let Ok(e) = serde_json::from_slice::<Envelope<'_>>(&data) else {
            continue;
        };
        if e.method.is_some() || (e.result.is_none() && e.error.is_none()) {
            continue;
        }
        return Some(check_envelope(&e, expect));
    }
    None
}

fn check_envelope(e: &Envelope<'_>, expect: Expect) -> Result<(), ErrorKind> {
    let id_matches =
        e.id.and_then(|raw| raw.get().trim().parse::<u64>().ok())
            .is_some_and(|id| id == expect.id);
    if let Some(err) = &e.error {
        // An error may carry a null id (a parse error); its code is what matters.
        return Err(ErrorKind::Rpc(err.code));
    }
    let Some(result) = e.result else {
        return Err(ErrorKind::Protocol);
    };
    if !id_matches {
        return Err(ErrorKind::Mismatch);
    }
    if expect.echo_seq && !contains_number(result.get().as_bytes(), expect.id) {
        return Err(ErrorKind::Mismatch);
    }
    if expect.tool_call {
        match serde_json::from_str::<ToolResult>(result.get()) {
            Ok(ToolResult {
                is_error: Some(true),
            }) => return Err(ErrorKind::ToolError),
            Ok(_) => {}
            Err(_) => return Err(ErrorKind::Protocol),
        }
    }
    Ok(())
}

/// Whether `n` appears in `text` as a whole number (not part of a longer run of digits).
fn contains_number(text: &[u8], n: u64) -> bool {
    let needle = n.to_string();
    memchr::memmem::find_iter(text, needle.as_bytes()).any(|i| {
        let before = i.checked_sub(1).map(|j| text[j]);
        let after = text.get(i + needle.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit()) && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

/// The `data` of each `message` event of an SSE body, in order.
pub fn sse_messages(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut out = Vec::new();
    let mut data: Option<Cow<'_, [u8]>> = None;
    let mut event_is_message = true;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let at_end = lines.peek().is_none();
        if line.is_empty() {
            if let Some(d) = data.take() {
                if event_is_message {
                    out.push(d);
                }
            }
            event_is_message = true;
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                data = Some(match data.take() {
                    None => Cow::Borrowed(value),
                    Some(prev) => {
                        let mut joined = prev.into_owned();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Cow::Owned(joined)
                    }
                });
            }
            b"event" => event_is_message = value == b"message",
            _ => {}
        }
        if at_end {
            // A stream cut before its blank line: keep the last event (lenient).
            if let Some(d) = data.take() {
                if event_is_message {
                    out.push(d);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Expect = Expect {
        id: 42,
        echo_seq: false,
        tool_call: true,
    };

    #[test]
    fn json_success_and_errors() {
        let ok = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hi"}]}}"#;
        assert_eq!(classify(200, false, ok, CALL), Ok(()));
        let tool_err = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[],"isError":true}}"#;
        assert_eq!(
            classify(200, false, tool_err, CALL),
            Err(ErrorKind::ToolError)
        );
        let rpc = br#"{"jsonrpc":"2.0","id":42,"error":{"code":-32602,"message":"unknown tool"}}"#;
        assert_eq!(classify(200, false, rpc, CALL), Err(ErrorKind::Rpc(-32602)));
        let gw = br#"{"jsonrpc":"2.0","id":42,"error":{"code":-31050,"message":"upstream down"}}"#;
        assert_eq!(
            classify(502, false, gw, CALL),
            Err(ErrorKind::HttpRpc(502, -31050))
        );
        assert_eq!(
            classify(503, false, b"busy", CALL),
            Err(ErrorKind::Http(503))
        );
        assert_eq!(
            classify(200, false, b"not json", CALL),
            Err(ErrorKind::Protocol)
        );
        assert_eq!(classify(200, false, b"", CALL), Err(ErrorKind::Protocol));
        let no_result = br#"{"jsonrpc":"2.0","id":42}"#;
        assert_eq!(
            classify(200, false, no_result, CALL),
            Err(ErrorKind::Protocol)
        );
    }

    #[test]
    fn wrong_ids_and_missing_echoes_are_mismatches() {
        let other = br#"{"jsonrpc":"2.0","id":41,"result":{"content":[]}}"#;
        assert_eq!(classify(200, false, other, CALL), Err(ErrorKind::Mismatch));
        let echo = Expect {
            id: 42,
            echo_seq: true,
            tool_call: true,
        };
        let good = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello 42"}]}}"#;
        assert_eq!(classify(200, false, good, echo), Ok(()));
        // Someone else's answer with our id spliced in: the echoed number gives it away.
        let swapped = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello 421"}]}}"#;
        assert_eq!(
            classify(200, false, swapped, echo),
            Err(ErrorKind::Mismatch)
        );
    }

    #[test]
    fn event_stream_answers() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
id: 7\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\r\ndata: \"result\":{\"content\":[]}}\r\n\r\n";
        assert_eq!(classify(200, true, body, CALL), Ok(()));
        let err = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\"error\":{\"code\":-32601,\"message\":\"x\"}}\n\n";
        assert_eq!(classify(200, true, err, CALL), Err(ErrorKind::Rpc(-32601)));
        // Only notifications, or nothing: no response.
        let none =
            b": keep-alive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n";
        assert_eq!(classify(200, true, none, CALL), Err(ErrorKind::Protocol));
        assert_eq!(classify(200, true, b"", CALL), Err(ErrorKind::Protocol));
        // A response with another id.
        let other = b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        assert_eq!(classify(200, true, other, CALL), Err(ErrorKind::Mismatch));
    }

    #[test]
    fn sse_parsing_follows_the_spec() {
        let body =
            b"data: a\n\nevent: ping\ndata: skipped\n\n:comment\ndata:b\ndata:  c\n\ndata: last";
        let msgs = sse_messages(body);
        let msgs: Vec<&[u8]> = msgs.iter().map(|c| c.as_ref()).collect();
        assert_eq!(msgs, [&b"a"[..], b"b\n c", b"last"]);
        assert!(sse_messages(b"\n\n\n").is_empty());
    }

    #[test]
    fn error_kind_names() {
        assert_eq!(ErrorKind::Http(502).to_string(), "http_502");
        assert_eq!(
            ErrorKind::HttpRpc(404, -32601).to_string(),
            "http_404/jsonrpc_-32601"
        );
        assert_eq!(ErrorKind::Rpc(-32602).to_string(), "jsonrpc_-32602");
        assert_eq!(ErrorKind::Timeout.to_string(), "timeout");
    }
}
