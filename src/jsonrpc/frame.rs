//! The frame: a zero-copy view of one JSON-RPC message.
//!
//! One validating walk of the whole message (`scan`) records the spans of the members the gateway
//! reads: the top level, `params`, `params._meta` and `result`. Everything else stays as byte spans
//! of the original buffer so it can be forwarded untouched. Messages the walk does not take (every
//! error, escaped member names, duplicates, deep nesting) go through sonic-rs's lazy object iterator
//! instead, which gives them their exact answers. `benches/frame_parse.rs` compares the parsers.

use std::borrow::Cow;

use bytes::Bytes;
use sonic_rs::JsonValueTrait;

mod scan;

/// A half-open byte range `[start, end)` into the frame's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn of(outer: &[u8], inner: &[u8]) -> Span {
        // Both slices come from the same allocation: the lazy values borrow from the input.
        let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
        Span {
            start: start as u32,
            end: (start + inner.len()) as u32,
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The four JSON-RPC message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    ErrorResponse,
}

/// Why a body is not a frame: not JSON at all (-32700), or JSON that is not a JSON-RPC message (-32600).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

/// One parsed JSON-RPC message over its own buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    buf: Bytes,
    pub kind: Kind,
    id: Option<Span>,
    method: Option<Span>,
    params: Option<Span>,
    result: Option<Span>,
    error: Option<Span>,
    name: Option<Span>,
    uri: Option<Span>,
    meta: Option<Span>,
    arguments: Option<Span>,
    /// The members the gateway reads on every request or reply, found in the same walk so that no
    /// later lookup walks the frame again (see `Picked`).
    picked: Picked,
}

/// Spans of members below the top level: of `params` (`requestState`, `inputResponses`), of
/// `params._meta` (`progressToken`, the 2026-07-28 version, capabilities and log level) and of a
/// response's `result` (`resultType`, `requestState`, `ttlMs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Picked {
    request_state: Option<Span>,
    input_responses: Option<Span>,
    progress_token: Option<Span>,
    meta_version: Option<Span>,
    meta_caps: Option<Span>,
    log_level: Option<Span>,
    result_type: Option<Span>,
    result_state: Option<Span>,
    result_ttl: Option<Span>,
}

impl Frame {
    /// Parse one JSON-RPC message. Batches (arrays) are refused as invalid: no revision the gateway
    /// serves after 2025-03-26 allows them, and the gateway does not offer them to 2025-03-26 clients.
    pub fn parse(buf: Bytes) -> Result<Frame, FrameError> {
        match scan::frame(buf) {
            Ok(f) => Ok(f),
            Err(buf) => Frame::parse_sonic(buf),
        }
    }

    /// A frame over `buf` with no member found yet.
    fn empty(buf: Bytes) -> Frame {
        Frame {
            buf,
            kind: Kind::Request,
            id: None,
            method: None,
            params: None,
            result: None,
            error: None,
            name: None,
            uri: None,
            meta: None,
            arguments: None,
            picked: Picked::default(),
        }
    }

    /// The checks after the top level of `buf` was walked: the version, the id's type and the kind.
    fn classify(&mut self, buf: &[u8], version_ok: bool) -> Result<(), FrameError> {
        if !version_ok {
            return Err(FrameError::Invalid("jsonrpc must be \"2.0\""));
        }
        if let Some(id) = self.id {
            match buf[id.start as usize] {
                b'"' | b'-' | b'0'..=b'9' => {}
                b'n' if self.method.is_none() => {} // error responses to unparseable requests carry null
                _ => return Err(FrameError::Invalid("id must be a string or a number")),
            }
        }
        self.kind = match (
            self.method.is_some(),
            self.id.is_some(),
            self.result.is_some(),
            self.error.is_some(),
        ) {
            (true, true, false, false) => Kind::Request,
            (true, false, false, false) => Kind::Notification,
            (false, true, true, false) => Kind::Response,
            (false, true, false, true) => Kind::ErrorResponse,
            _ => {
                return Err(FrameError::Invalid(
                    "not a JSON-RPC request, notification or response",
                ))
            }
        };
        Ok(())
    }

