//! Protocol vocabulary shared by the demo servers: version constants, JSON-RPC errors, argument
//! extraction, and builders for tool, resource, prompt and result objects.

use serde_json::{json, Map, Value};

/// The stateless (modern) protocol revision. Requests carrying it in
/// `params._meta["io.modelcontextprotocol/protocolVersion"]` are served without any handshake.
pub(crate) const MODERN_VERSION: &str = "2026-07-28";

/// Handshake-based (legacy) revisions accepted by `initialize`, newest first. The first one is the
/// answer when a client asks for a version we do not know.
pub(crate) const LEGACY_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` key carrying the protocol version of a modern request.
pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client identity of a modern request (logged, never trusted).
pub(crate) const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key under which modern results identify the server.
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// "Resource not found" up to 2025-11-25; 2026-07-28 replaced it with `INVALID_PARAMS`.
pub(crate) const LEGACY_RESOURCE_NOT_FOUND: i64 = -32002;
/// 2026-07-28 `UnsupportedProtocolVersionError`.
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Completion answers are capped at this many values (the spec's maximum per response).
pub(crate) const MAX_COMPLETION_VALUES: usize = 100;

/// Every version this server speaks, modern first (the `supportedVersions` of `server/discover`).
pub(crate) fn supported_versions() -> Vec<&'static str> {
    let mut all = vec![MODERN_VERSION];
    all.extend_from_slice(LEGACY_VERSIONS);
    all
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub(crate) fn parse(detail: impl std::fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    pub(crate) fn invalid_request(detail: &str) -> Self {
        Self::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    pub(crate) fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    pub(crate) fn invalid_params(detail: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, detail)
    }

    /// Legacy code; [`RpcError::for_modern`] maps it to `-32602` for 2026-07-28 requests.
    pub(crate) fn resource_not_found(uri: &str) -> Self {
        Self::new(LEGACY_RESOURCE_NOT_FOUND, "Resource not found").with_data(json!({ "uri": uri }))
    }

    pub(crate) fn unsupported_version(requested: &str) -> Self {
        Self::new(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
            .with_data(json!({ "supported": supported_versions(), "requested": requested }))
    }

    /// 2026-07-28 MUST NOT emit `-32002`; resource-not-found becomes Invalid Params.
    pub(crate) fn for_modern(mut self) -> Self {
        if self.code == LEGACY_RESOURCE_NOT_FOUND {
            self.code = INVALID_PARAMS;
        }
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        Value::Object(error)
    }
}

/// Named arguments of a tool call or prompt, with typed accessors that turn schema violations
/// into `-32602` errors naming the offending argument.
pub(crate) struct Args<'a> {
    owner: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// `owner` names the tool or prompt in error messages, e.g. "tool `add`".
    pub(crate) fn new(owner: &'a str, map: &'a Map<String, Value>) -> Self {
        Self { owner, map }
    }

    fn bad(&self, key: &str, expected: &str) -> RpcError {
        RpcError::invalid_params(format!(
            "Invalid arguments for {}: `{key}` {expected}",
            self.owner
        ))
        .with_data(json!({ "argument": key }))
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, RpcError> {
        self.opt_str(key)?
            .ok_or_else(|| self.bad(key, "is required and must be a string"))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, RpcError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "must be a string")),
        }
    }

    pub(crate) fn number(&self, key: &str) -> Result<&'a serde_json::Number, RpcError> {
        match self.present(key) {
            None => Err(self.bad(key, "is required and must be a number")),
            Some(Value::Number(n)) => Ok(n),
            Some(_) => Err(self.bad(key, "must be a number")),
        }
    }

    /// A required integer in `0..=max`.
    pub(crate) fn bounded_u64(&self, key: &str, max: u64) -> Result<u64, RpcError> {
        let Some(value) = self.present(key) else {
            return Err(self.bad(
                key,
                &format!("is required and must be an integer between 0 and {max}"),
            ));
        };
        match value.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(self.bad(key, &format!("must be an integer between 0 and {max}"))),
        }
    }

    /// A required identifier: a string, or (leniently) a non-negative integer.
    pub(crate) fn id(&self, key: &str) -> Result<String, RpcError> {
        match self.present(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            _ => Err(self.bad(key, "is required and must be a string")),
        }
    }

    pub(crate) fn opt_str_list(&self, key: &str) -> Result<Vec<String>, RpcError> {
        match self.present(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.bad(key, "must be an array of strings"))
                })
                .collect(),
            Some(_) => Err(self.bad(key, "must be an array of strings")),
        }
    }
}

/// What a tool does to its environment, rendered as `annotations` hints. Every demo tool is
/// closed-world (`openWorldHint: false`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect {
    ReadOnly,
    /// Adds state, never destroys it.
    Additive,
    /// Removes state; repeating the call has no further effect.
    DestructiveIdempotent,
}

impl Effect {
    fn annotations(self) -> Value {
        match self {
            Effect::ReadOnly => json!({ "readOnlyHint": true, "openWorldHint": false }),
            Effect::Additive => json!({
                "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false
            }),
            Effect::DestructiveIdempotent => json!({
                "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false
            }),
        }
    }
}

/// A `type: object` JSON Schema; `required` is always present (possibly empty).
pub(crate) fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// A `tools/list` entry.
pub(crate) fn tool(
    name: &str,
    title: &str,
    description: &str,
    input_schema: Value,
    output_schema: Option<Value>,
    effect: Effect,
) -> Value {
    let mut tool = json!({
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": input_schema,
        "annotations": effect.annotations(),
    });
    if let (Some(schema), Value::Object(map)) = (output_schema, &mut tool) {
        map.insert("outputSchema".into(), schema);
    }
    tool
}

/// A successful tool result with one text block.
pub(crate) fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }] })
}

/// A successful tool result with `structuredContent` (an object) and, for clients that only read
/// `content`, the same JSON serialized in a text block.
pub(crate) fn structured_result(value: Value) -> Value {
    json!({ "content": [{ "type": "text", "text": value.to_string() }], "structuredContent": value })
}

/// A tool execution failure: a normal result with `isError: true`, visible to the model.
pub(crate) fn tool_error(message: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": message.into() }], "isError": true })
}

/// A `resources/list` entry.
pub(crate) fn resource(uri: &str, name: &str, title: &str, description: &str, mime: &str) -> Value {
    json!({ "uri": uri, "name": name, "title": title, "description": description, "mimeType": mime })
}

/// One element of a `resources/read` `contents` array.
pub(crate) fn text_contents(uri: &str, mime: &str, text: String) -> Value {
    json!({ "uri": uri, "mimeType": mime, "text": text })
}

/// A `prompts/list` entry; `arguments` is a list of (name, description, required).
pub(crate) fn prompt(
    name: &str,
    title: &str,
    description: &str,
    arguments: &[(&str, &str, bool)],
) -> Value {
    let arguments: Vec<Value> = arguments
        .iter()
        .map(|(name, description, required)| json!({ "name": name, "description": description, "required": required }))
        .collect();
    json!({ "name": name, "title": title, "description": description, "arguments": arguments })
}

/// A `prompts/get` result holding a single user message.
pub(crate) fn prompt_result(description: &str, text: String) -> Value {
    json!({
        "description": description,
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    })
}

/// The `ref` of a `completion/complete` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference<'a> {
    Prompt(&'a str),
    /// A resource template, by its URI template.
    Resource(&'a str),
}

/// Candidates starting with `prefix` (ASCII case-insensitive), in the given order.
pub(crate) fn complete_from<'s>(
    candidates: impl IntoIterator<Item = &'s str>,
    prefix: &str,
) -> Vec<String> {
    let prefix = prefix.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| c.to_ascii_lowercase().starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
