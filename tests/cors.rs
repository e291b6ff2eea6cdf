//! CORS against the real binary: preflights answered for allowed origins, answers (401s included)
//! carrying the echoed origin and exposing the MCP headers, refused origins getting 403 and no
//! CORS headers.

mod common;

use common::*;
use serde_json::json;

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

const APP: &str = "https://app.example.com";

#[test]
fn allowed_origins_get_cors_headers_and_others_do_not() {
    let gw = start(&format!("allowed_origins = [\"{APP}\"]\n\n{DEMOS}"), 1);

    // Preflight: methods and every MCP request header, for the configured and a loopback origin.
    for origin in [APP, "http://localhost:6274"] {
        let (s, h, _) = request(
            gw.addr,
            "OPTIONS",
            "/mcp",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, mcp-session-id, mcp-protocol-version",
                ),
            ],
            None,
        )
        .expect("preflight");
        assert_eq!(s, 204);
        assert_eq!(header(&h, "access-control-allow-origin"), Some(origin));
        assert_eq!(header(&h, "vary"), Some("Origin"));
        let methods = header(&h, "access-control-allow-methods").unwrap_or("");
        for m in ["GET", "POST", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = header(&h, "access-control-allow-headers").unwrap_or("");
        for name in [
            "Authorization",
            "X-API-Key",
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "Mcp-Method",
            "Mcp-Name",
            "Last-Event-ID",
        ] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
    }

    // A request from the allowed origin: the origin echoed, the session header readable.
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let (s, h, _) = post(gw.addr, &[("Origin", APP)], &init);
    assert_eq!(s, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
    let exposed = header(&h, "access-control-expose-headers").unwrap_or("");
    for name in ["Mcp-Session-Id", "MCP-Protocol-Version", "WWW-Authenticate"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }

    // Another origin: 403 and no CORS headers; no Origin at all: no CORS headers either.
    let (s, h, v) = post(gw.addr, &[("Origin", "https://evil.example")], &init);
    assert_eq!((s, v["error"]["code"].as_i64()), (403, Some(-32600)), "{v}");
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    let (s, h, _) = request(
        gw.addr,
        "OPTIONS",
        "/mcp",
        &[("Origin", "https://evil.example")],
        None,
    )
    .expect("preflight");
    assert_eq!(s, 403);
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    let (s, h, _) = post(gw.addr, &[], &init);
    assert_eq!(s, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), None);
}

#[test]
fn a_browser_can_read_the_challenge_of_a_401() {
    let audit = std::env::temp_dir().join(format!("sy-cors-audit-{}.jsonl", std::process::id()));
    let gw = start_file_env(
        "config/examples/secured.toml",
        1,
        &[("SWITCHYARD_AUDIT", audit.to_str().unwrap_or_default())],
    );
    let origin = "http://localhost:6274";
    let (s, h, v) = post(
        gw.addr,
        &[
            ("Origin", origin),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/list"),
        ],
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}),
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(-31054)), "{v}");
    assert_eq!(header(&h, "access-control-allow-origin"), Some(origin));
    assert!(header(&h, "www-authenticate").is_some());
    assert!(
        header(&h, "access-control-expose-headers").is_some_and(|e| e.contains("WWW-Authenticate"))
    );
    drop(gw);
    let _ = std::fs::remove_file(&audit);
}