    /// The sonic-rs walk: the top level with validation, then `params`, `params._meta` and
    /// `result` again. Gives every malformed or unusual message its answer.
    fn parse_sonic(buf: Bytes) -> Result<Frame, FrameError> {
        let first = buf.iter().find(|b| !b.is_ascii_whitespace()).copied();
        match first {
            Some(b'{') => {}
            Some(b'[') => {
                // Still tell malformed JSON from a batch.
                sonic_rs::from_slice::<sonic_rs::Value>(&buf)
                    .map_err(|e| FrameError::Parse(e.to_string()))?;
                return Err(FrameError::Invalid("batches are not supported"));
            }
            None => return Err(FrameError::Parse("empty body".into())),
            _ => {
                sonic_rs::from_slice::<sonic_rs::Value>(&buf)
                    .map_err(|e| FrameError::Parse(e.to_string()))?;
                return Err(FrameError::Invalid("a JSON-RPC message is a JSON object"));
            }
        }
        let mut f = Frame::empty(Bytes::new());
        let mut version_ok = false;
        let mut last_end = 0usize;
        let mut seen = 0u8;
        let mut params_value = None;
        let mut result_value = None;
        for entry in sonic_rs::to_object_iter(buf.as_ref()) {
            let (key, value) = entry.map_err(|e| FrameError::Parse(e.to_string()))?;
            let raw = value.as_raw_str().as_bytes();
            let span = Span::of(&buf, raw);
            last_end = span.end as usize;
            let bit = match key.as_ref() {
                "jsonrpc" => {
                    version_ok = value.as_str() == Some("2.0");
                    1
                }
                "id" => {
                    f.id = Some(span);
                    2
                }
                "method" => {
                    if !value.is_str() {
                        return Err(FrameError::Invalid("method must be a string"));
                    }
                    f.method = Some(span);
                    4
                }
                "params" => {
                    f.params = Some(span);
                    params_value = Some(value);
                    8
                }
                "result" => {
                    f.result = Some(span);
                    result_value = Some(value);
                    16
                }
                "error" => {
                    f.error = Some(span);
                    32
                }
                _ => 0,
            };
            // Parsers disagree on duplicate keys (first or last wins); refusing them means the
            // gateway never routes on a value the upstream reads differently.
            if seen & bit != 0 {
                return Err(FrameError::Invalid("duplicate member"));
            }
            seen |= bit;
        }
        check_trailer(&buf, last_end)?;
        f.classify(&buf, version_ok)?;
        if let Some(p) = params_value {
            // Already validated by the first pass: iterate without validating again.
            let Some(members) = p.into_object_iter() else {
                return Err(FrameError::Invalid("params must be an object"));
            };
            let mut seen = 0u8;
            for entry in members {
                let (key, value) = entry.map_err(|e| FrameError::Parse(e.to_string()))?;
                let (slot, bit) = match key.as_ref() {
                    "name" => (&mut f.name, 1),
                    "uri" => (&mut f.uri, 2),
                    "_meta" => (&mut f.meta, 4),
                    "arguments" => (&mut f.arguments, 8),
                    "requestState" => (&mut f.picked.request_state, 16),
                    "inputResponses" => (&mut f.picked.input_responses, 32),
                    _ => continue,
                };
                if seen & bit != 0 {
                    return Err(FrameError::Invalid("duplicate member in params"));
                }
                seen |= bit;
                *slot = Some(Span::of(&buf, value.as_raw_str().as_bytes()));
                if bit == 4 {
                    pick_meta(&buf, value, &mut f.picked)?;
                }
            }
        }
        if let (Some(r), Kind::Response) = (result_value, f.kind) {
            // A result that is not an object (invalid MCP, still a response) has no members to pick.
            if let Some(members) = r.into_object_iter() {
                for entry in members {
                    let (key, value) = entry.map_err(|e| FrameError::Parse(e.to_string()))?;
                    let slot = match key.as_ref() {
                        "resultType" => &mut f.picked.result_type,
                        "requestState" => &mut f.picked.result_state,
                        "ttlMs" => &mut f.picked.result_ttl,
                        _ => continue,
                    };
                    if slot.is_some() {
                        return Err(FrameError::Invalid("duplicate member in result"));
                    }
                    *slot = Some(Span::of(&buf, value.as_raw_str().as_bytes()));
                }
            }
        }
        f.buf = buf;
        Ok(f)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }

    pub fn slice(&self, span: Span) -> &[u8] {
        &self.buf[span.range()]
    }

    /// The raw id (`7`, `"abc"`), as the client wrote it.
    pub fn id_raw(&self) -> Option<&[u8]> {
        self.id.map(|s| self.slice(s))
    }

    pub fn id_span(&self) -> Option<Span> {
        self.id
    }

    /// The id as an unsigned integer, when it is one (the gateway's own upstream ids are).
    pub fn id_u64(&self) -> Option<u64> {
        // What `str::parse::<u64>` takes from a JSON value (digits; a JSON number has no `+`),
        // without its UTF-8 check.
        let raw = self.id_raw()?;
        if raw.is_empty() {
            return None;
        }
        raw.iter().try_fold(0u64, |n, &b| {
            let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
            n.checked_mul(10)?.checked_add(u64::from(d))
        })
    }

