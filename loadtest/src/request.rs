//! MCP requests as the load client sends them: byte templates for both eras, filled per request.
//!
//! Everything that does not change between requests (request line, headers, the JSON around the
//! id and the arguments) is rendered once; a request costs one buffer fill. `${seq}` in the body
//! (the JSON-RPC id, and wherever the caller's arguments say `${seq}`) becomes the request's
//! run-wide sequence number, so every request and its answer can be matched and checked.

use std::io::Write;

use serde_json::Value;

use crate::target::Target;

/// The 2026-07-28 revision's version string.
pub const MODERN: &str = "2026-07-28";
/// The legacy revision the client speaks.
pub const LEGACY: &str = "2025-11-25";

const SEQ: &str = "${seq}";

/// The protocol era a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: stateless, `_meta` and `Mcp-*` headers on every request.
    Modern,
    /// 2025-11-25: `initialize` per agent, then `Mcp-Session-Id` on every request.
    Legacy,
}

impl Era {
    /// Parses `2026-07-28` or `legacy` (also `2025-11-25`).
    pub fn parse(s: &str) -> Result<Era, String> {
        match s {
            MODERN | "modern" => Ok(Era::Modern),
            "legacy" | LEGACY => Ok(Era::Legacy),
            _ => Err(format!("era {s:?}: expected 2026-07-28 or legacy")),
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Era::Modern => MODERN,
            Era::Legacy => "legacy",
        }
    }
}

#[derive(Debug, Clone)]
enum Part {
    Lit(Vec<u8>),
    Seq,
}

/// One kind of request of the mix, ready to render.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Request line and fixed headers, without `Content-Length` and the session.
    head: Vec<u8>,
    body: Vec<Part>,
    legacy: bool,
    /// The arguments carry `${seq}`: the result must carry it back.
    pub verify: bool,
    /// A `tools/call`: a result with `isError: true` counts as an error.
    pub tool_call: bool,
}

/// What a request template is built from.
pub struct TemplateSpec<'a> {
    pub era: Era,
    pub target: &'a Target,
    pub method: &'a str,
    /// Tool name as sent (with any gateway prefix), for `tools/call`.
    pub tool: Option<&'a str>,
    /// Tool arguments (a JSON object), for `tools/call`.
    pub args: Option<&'a Value>,
    /// Extra header lines, each ending in CRLF (API key, `--header`).
    pub extra_headers: &'a [u8],
}

impl RequestTemplate {
    /// Renders the fixed parts of a request.
    pub fn new(spec: &TemplateSpec<'_>) -> Result<Self, String> {
        let meta = format!(
            r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN}","io.modelcontextprotocol/clientCapabilities":{{}}}}"#
        );
        let method_json = json_string(spec.method);
        let mut body =
            format!(r#"{{"jsonrpc":"2.0","id":{SEQ},"method":{method_json},"params":{{"#);
        let mut verify = false;
        let tool_call = spec.method == "tools/call";
        if tool_call {
            let tool = spec.tool.ok_or("tools/call needs a tool name")?;
            let args = match spec.args {
                Some(v @ Value::Object(_)) => v.to_string(),
                Some(_) => return Err(format!("arguments of {tool} must be a JSON object")),
                None => "{}".to_string(),
            };
            verify = args.contains(SEQ);
            body.push_str(&format!(
                r#""name":{},"arguments":{args}"#,
                json_string(tool)
            ));
            if spec.era == Era::Modern {
                body.push(',');
            }
        }
        if spec.era == Era::Modern {
            body.push_str(&meta);
        }
        body.push_str("}}");

        let mut head = Vec::new();
        let _ = write!(
            head,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
            spec.target.path, spec.target.host
        );
        match spec.era {
            Era::Modern => {
                let _ = write!(
                    head,
                    "MCP-Protocol-Version: {MODERN}\r\nMcp-Method: {}\r\n",
                    spec.method
                );
                if let Some(tool) = spec.tool.filter(|_| tool_call) {
                    let _ = write!(head, "Mcp-Name: {tool}\r\n");
                }
            }
            Era::Legacy => {
                let _ = write!(head, "MCP-Protocol-Version: {LEGACY}\r\n");
            }
        }
        head.extend_from_slice(spec.extra_headers);
        Ok(RequestTemplate {
            head,
            body: split_seq(&body),
            legacy: spec.era == Era::Legacy,
            verify,
            tool_call,
        })
    }

