//! CORS for browser-based clients: answers to a request whose `Origin` passed the Origin check
//! (loopback or `gateway.allowed_origins`) carry `Access-Control-Allow-Origin` (the origin echoed,
//! never `*`, with `Vary: Origin`) and expose the MCP headers a client must read; a preflight
//! (`OPTIONS`) names the methods and request headers MCP uses. No cookies are involved, so no
//! `Access-Control-Allow-Credentials`.

use crate::http::server::Response;

/// Methods of the MCP endpoint.
pub const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";

/// Request headers a browser client may send.
pub const ALLOW_HEADERS: &str = "Authorization, X-API-Key, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, traceparent";

/// Response headers a browser client may read.
pub const EXPOSE_HEADERS: &str =
    "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After";

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_S: &str = "600";

/// Add the CORS headers for an allowed `origin` to an answer.
pub fn decorate(resp: Response, origin: &str) -> Response {
    resp.header("Access-Control-Allow-Origin", origin)
        .header("Access-Control-Expose-Headers", EXPOSE_HEADERS)
        .header("Vary", "Origin")
}

/// The answer to a preflight (or a plain `OPTIONS`) of the MCP endpoint.
pub fn preflight(origin: Option<&str>) -> Response {
    let resp = Response::new(204).header("Allow", ALLOW_METHODS);
    match origin {
        Some(o) => resp
            .header("Access-Control-Allow-Origin", o)
            .header("Access-Control-Allow-Methods", ALLOW_METHODS)
            .header("Access-Control-Allow-Headers", ALLOW_HEADERS)
            .header("Access-Control-Max-Age", MAX_AGE_S)
            .header("Vary", "Origin"),
        None => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn echo_the_origin_and_expose_the_mcp_headers() {
        let r = decorate(Response::new(200), "https://app.example.com");
        assert_eq!(
            get(&r, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get(&r, "vary"), Some("Origin"));
        let exposed = get(&r, "access-control-expose-headers").unwrap_or("");
        for h in ["Mcp-Session-Id", "MCP-Protocol-Version", "WWW-Authenticate"] {
            assert!(exposed.contains(h), "{h}");
        }
        let p = preflight(Some("http://localhost:6274"));
        assert_eq!(p.status, 204);
        let allowed = get(&p, "access-control-allow-headers").unwrap_or("");
        for h in [
            "Authorization",
            "X-API-Key",
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "Mcp-Method",
            "Mcp-Name",
            "Last-Event-ID",
        ] {
            assert!(allowed.contains(h), "{h}");
        }
        assert!(get(&preflight(None), "access-control-allow-origin").is_none());
    }
}
