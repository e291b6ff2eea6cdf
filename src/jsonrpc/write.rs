//! Writers that build outgoing JSON-RPC messages by splicing raw spans, never re-serializing payloads.

use super::{Frame, Span};

/// `s` as a JSON string literal. Plain printable ASCII (tool names) is quoted without a serializer
/// (~400 instructions per tools/call); anything else goes through serde_json's escaping.
pub fn quote(s: &str) -> String {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        out
    } else {
        serde_json::Value::from(s).to_string()
    }
}

/// `buf` with the bytes of `span` replaced by `with`.
pub fn splice(buf: &[u8], span: Span, with: &[u8]) -> Vec<u8> {
    let r = span.range();
    let mut out = Vec::with_capacity(buf.len() - r.len() + with.len());
    out.extend_from_slice(&buf[..r.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&buf[r.end..]);
    out
}

/// `buf[within]` with each `(span, bytes)` edit applied (spans absolute in `buf`, inside `within`,
/// not overlapping, in any order): one copy however many edits.
pub fn splice_many(buf: &[u8], within: Span, edits: &mut [(Span, &[u8])]) -> Vec<u8> {
    edits.sort_unstable_by_key(|(s, _)| s.start);
    let grow: usize = edits.iter().map(|(_, w)| w.len()).sum();
    let mut out = Vec::with_capacity(within.range().len() + grow);
    let mut at = within.start as usize;
    for (span, with) in edits.iter() {
        let r = span.range();
        out.extend_from_slice(&buf[at..r.start]);
        out.extend_from_slice(with);
        at = r.end;
    }
    out.extend_from_slice(&buf[at..within.end as usize]);
    out
}

/// A request or notification: `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":<params>}`.
/// `method` is a plain method name (no characters that need escaping).
pub fn request_with_id(id: Option<u64>, method: &str, params: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + method.len() + params.map_or(0, |p| p.len()));
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",");
    if let Some(id) = id {
        out.extend_from_slice(b"\"id\":");
        out.extend_from_slice(itoa_u64(id).as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"method\":\"");
    out.extend_from_slice(method.as_bytes());
    out.push(b'"');
    if let Some(p) = params {
        out.extend_from_slice(b",\"params\":");
        out.extend_from_slice(p);
    }
    out.push(b'}');
    out
}

/// The upstream's response `frame` re-addressed to the client's raw `id`: the result or error bytes
/// are copied as they are.
pub fn response_with_id(frame: &Frame, id: &[u8]) -> Vec<u8> {
    let (key, span) = match frame.outcome() {
        Some(o) => o,
        None => return Vec::new(),
    };
    let payload = frame.slice(span);
    let mut out = Vec::with_capacity(40 + id.len() + payload.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(payload);
    out.push(b'}');
    out
}

fn itoa_u64(v: u64) -> String {
    itoa::Buffer::new().format(v).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn quote_matches_serde_json() {
        for s in [
            "up__echo",
            "",
            "a b/c",
            "q\"x",
            "back\\slash",
            "tab\there",
            "\u{7f}",
            "é",
        ] {
            assert_eq!(quote(s), serde_json::Value::from(s).to_string(), "{s:?}");
        }
    }

    #[test]
    fn readdress_response_keeps_payload_bytes() {
        let up = Frame::parse(Bytes::from_static(
            br#"{"result":{"content":[{"type":"text","text":"hi"}]} ,"jsonrpc":"2.0","id":1099511627777}"#,
        ))
        .unwrap();
        let out = response_with_id(&up, b"\"client-1\"");
        assert_eq!(
            out,
            br#"{"jsonrpc":"2.0","id":"client-1","result":{"content":[{"type":"text","text":"hi"}]}}"#
        );
    }

    #[test]
    fn splice_many_applies_edits_in_any_order() {
        let f = Frame::parse(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{"progressToken":"p"},"arguments":{}}}"#,
        ))
        .unwrap();
        let mut edits = [
            (f.progress_token_span().unwrap(), &b"77"[..]),
            (f.name_span().unwrap(), &b"\"t\""[..]),
        ];
        let p = splice_many(f.bytes(), f.params_span().unwrap(), &mut edits);
        assert_eq!(
            p,
            br#"{"name":"t","_meta":{"progressToken":77},"arguments":{}}"#
        );
        let p = splice_many(f.bytes(), f.params_span().unwrap(), &mut []);
        assert_eq!(p, f.params_raw().unwrap());
    }

    #[test]
    fn splice_name() {
        let f = Frame::parse(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":{}}}"#,
        ))
        .unwrap();
        let params = f.params_span().unwrap();
        let name = f.name_span().unwrap();
        let rel = Span {
            start: name.start - params.start,
            end: name.end - params.start,
        };
        let p = splice(f.params_raw().unwrap(), rel, b"\"t\"");
        assert_eq!(p, br#"{"name":"t","arguments":{}}"#);
        let req = request_with_id(Some(5), "tools/call", Some(&p));
        assert_eq!(req, br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","arguments":{}}}"#);
    }
}