    /// The method name, unescaped.
    pub fn method(&self) -> Option<Cow<'_, str>> {
        self.method.and_then(|s| json_str(self.slice(s)))
    }

    pub fn params_span(&self) -> Option<Span> {
        self.params
    }

    pub fn params_raw(&self) -> Option<&[u8]> {
        self.params.map(|s| self.slice(s))
    }

    pub fn result_raw(&self) -> Option<&[u8]> {
        self.result.map(|s| self.slice(s))
    }

    pub fn error_raw(&self) -> Option<&[u8]> {
        self.error.map(|s| self.slice(s))
    }

    /// `result` or `error` with its key, e.g. `"result":{...}` → (`b"result"`, span).
    pub fn outcome(&self) -> Option<(&'static str, Span)> {
        match (self.result, self.error) {
            (Some(r), _) => Some(("result", r)),
            (_, Some(e)) => Some(("error", e)),
            _ => None,
        }
    }

    /// `params.name` unescaped, when it is a string.
    pub fn name(&self) -> Option<Cow<'_, str>> {
        self.name.and_then(|s| json_str(self.slice(s)))
    }

    /// The span of `params.name`'s raw string (with quotes), for splicing a new name in.
    pub fn name_span(&self) -> Option<Span> {
        self.name
    }

    pub fn uri_span(&self) -> Option<Span> {
        self.uri
    }

    pub fn uri(&self) -> Option<Cow<'_, str>> {
        self.uri.and_then(|s| json_str(self.slice(s)))
    }

    /// `params.arguments` (tools/call, prompts/get), raw.
    pub fn arguments_raw(&self) -> Option<&[u8]> {
        self.arguments.map(|s| self.slice(s))
    }

    pub fn meta_span(&self) -> Option<Span> {
        self.meta
    }

    pub fn meta_raw(&self) -> Option<&[u8]> {
        self.meta.map(|s| self.slice(s))
    }

    /// `params.requestState`, raw (a 2026-07-28 retry).
    pub fn request_state_span(&self) -> Option<Span> {
        self.picked.request_state
    }

    /// `params.inputResponses`, raw.
    pub fn input_responses_raw(&self) -> Option<&[u8]> {
        self.picked.input_responses.map(|s| self.slice(s))
    }

    /// `params._meta.progressToken`.
    pub fn progress_token_span(&self) -> Option<Span> {
        self.picked.progress_token
    }

    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, raw.
    pub fn meta_version_raw(&self) -> Option<&[u8]> {
        self.picked.meta_version.map(|s| self.slice(s))
    }

    /// `params._meta["io.modelcontextprotocol/clientCapabilities"]`, raw.
    pub fn meta_caps_raw(&self) -> Option<&[u8]> {
        self.picked.meta_caps.map(|s| self.slice(s))
    }

    /// Whether `params._meta` asks for log lines (`io.modelcontextprotocol/logLevel`).
    pub fn wants_log_lines(&self) -> bool {
        self.picked.log_level.is_some()
    }

    /// `result.resultType`, raw (`"complete"`, `"input_required"`).
    pub fn result_type_raw(&self) -> Option<&[u8]> {
        self.picked.result_type.map(|s| self.slice(s))
    }

    /// `result.requestState`.
    pub fn result_state_span(&self) -> Option<Span> {
        self.picked.result_state
    }

    /// Whether the result carries `ttlMs`.
    pub fn result_has_ttl(&self) -> bool {
        self.picked.result_ttl.is_some()
    }
}

/// The members of `params._meta` the gateway reads, from one walk of it. A `_meta` that is not an
/// object is left to the checks that read it.
fn pick_meta(
    buf: &[u8],
    meta: sonic_rs::LazyValue<'_>,
    picked: &mut Picked,
) -> Result<(), FrameError> {
    let Some(members) = meta.into_object_iter() else {
        return Ok(());
    };
    for entry in members {
        let (key, value) = entry.map_err(|e| FrameError::Parse(e.to_string()))?;
        let slot = match key.as_ref() {
            "progressToken" => &mut picked.progress_token,
            "io.modelcontextprotocol/protocolVersion" => &mut picked.meta_version,
            "io.modelcontextprotocol/clientCapabilities" => &mut picked.meta_caps,
            "io.modelcontextprotocol/logLevel" => &mut picked.log_level,
            _ => continue,
        };
        if slot.is_some() {
            return Err(FrameError::Invalid("duplicate member in params._meta"));
        }
        *slot = Some(Span::of(buf, value.as_raw_str().as_bytes()));
    }
    Ok(())
}