    /// Writes request number `seq` (with the agent's session, legacy era) into `out`.
    pub fn render(&self, seq: u64, session: Option<&str>, out: &mut Vec<u8>) {
        out.clear();
        let digits = itoa_buf(seq);
        let seq_bytes = digits.as_slice();
        let body_len: usize = self
            .body
            .iter()
            .map(|p| match p {
                Part::Lit(b) => b.len(),
                Part::Seq => seq_bytes.len(),
            })
            .sum();
        out.extend_from_slice(&self.head);
        if let (true, Some(sid)) = (self.legacy, session) {
            out.extend_from_slice(b"Mcp-Session-Id: ");
            out.extend_from_slice(sid.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(out, "Content-Length: {body_len}\r\n\r\n");
        for p in &self.body {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Seq => out.extend_from_slice(seq_bytes),
            }
        }
    }
}

/// The legacy `initialize` request (id 0).
pub fn initialize(target: &Target, extra_headers: &[u8]) -> Vec<u8> {
    raw_post(target, &[], extra_headers, initialize_body().as_bytes())
}

/// The legacy `initialize` request (id 0) as one stdio line.
pub fn initialize_line() -> Vec<u8> {
    let mut line = initialize_body().into_bytes();
    line.push(b'\n');
    line
}

/// `notifications/initialized` as one stdio line.
pub const INITIALIZED_LINE: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";

fn initialize_body() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{LEGACY}","capabilities":{{}},"clientInfo":{{"name":"switchyard-loadtest","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// A legacy `tools/call` as one line of newline-delimited JSON-RPC (the stdio transport).
#[derive(Debug, Clone)]
pub struct LineTemplate {
    body: Vec<Part>,
    /// The arguments carry `${seq}`: the result must carry it back.
    pub verify: bool,
}

impl LineTemplate {
    /// A `tools/call` of `tool` with `args` (a JSON object; `${seq}` becomes the request number).
    pub fn tool_call(tool: &str, args: &Value) -> Result<Self, String> {
        if !args.is_object() {
            return Err(format!("arguments of {tool} must be a JSON object"));
        }
        // serde_json escapes control characters, so the line holds no raw newline.
        let args = args.to_string();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{SEQ},"method":"tools/call","params":{{"name":{},"arguments":{args}}}}}"#,
            json_string(tool)
        );
        Ok(LineTemplate {
            verify: args.contains(SEQ),
            body: split_seq(&body),
        })
    }

    /// Appends request number `seq`, newline included, to `out`.
    pub fn render_into(&self, seq: u64, out: &mut Vec<u8>) {
        let digits = itoa_buf(seq);
        for p in &self.body {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Seq => out.extend_from_slice(digits.as_slice()),
            }
        }
        out.push(b'\n');
    }
}

/// The legacy `notifications/initialized` (in the session, when the server assigned one).
pub fn initialized(target: &Target, session: Option<&str>, extra_headers: &[u8]) -> Vec<u8> {
    let body = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let headers = match session {
        Some(sid) => format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: {LEGACY}\r\n"),
        None => format!("MCP-Protocol-Version: {LEGACY}\r\n"),
    };
    raw_post(target, headers.as_bytes(), extra_headers, body)
}

/// `DELETE` that ends a legacy session.
pub fn delete_session(target: &Target, session: &str, extra_headers: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write!(
        out,
        "DELETE {} HTTP/1.1\r\nHost: {}\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: {LEGACY}\r\n",
        target.path, target.host
    );
    out.extend_from_slice(extra_headers);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

fn raw_post(target: &Target, headers: &[u8], extra_headers: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write!(
        out,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
        target.path, target.host
    );
    out.extend_from_slice(headers);
    out.extend_from_slice(extra_headers);
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
    out
}

/// Renders `--api-key` and `--header` values as header lines; refuses CR/LF and malformed names.
pub fn extra_headers(api_key: Option<&str>, headers: &[String]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(key) = api_key {
        check_header_value(key)?;
        let _ = write!(out, "Authorization: Bearer {key}\r\n");
    }
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?}: expected 'Name: value'"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
        {
            return Err(format!("header {h:?}: bad name"));
        }
        let value = value.trim();
        check_header_value(value)?;
        let _ = write!(out, "{name}: {value}\r\n");
    }
    Ok(out)
}

fn check_header_value(v: &str) -> Result<(), String> {
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("header values may not contain CR, LF or NUL".into());
    }
    Ok(())
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn split_seq(body: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(SEQ) {
        if i > 0 {
            parts.push(Part::Lit(rest.as_bytes()[..i].to_vec()));
        }
        parts.push(Part::Seq);
        rest = &rest[i + SEQ.len()..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.as_bytes().to_vec()));
    }
    parts
}

/// Decimal digits of `n` without allocating per call.
fn itoa_buf(n: u64) -> DigitBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    DigitBuf { buf, start: i }
}

struct DigitBuf {
    buf: [u8; 20],
    start: usize,
}

impl DigitBuf {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    fn target() -> Target {
        crate::target::parse("http://127.0.0.1:3100/mcp").unwrap()
    }

    fn split(req: &[u8]) -> (String, Value) {
        let head = wire::parse_request_head(req).unwrap().unwrap();
        let body = &req[head.head_len..];
        assert_eq!(head.framing, wire::Framing::Length(body.len()));
        let text = String::from_utf8(req[..head.head_len].to_vec()).unwrap();
        (text, serde_json::from_slice(body).unwrap())
    }

