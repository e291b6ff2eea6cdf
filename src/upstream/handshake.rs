//! Era detection and the handshake with an upstream, for both eras.
//!
//! A modern (2026-07-28) server answers `server/discover`; anything else — an error, a non-modern
//! HTTP 4xx, silence until the probe timeout — means legacy, and the gateway sends `initialize` and
//! `notifications/initialized` and speaks the negotiated legacy revision from then on.

use serde_json::{json, Value};

/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The legacy revisions the gateway speaks, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER: &str = "io.modelcontextprotocol/serverInfo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Modern,
    Legacy,
}

/// What an upstream told us about itself.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub era: Era,
    /// The revision spoken with it.
    pub version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
}

impl Handshake {
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.get(cap).is_some_and(|v| !v.is_null())
    }

    /// From a `server/discover` result; `None` when it does not offer the modern revision.
    pub fn from_discover(result: &Value) -> Option<Handshake> {
        let versions = result.get("supportedVersions")?.as_array()?;
        if !versions.iter().any(|v| v.as_str() == Some(MODERN_VERSION)) {
            return None;
        }
        let server_info = result.pointer("/_meta/io.modelcontextprotocol~1serverInfo");
        Some(Handshake::from_result(
            Era::Modern,
            MODERN_VERSION,
            result,
            server_info,
        ))
    }

    /// From an `initialize` result; an error when the server chose a revision we do not speak.
    pub fn from_initialize(result: &Value) -> Result<Handshake, String> {
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or("initialize result has no protocolVersion")?;
        if !LEGACY_VERSIONS.contains(&version) {
            return Err(format!(
                "server chose protocol version {version:?}, which switchyard does not speak"
            ));
        }
        Ok(Handshake::from_result(
            Era::Legacy,
            version,
            result,
            result.get("serverInfo"),
        ))
    }

    /// The fields both eras' results share (`capabilities`, `instructions`).
    fn from_result(
        era: Era,
        version: &str,
        result: &Value,
        server_info: Option<&Value>,
    ) -> Handshake {
        Handshake {
            era,
            version: version.into(),
            capabilities: result
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
            server_info: server_info.cloned().unwrap_or_else(|| json!({})),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// The handshake from an upstream's reply to `initialize` (an error response, a result that is not
/// JSON, or a revision we do not speak are errors naming the server).
pub fn from_initialize_reply(
    server: &str,
    reply: &crate::jsonrpc::Frame,
) -> Result<Handshake, crate::error::Error> {
    use crate::error::{Error, ErrorKind};
    let result = reply
        .result_raw()
        .and_then(|r| serde_json::from_slice::<Value>(r).ok())
        .ok_or_else(|| {
            let why = String::from_utf8_lossy(reply.error_raw().unwrap_or(b""));
            Error::upstream(
                ErrorKind::UpstreamProtocol,
                format!("server {server:?} refused initialize: {why}"),
            )
        })?;
    Handshake::from_initialize(&result).map_err(|e| {
        Error::upstream(
            ErrorKind::UpstreamProtocol,
            format!("server {server:?}: {e}"),
        )
    })
}

fn client_info() -> Value {
    json!({"name": "switchyard", "version": env!("CARGO_PKG_VERSION")})
}

/// The `_meta` members every modern request carries from the gateway (without braces); `caps` are
/// the capabilities to declare (a legacy client's own, when the gateway speaks for one).
fn modern_meta_members(caps: Option<&str>) -> String {
    static CLIENT_INFO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let info = CLIENT_INFO.get_or_init(|| client_info().to_string());
    let caps = caps.unwrap_or("{}");
    let mut out = String::with_capacity(128 + caps.len() + info.len());
    for part in [
        "\"",
        META_VERSION,
        "\":\"",
        MODERN_VERSION,
        "\",\"",
        META_CAPS,
        "\":",
        caps,
        ",\"",
        META_CLIENT,
        "\":",
        info,
    ] {
        out.push_str(part);
    }
    out
}

/// `server/discover` params.
pub fn discover_params() -> Vec<u8> {
    format!("{{\"_meta\":{{{}}}}}", modern_meta_members(None)).into_bytes()
}

/// `initialize` params. The gateway declares what it can relay to clients (sampling, elicitation,
/// roots): one upstream session serves many clients, and a request for a client that lacks the
/// capability is refused by the gateway, as that client would.
pub fn initialize_params() -> Vec<u8> {
    json!({
        "protocolVersion": LEGACY_VERSIONS[0],
        "capabilities": {"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {}},
        "clientInfo": client_info(),
    })
    .to_string()
    .into_bytes()
}

/// Params with the modern per-request `_meta` members added where the client did not already give
/// them (a modern client's own `_meta` is forwarded as it is).
pub fn with_modern_meta(params: Option<&[u8]>, caps: Option<&str>) -> Vec<u8> {
    let Some(params) = params else {
        let members = modern_meta_members(caps);
        return format!("{{\"_meta\":{{{members}}}}}").into_bytes();
    };
    match crate::jsonrpc::member(params, "_meta") {
        Some(raw) => {
            // Already modern, or a `_meta` that is not an object (the upstream judges it).
            if raw.first() != Some(&b'{') || crate::jsonrpc::member(raw, META_VERSION).is_some() {
                return params.to_vec();
            }
            let members = modern_meta_members(caps);
            // Insert our members at the start of the existing _meta object.
            let start = raw.as_ptr() as usize - params.as_ptr() as usize;
            let empty = raw
                .iter()
                .skip(1)
                .all(|b| b.is_ascii_whitespace() || *b == b'}');
            let mut out = Vec::with_capacity(params.len() + members.len() + 2);
            out.extend_from_slice(&params[..start + 1]);
            out.extend_from_slice(members.as_bytes());
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(&params[start + 1..]);
            out
        }
        None => {
            let members = modern_meta_members(caps);
            let open = params.iter().position(|&b| b == b'{').unwrap_or(0);
            let empty = params[open + 1..]
                .iter()
                .all(|b| b.is_ascii_whitespace() || *b == b'}');
            let mut out = Vec::with_capacity(params.len() + members.len() + 12);
            out.extend_from_slice(&params[..open + 1]);
            out.extend_from_slice(b"\"_meta\":{");
            out.extend_from_slice(members.as_bytes());
            out.push(b'}');
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(&params[open + 1..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn modern_meta_is_added_once() {
        let p = v(&with_modern_meta(None, None));
        assert_eq!(p["_meta"][META_VERSION], MODERN_VERSION);
        let p = v(&with_modern_meta(Some(b"{}"), None));
        assert_eq!(p["_meta"][META_CAPS], json!({}));
        let p = v(&with_modern_meta(
            Some(br#"{"name":"x","_meta":{"progressToken":5}}"#),
            None,
        ));
        assert_eq!(p["_meta"]["progressToken"], 5);
        assert_eq!(p["_meta"][META_VERSION], MODERN_VERSION);
        assert_eq!(p["name"], "x");
        let p = v(&with_modern_meta(Some(br#"{"_meta":{}}"#), None));
        assert_eq!(p["_meta"][META_VERSION], MODERN_VERSION);
        let own = br#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"x":{}}}}"#;
        assert_eq!(with_modern_meta(Some(own), None), own.to_vec());
    }

    #[test]
    fn handshakes() {
        let d = json!({"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}},"instructions":"hi"});
        let h = Handshake::from_discover(&d).unwrap();
        assert_eq!(h.era, Era::Modern);
        assert_eq!(h.server_info["name"], "s");
        assert!(h.has_capability("tools") && !h.has_capability("prompts"));
        assert!(Handshake::from_discover(&json!({"supportedVersions":["2030-01-01"]})).is_none());
        let i = json!({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x","version":"1"}});
        assert_eq!(
            Handshake::from_initialize(&i).unwrap().version,
            "2025-06-18"
        );
        assert!(Handshake::from_initialize(&json!({"protocolVersion":"1999-01-01"})).is_err());
    }
}