/// The raw value of member `key` of the JSON object `obj` (first occurrence); `None` when absent
/// or when `obj` is not an object. One walk of the top level and, unlike `sonic_rs::get`, no error
/// is built when the member is missing (that cost ~2k instructions per lookup); the walk of `scan`
/// first, sonic-rs for what it does not take.
pub fn member<'a>(obj: &'a [u8], key: &str) -> Option<&'a [u8]> {
    match scan::member(obj, key) {
        Ok(found) => found,
        Err(()) => member_sonic(obj, key),
    }
}

/// `member` by sonic-rs: for what the walk does not take.
fn member_sonic<'a>(obj: &'a [u8], key: &str) -> Option<&'a [u8]> {
    for entry in sonic_rs::to_object_iter(obj) {
        let (k, v) = entry.ok()?;
        if k == key {
            let raw = v.as_raw_str().as_bytes();
            let span = Span::of(obj, raw);
            return obj.get(span.range());
        }
    }
    None
}

/// A raw JSON value that is a string → its unescaped content; anything else → None.
fn json_str(raw: &[u8]) -> Option<Cow<'_, str>> {
    if raw.len() < 2 || raw[0] != b'"' {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    // Methods and names are short ASCII: one byte loop instead of a search and a UTF-8 check.
    if inner.iter().all(|&b| b != b'\\' && b.is_ascii()) {
        // Safety: every byte is ASCII, so the bytes are UTF-8.
        return Some(Cow::Borrowed(unsafe {
            std::str::from_utf8_unchecked(inner)
        }));
    }
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    sonic_rs::from_slice::<String>(raw).ok().map(Cow::Owned)
}

/// After the last member only `}` and whitespace may follow.
fn check_trailer(buf: &[u8], last_end: usize) -> Result<(), FrameError> {
    let rest = if last_end == 0 {
        // An empty object: skip the opening brace.
        let open = buf.iter().position(|&b| b == b'{').unwrap_or(0);
        &buf[open + 1..]
    } else {
        &buf[last_end..]
    };
    let mut it = rest.iter().filter(|b| !b.is_ascii_whitespace());
    match (it.next(), it.next()) {
        (Some(b'}'), None) => Ok(()),
        _ => Err(FrameError::Parse(
            "trailing characters after the JSON-RPC object".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Frame, FrameError> {
        Frame::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn tools_call_request() {
        let f = parse(
            r#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"a__echo","arguments":{"name":"x"},"_meta":{"progressToken":1}}}"#,
        )
        .unwrap();
        assert_eq!(f.kind, Kind::Request);
        assert_eq!(f.id_raw(), Some(&b"17"[..]));
        assert_eq!(f.id_u64(), Some(17));
        for (id, want) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-1", None),
            ("1.5", None),
            ("1e3", None),
            ("\"7\"", None),
        ] {
            let f = parse(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#)).unwrap();
            assert_eq!(f.id_u64(), want, "{id}");
            assert_eq!(f.id_u64(), id.parse::<u64>().ok(), "{id}");
        }
        assert_eq!(f.method().as_deref(), Some("tools/call"));
        assert_eq!(f.name().as_deref(), Some("a__echo"));
        assert_eq!(f.slice(f.name_span().unwrap()), b"\"a__echo\"");
        assert_eq!(f.meta_raw(), Some(&br#"{"progressToken":1}"#[..]));
    }

    #[test]
    fn escaped_strings_and_string_id() {
        let f = parse(
            r#" {"id":"a\"b","jsonrpc":"2.0","method":"tools\/call","params":{"name":"x\u0041"}} "#,
        )
        .unwrap();
        assert_eq!(f.id_raw(), Some(&br#""a\"b""#[..]));
        assert_eq!(f.method().as_deref(), Some("tools/call"));
        assert_eq!(f.name().as_deref(), Some("xA"));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .unwrap()
                .kind,
            Kind::Notification
        );
        let r = parse(r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}"#).unwrap();
        assert_eq!(r.kind, Kind::Response);
        assert_eq!(r.result_raw(), Some(&br#"{"tools":[]}"#[..]));
        let e =
            parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#).unwrap();
        assert_eq!(e.kind, Kind::ErrorResponse);
        assert_eq!(
            parse(r#"{}"#).unwrap_err(),
            FrameError::Invalid("jsonrpc must be \"2.0\"")
        );
    }

    #[test]
    fn malformed_is_parse_error() {
        for bad in [
            "",
            "{",
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x"}}"#,
            "[1,",
            "nul",
        ] {
            assert!(
                matches!(parse(bad), Err(FrameError::Parse(_))),
                "{bad:?} → {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn valid_json_but_not_a_request_is_invalid() {
        for bad in [
            "[]",
            "42",
            r#""x""#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(FrameError::Invalid(_))),
                "{bad:?} → {:?}",
                parse(bad)
            );
        }
    }
}
