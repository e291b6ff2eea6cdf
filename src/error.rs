//! The one structured error of the gateway and the one place that turns it into a JSON-RPC error.
//!
//! Following pingora's shape: a kind (what went wrong), a source (who failed: the downstream client, an
//! upstream server, or the gateway itself), whether a retry may help, and a short context string. The
//! kind decides both the JSON-RPC code and the HTTP status, so every failure is answered the same way
//! wherever it is raised.

use std::borrow::Cow;

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Downstream,
    Upstream,
    Internal,
}

/// What went wrong; each kind has exactly one JSON-RPC code and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body is not JSON.
    Parse,
    /// JSON, but not a JSON-RPC request the gateway accepts.
    InvalidRequest,
    MethodNotFound,
    /// Unknown tool/prompt, bad or missing params.
    InvalidParams,
    /// resources/read of a URI no upstream owns (MCP's "Resource not found").
    ResourceNotFound,
    BodyTooLarge,
    UnsupportedMediaType,
    NotAcceptable,
    /// Origin not allowed.
    Forbidden,
    /// A legacy request without `Mcp-Session-Id`.
    SessionRequired,
    /// A legacy session that does not exist (never did, expired, or deleted).
    SessionNotFound,
    /// A legacy request whose `MCP-Protocol-Version` header names no version we speak.
    BadProtocolVersionHeader,
    /// 2026-07-28: an `Mcp-*` header disagrees with the body.
    HeaderMismatch,
    /// 2026-07-28: the request names a protocol version the gateway does not speak.
    UnsupportedVersion,
    /// 2026-07-28: a required per-request `_meta` member is missing or malformed (-32602, HTTP 400).
    MalformedEnvelope,
    /// 2026-07-28: the request needs a client capability it did not declare (an upstream said so).
    MissingCapability,
    /// The owning upstream is not connected (failed to start, died, being respawned).
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream answered something that is not a JSON-RPC response to our request.
    UpstreamProtocol,
    /// The gateway is stopping and takes no new work.
    ShuttingDown,
    /// The client cancelled the request: it gets no response (an empty stream).
    Cancelled,
    /// No key, or a key that is unknown, wrong, expired or revoked.
    Unauthorized,
    /// A valid key whose role may use nothing here.
    NoAccess,
    /// Over the caller's rate limit.
    RateLimited,
    /// The server already has its `max_concurrent` requests in flight.
    Overloaded,
    Internal,
}

impl ErrorKind {
    /// The JSON-RPC error code. -32700..-32600 are JSON-RPC's own; -32002 is MCP's resource not found;
    /// -32020..-32022 are the 2026-07-28 transport codes. The gateway's own codes live in
    /// -31050..-31059, outside JSON-RPC's reserved -32768..-32000: 2026-07-28 reserves -32020..-32099
    /// for the spec and forbids implementations other codes there.
    pub fn rpc_code(self) -> i32 {
        match self {
            ErrorKind::Parse => -32700,
            ErrorKind::InvalidRequest
            | ErrorKind::SessionRequired
            | ErrorKind::SessionNotFound
            | ErrorKind::BodyTooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::NotAcceptable
            | ErrorKind::Forbidden
            | ErrorKind::BadProtocolVersionHeader => -32600,
            ErrorKind::MethodNotFound => -32601,
            ErrorKind::InvalidParams | ErrorKind::MalformedEnvelope => -32602,
            ErrorKind::MissingCapability => -32021,
            ErrorKind::ResourceNotFound => -32002,
            ErrorKind::HeaderMismatch => -32020,
            ErrorKind::UnsupportedVersion => -32022,
            ErrorKind::UpstreamUnavailable => -31050,
            ErrorKind::UpstreamTimeout => -31051,
            ErrorKind::UpstreamProtocol => -31052,
            ErrorKind::ShuttingDown => -31053,
            ErrorKind::Unauthorized => -31054,
            ErrorKind::NoAccess => -31055,
            ErrorKind::RateLimited => -31056,
            ErrorKind::Overloaded => -31057,
            ErrorKind::Internal | ErrorKind::Cancelled => -32603,
        }
    }