    #[test]
    fn modern_tool_call_has_meta_and_headers() {
        let t = target();
        let args = serde_json::json!({"message": "hi ${seq}"});
        let tmpl = RequestTemplate::new(&TemplateSpec {
            era: Era::Modern,
            target: &t,
            method: "tools/call",
            tool: Some("up__echo"),
            args: Some(&args),
            extra_headers: b"Authorization: Bearer k\r\n",
        })
        .unwrap();
        assert!(tmpl.verify && tmpl.tool_call);
        let mut out = Vec::new();
        tmpl.render(12345, Some("ignored"), &mut out);
        let (head, body) = split(&out);
        assert!(head.starts_with("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:3100\r\n"));
        assert!(head.contains("MCP-Protocol-Version: 2026-07-28\r\n"));
        assert!(head.contains("Mcp-Method: tools/call\r\n"));
        assert!(head.contains("Mcp-Name: up__echo\r\n"));
        assert!(head.contains("Authorization: Bearer k\r\n"));
        assert!(!head.contains("Mcp-Session-Id"));
        assert_eq!(body["id"], 12345);
        assert_eq!(body["params"]["name"], "up__echo");
        assert_eq!(body["params"]["arguments"]["message"], "hi 12345");
        assert_eq!(
            body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert!(body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"].is_object());
    }

    #[test]
    fn legacy_requests_carry_the_session() {
        let t = target();
        let tmpl = RequestTemplate::new(&TemplateSpec {
            era: Era::Legacy,
            target: &t,
            method: "tools/list",
            tool: None,
            args: None,
            extra_headers: b"",
        })
        .unwrap();
        assert!(!tmpl.verify && !tmpl.tool_call);
        let mut out = Vec::new();
        tmpl.render(0, Some("sess-1"), &mut out);
        let (head, body) = split(&out);
        assert!(head.contains("Mcp-Session-Id: sess-1\r\n"));
        assert!(head.contains("MCP-Protocol-Version: 2025-11-25\r\n"));
        assert!(!head.contains("Mcp-Method"));
        assert_eq!(
            body,
            serde_json::json!({"jsonrpc":"2.0","id":0,"method":"tools/list","params":{}})
        );
        // Rendering again reuses the buffer.
        tmpl.render(u64::MAX, Some("s"), &mut out);
        assert_eq!(split(&out).1["id"], u64::MAX);
    }

    #[test]
    fn handshake_messages_parse() {
        let t = target();
        let (_, init) = split(&initialize(&t, b""));
        assert_eq!(init["method"], "initialize");
        assert_eq!(init["params"]["protocolVersion"], LEGACY);
        let (head, note) = split(&initialized(&t, Some("abc"), b""));
        assert!(head.contains("Mcp-Session-Id: abc\r\n"));
        assert!(note.get("id").is_none());
        // A server that assigned no session (the spec allows it) gets none back.
        let (head, _) = split(&initialized(&t, None, b""));
        assert!(!head.contains("Mcp-Session-Id"), "{head}");
        let del = delete_session(&t, "abc", b"");
        let head = wire::parse_request_head(&del).unwrap().unwrap();
        assert_eq!(head.method, wire::Method::Delete);
        assert_eq!(head.session_id.as_deref(), Some("abc"));
    }

    #[test]
    fn stdio_lines() {
        let args = serde_json::json!({"message": "a\nb ${seq}"});
        let tmpl = LineTemplate::tool_call("echo", &args).unwrap();
        assert!(tmpl.verify);
        let mut out = Vec::new();
        tmpl.render_into(7, &mut out);
        tmpl.render_into(12, &mut out);
        let lines: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "the escaped newline stays inside its line");
        assert_eq!(lines[0]["id"], 7);
        assert_eq!(lines[1]["params"]["arguments"]["message"], "a\nb 12");
        assert!(LineTemplate::tool_call("echo", &serde_json::json!([])).is_err());
        let init: Value = serde_json::from_slice(&initialize_line()).unwrap();
        assert_eq!(init["method"], "initialize");
        let note: Value = serde_json::from_slice(INITIALIZED_LINE).unwrap();
        assert_eq!(note["method"], "notifications/initialized");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let t = target();
        let not_object = serde_json::json!([1]);
        let spec = TemplateSpec {
            era: Era::Modern,
            target: &t,
            method: "tools/call",
            tool: Some("echo"),
            args: Some(&not_object),
            extra_headers: b"",
        };
        assert!(RequestTemplate::new(&spec).is_err());
        assert!(extra_headers(Some("a\r\nX: y"), &[]).is_err());
        assert!(extra_headers(None, &["NoColon".into()]).is_err());
        assert!(extra_headers(None, &["Bad Name: v".into()]).is_err());
        let ok = extra_headers(Some("k1"), &["X-Tenant: t1".into()]).unwrap();
        assert_eq!(ok, b"Authorization: Bearer k1\r\nX-Tenant: t1\r\n");
        assert!(Era::parse("2026-07-28").is_ok() && Era::parse("legacy").is_ok());
        assert!(Era::parse("2024").is_err());
    }
}