    /// The HTTP status that carries the error on the Streamable HTTP front.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Parse
            | ErrorKind::InvalidRequest
            | ErrorKind::SessionRequired
            | ErrorKind::BadProtocolVersionHeader
            | ErrorKind::HeaderMismatch
            | ErrorKind::UnsupportedVersion
            | ErrorKind::MalformedEnvelope
            | ErrorKind::MissingCapability => 400,
            ErrorKind::Forbidden | ErrorKind::NoAccess => 403,
            ErrorKind::Unauthorized => 401,
            ErrorKind::RateLimited => 429,
            ErrorKind::SessionNotFound => 404,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            // JSON-RPC level errors of a well-formed exchange travel in a 200.
            ErrorKind::MethodNotFound | ErrorKind::InvalidParams | ErrorKind::ResourceNotFound => {
                200
            }
            ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamProtocol => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::ShuttingDown | ErrorKind::Overloaded => 503,
            ErrorKind::Internal => 500,
            ErrorKind::Cancelled => 200,
        }
    }
}

/// A gateway error: kind, who failed, whether a retry may help, and what was being done.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}")]
pub struct Error {
    pub kind: ErrorKind,
    pub origin: Source,
    pub retryable: bool,
    pub context: Cow<'static, str>,
    /// Optional JSON value (already serialized) for the JSON-RPC error's `data`.
    pub data: Option<Box<str>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, source: Source, context: impl Into<Cow<'static, str>>) -> Self {
        let retryable = matches!(
            kind,
            ErrorKind::UpstreamUnavailable
                | ErrorKind::UpstreamTimeout
                | ErrorKind::ShuttingDown
                | ErrorKind::Overloaded
        );
        Error {
            kind,
            origin: source,
            retryable,
            context: context.into(),
            data: None,
        }
    }

    /// A client's mistake.
    pub fn downstream(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(kind, Source::Downstream, context)
    }

    /// An upstream's failure; the context should name the server.
    pub fn upstream(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(kind, Source::Upstream, context)
    }

    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, Source::Internal, context)
    }

    /// Attach a JSON value as the error's `data` (serialized once here).
    pub fn with_data(mut self, data: &serde_json::Value) -> Self {
        self.data = Some(data.to_string().into_boxed_str());
        self
    }

    pub fn rpc_code(&self) -> i32 {
        self.kind.rpc_code()
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }

    /// The JSON-RPC error response for a request whose raw id is `id` (`None` → `null`, as for
    /// a body that could not be parsed).
    pub fn to_jsonrpc(&self, id: Option<&[u8]>) -> Vec<u8> {
        let message = serde_json::Value::from(self.context.as_ref()).to_string();
        let mut out = Vec::with_capacity(64 + message.len());
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(id.unwrap_or(b"null"));
        out.extend_from_slice(b",\"error\":{\"code\":");
        out.extend_from_slice(self.rpc_code().to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        out.extend_from_slice(message.as_bytes());
        if let Some(data) = &self.data {
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(data.as_bytes());
        }
        out.extend_from_slice(b"}}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_valid_json_with_escaped_message() {
        let e = Error::upstream(ErrorKind::UpstreamUnavailable, "server \"web\" is down");
        let body = e.to_jsonrpc(Some(b"7"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -31050);
        assert_eq!(v["error"]["message"], "server \"web\" is down");
        assert_eq!(e.http_status(), 502);
        assert!(e.retryable);
    }

    #[test]
    fn null_id_and_data() {
        let e = Error::downstream(ErrorKind::UnsupportedVersion, "unsupported")
            .with_data(&serde_json::json!({"supported": ["2026-07-28"]}));
        let v: serde_json::Value = serde_json::from_slice(&e.to_jsonrpc(None)).unwrap();
        assert!(v["id"].is_null());
        assert_eq!(v["error"]["data"]["supported"][0], "2026-07-28");
    }
}
