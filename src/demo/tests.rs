//! Tests of the shared demo-server machinery: framing, JSON-RPC errors, the legacy lifecycle and
//! the stateless 2026-07-28 path. Also the scripted-session harness used by the server tests.

use std::io::Cursor;

use serde_json::{json, Value};

use super::{names, run, DemoError};

/// Runs `server` over `lines` (each one input line, sent verbatim) and returns the parsed output lines.
pub(super) fn session(server: &str, lines: &[String]) -> Vec<Value> {
    let mut input = lines.join("\n");
    input.push('\n');
    let mut output = Vec::new();
    run(server, Cursor::new(input), &mut output).expect("run succeeds on in-memory I/O");
    let text = String::from_utf8(output).expect("output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every message ends with a newline"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each output line is one JSON object"))
        .collect()
}

/// A request line with id `id`.
pub(super) fn req(id: u64, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// A request line carrying the 2026-07-28 `_meta` envelope.
pub(super) fn modern(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "0" },
    });
    req(id, method, params)
}

/// The single response to one request sent to `server`.
pub(super) fn call(server: &str, line: String) -> Value {
    let mut out = session(server, &[line]);
    assert_eq!(out.len(), 1, "exactly one response: {out:?}");
    out.remove(0)
}

pub(super) fn result(server: &str, line: String) -> Value {
    let response = call(server, line);
    assert!(
        response.get("error").is_none(),
        "unexpected error: {response}"
    );
    response["result"].clone()
}

pub(super) fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error response: {response}"))
}

/// `tools/call` of `name` with `arguments` (legacy framing).
pub(super) fn tool_call(server: &str, name: &str, arguments: Value) -> Value {
    result(
        server,
        req(
            1,
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        ),
    )
}

/// The text of the first content block of a tool result.
pub(super) fn first_text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {result}"))
}

#[test]
fn names_and_unknown_server() {
    assert_eq!(names(), &["notes", "util"]);
    let err = run("nope", Cursor::new(""), Vec::new()).unwrap_err();
    assert!(matches!(err, DemoError::UnknownServer { ref name } if name == "nope"));
    assert_eq!(
        err.to_string(),
        "unknown demo server `nope`; valid names: notes, util"
    );
}

#[test]
fn io_errors_surface() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = run("util", Cursor::new(req(1, "ping", json!({}))), Broken).unwrap_err();
    assert!(matches!(err, DemoError::Io(_)), "{err}");
}

#[test]
fn empty_input_and_blank_lines() {
    for name in names() {
        assert!(session(name, &[]).is_empty());
        assert!(session(name, &[String::new(), "  \r".into()]).is_empty());
    }
}

#[test]
fn legacy_initialize_negotiates_versions() {
    for name in names() {
        for (asked, answered) in [
            ("2025-11-25", "2025-11-25"),
            ("2025-06-18", "2025-06-18"),
            ("2025-03-26", "2025-03-26"),
            ("2024-11-05", "2024-11-05"),
            ("2026-07-28", "2025-11-25"),
            ("1999-01-01", "2025-11-25"),
        ] {
            let params = json!({ "protocolVersion": asked, "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } });
            let r = result(name, req(1, "initialize", params));
            assert_eq!(r["protocolVersion"], answered);
            assert_eq!(
                r["serverInfo"],
                json!({
                    "name": format!("switchyard-demo-{name}"),
                    "title": format!("switchyard demo: {name}"),
                    "version": env!("CARGO_PKG_VERSION"),
                })
            );
            assert_eq!(
                r["capabilities"],
                json!({
                    "tools": { "listChanged": *name == "util" },
                    "resources": { "subscribe": false, "listChanged": false },
                    "prompts": { "listChanged": false },
                    "completions": {},
                    "logging": {},
                })
            );
            assert!(r["instructions"].as_str().is_some_and(|s| !s.is_empty()));
            assert!(
                r.get("resultType").is_none(),
                "legacy results carry no resultType"
            );
        }
        let r = result(name, req(1, "initialize", json!({})));
        assert_eq!(r["protocolVersion"], "2025-11-25");
    }
}

#[test]
fn legacy_lifecycle_session() {
    let out = session(
        "util",
        &[
            req(1, "initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {} })),
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
            req(2, "ping", json!({})),
            req(3, "logging/setLevel", json!({ "level": "warning" })),
            req(4, "logging/setLevel", json!({ "level": "loud" })),
            json!({ "jsonrpc": "2.0", "method": "notifications/whatever", "params": { "x": 1 } }).to_string(),
            json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 2 } }).to_string(),
            json!({ "jsonrpc": "2.0", "id": "s", "method": "ping" }).to_string(),
        ],
    );
    assert_eq!(out.len(), 5, "notifications get no response: {out:?}");
    assert_eq!(out[0]["id"], 1);
    assert_eq!(out[1], json!({ "jsonrpc": "2.0", "id": 2, "result": {} }));
    assert_eq!(out[2], json!({ "jsonrpc": "2.0", "id": 3, "result": {} }));
    assert_eq!(error_code(&out[3]), -32602);
    assert_eq!(out[3]["id"], 4);
    assert_eq!(out[4], json!({ "jsonrpc": "2.0", "id": "s", "result": {} }));
}

#[test]
fn requests_before_initialize_are_served() {
    let r = result("notes", req(7, "tools/list", json!({})));
    assert_eq!(r["tools"].as_array().map(Vec::len), Some(5));
    assert_eq!(result("util", req(1, "ping", json!(null))), json!({}));
}

#[test]
fn parse_error_and_invalid_requests() {
    let cases: Vec<(&str, Value)> = vec![
        ("{not json", Value::Null),
        ("\u{1}", Value::Null),
        (r#"{"jsonrpc":"2.0","id":1,"method":"ping""#, Value::Null),
    ];
    for (line, id) in cases {
        let r = call("util", line.to_owned());
        assert_eq!(error_code(&r), -32700, "{line}");
        assert_eq!(r["id"], id);
        assert_eq!(r["jsonrpc"], "2.0");
    }
    // Invalid UTF-8 is a parse error, not a crash.
    let mut output = Vec::new();
    run("util", Cursor::new(b"\xff\xfe\n".to_vec()), &mut output).unwrap();
    let r: Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(error_code(&r), -32700);

    let invalid: Vec<(Value, Value)> = vec![
        (json!([]), Value::Null),
        (
            json!([{ "jsonrpc": "2.0", "id": 1, "method": "ping" }]),
            Value::Null,
        ),
        (json!(42), Value::Null),
        (json!({ "id": 1, "method": "ping" }), json!(1)),
        (
            json!({ "jsonrpc": "1.0", "id": "a", "method": "ping" }),
            json!("a"),
        ),
        (json!({ "jsonrpc": "2.0", "id": 2, "method": 5 }), json!(2)),
        (json!({ "jsonrpc": "2.0", "id": 3 }), json!(3)),
        (
            json!({ "jsonrpc": "2.0", "id": null, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 1.5, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": { "x": 1 }, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 4, "method": "ping", "params": "x" }),
            json!(4),
        ),
    ];
    for (message, id) in invalid {
        let r = call("notes", message.to_string());
        assert_eq!(error_code(&r), -32600, "{message}");
        assert_eq!(r["id"], id, "{message}");
    }
    // Array params are valid JSON-RPC but not MCP: invalid params.
    let r = call(
        "notes",
        json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": [] }).to_string(),
    );
    assert_eq!(error_code(&r), -32602);
}

#[test]
fn unknown_methods_and_silent_messages() {
    for name in names() {
        let r = call(name, req(1, "tools/frobnicate", json!({})));
        assert_eq!(error_code(&r), -32601);
        assert_eq!(r["id"], 1);
        assert_eq!(
            error_code(&call(
                name,
                req(2, "resources/subscribe", json!({ "uri": "x" }))
            )),
            -32601
        );
        assert_eq!(
            error_code(&call(name, req(3, "notifications/initialized", json!({})))),
            -32601
        );
        // Notifications (known, unknown, even with bad params) and client responses: no output.
        let quiet = session(
            name,
            &[
                json!({ "jsonrpc": "2.0", "method": "tools/frobnicate" }).to_string(),
                json!({ "jsonrpc": "2.0", "method": "tools/call", "params": [] }).to_string(),
                json!({ "jsonrpc": "2.0", "id": 5, "result": {} }).to_string(),
                json!({ "jsonrpc": "2.0", "id": 6, "error": { "code": 1, "message": "x" } })
                    .to_string(),
            ],
        );
        assert!(quiet.is_empty(), "{quiet:?}");
    }
}

#[test]
fn bad_feature_params() {
    let bad = [
        req(1, "tools/call", json!({})),
        req(1, "tools/call", json!({ "name": 3 })),
        req(1, "tools/call", json!({ "name": "echo", "arguments": [] })),
        req(1, "tools/list", json!({ "cursor": "abc" })),
        req(1, "prompts/list", json!({ "cursor": "abc" })),
        req(1, "resources/list", json!({ "cursor": "abc" })),
        req(1, "resources/templates/list", json!({ "cursor": "abc" })),
        req(1, "resources/read", json!({})),
        req(1, "prompts/get", json!({})),
        req(
            1,
            "prompts/get",
            json!({ "name": "explain", "arguments": "x" }),
        ),
        req(1, "completion/complete", json!({})),
        req(
            1,
            "completion/complete",
            json!({ "ref": { "type": "ref/other" }, "argument": { "name": "a", "value": "" } }),
        ),
        req(
            1,
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "explain" } }),
        ),
        req(
            1,
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "explain" }, "argument": { "name": "level" } }),
        ),
        req(
            1,
            "completion/complete",
            json!({ "ref": { "type": "ref/resource" }, "argument": { "name": "id", "value": "" } }),
        ),
    ];
    for line in bad {
        assert_eq!(error_code(&call("util", line.clone())), -32602, "{line}");
    }
    // A null cursor is the same as none.
    assert!(result("util", req(1, "tools/list", json!({ "cursor": null })))["tools"].is_array());
}

#[test]
fn modern_discover() {
    for name in names() {
        let r = result(name, modern(1, "server/discover", json!({})));
        assert_eq!(
            r,
            json!({
                "resultType": "complete",
                "supportedVersions": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
                "capabilities": {
                    "tools": { "listChanged": *name == "util" },
                    "resources": { "subscribe": false, "listChanged": false },
                    "prompts": { "listChanged": false },
                    "completions": {},
                },
                "instructions": r["instructions"].clone(),
                "_meta": { "io.modelcontextprotocol/serverInfo": {
                    "name": format!("switchyard-demo-{name}"),
                    "title": format!("switchyard demo: {name}"),
                    "version": env!("CARGO_PKG_VERSION"),
                } },
                "ttlMs": 300000,
                "cacheScope": "public",
            })
        );
        assert!(r["instructions"].as_str().is_some_and(|s| s.ends_with('.')));
        // The stdio probe may come without `_meta`; it is still answered.
        assert_eq!(
            result(name, req(2, "server/discover", json!({})))["supportedVersions"][0],
            "2026-07-28"
        );
    }
}

#[test]
fn modern_requests_need_no_handshake() {
    let out = session(
        "util",
        &[
            modern(1, "tools/list", json!({})),
            modern(
                2,
                "tools/call",
                json!({ "name": "echo", "arguments": { "message": "hi" } }),
            ),
            modern(3, "prompts/list", json!({})),
            modern(4, "resources/list", json!({})),
            modern(5, "resources/templates/list", json!({})),
            modern(6, "resources/read", json!({ "uri": "util://about" })),
            modern(
                7,
                "prompts/get",
                json!({ "name": "explain", "arguments": { "topic": "tcp" } }),
            ),
            modern(
                8,
                "completion/complete",
                json!({
                    "ref": { "type": "ref/prompt", "name": "explain" }, "argument": { "name": "level", "value": "" }
                }),
            ),
        ],
    );
    assert_eq!(out.len(), 8);
    for (i, response) in out.iter().enumerate() {
        assert_eq!(response["id"], i + 1);
        let r = &response["result"];
        assert_eq!(r["resultType"], "complete", "{response}");
        assert_eq!(
            r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "switchyard-demo-util"
        );
        // tools/list, prompts/list, resources/list, resources/templates/list, resources/read.
        let is_cacheable = matches!(i, 0 | 2 | 3 | 4 | 5);
        assert_eq!(r.get("ttlMs").is_some(), is_cacheable, "{response}");
        assert_eq!(r.get("cacheScope").is_some(), is_cacheable, "{response}");
    }
    assert_eq!(out[1]["result"]["content"][0]["text"], "hi");
    assert_eq!(
        out[7]["result"]["completion"]["values"],
        json!(["beginner", "expert"])
    );
}

#[test]
fn modern_errors() {
    // Unknown version: UnsupportedProtocolVersionError listing what is supported.
    let mut line: Value = serde_json::from_str(&modern(1, "tools/list", json!({}))).unwrap();
    line["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let r = call("notes", line.to_string());
    assert_eq!(
        r["error"],
        json!({
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {
                "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
                "requested": "2099-01-01",
            },
        })
    );
    line["method"] = json!("server/discover");
    assert_eq!(error_code(&call("notes", line.to_string())), -32022);
    line["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(20260728);
    assert_eq!(error_code(&call("notes", line.to_string())), -32602);

    // Methods removed in 2026-07-28.
    for method in ["initialize", "ping", "logging/setLevel"] {
        assert_eq!(
            error_code(&call("util", modern(1, method, json!({ "level": "info" })))),
            -32601,
            "{method}"
        );
    }
    // Resource not found is -32602 in 2026-07-28 and -32002 before.
    let r = call(
        "notes",
        modern(1, "resources/read", json!({ "uri": "notes://note/999" })),
    );
    assert_eq!(
        r["error"],
        json!({ "code": -32602, "message": "Resource not found", "data": { "uri": "notes://note/999" } })
    );
    let r = call(
        "notes",
        req(1, "resources/read", json!({ "uri": "notes://note/999" })),
    );
    assert_eq!(
        r["error"],
        json!({ "code": -32002, "message": "Resource not found", "data": { "uri": "notes://note/999" } })
    );
    // Other errors are the same in both eras.
    assert_eq!(
        error_code(&call(
            "util",
            modern(1, "tools/call", json!({ "name": "nope" }))
        )),
        -32602
    );
    assert_eq!(
        error_code(&call("util", modern(1, "nope/nope", json!({})))),
        -32601
    );
    // A tool failure is a complete result with isError.
    let r = result(
        "util",
        modern(
            1,
            "tools/call",
            json!({ "name": "fail", "arguments": { "message": "boom" } }),
        ),
    );
    assert_eq!(r["isError"], true);
    assert_eq!(r["resultType"], "complete");
}

#[test]
fn eras_mix_on_one_stream() {
    let out = session(
        "notes",
        &[
            req(1, "initialize", json!({ "protocolVersion": "2025-11-25" })),
            modern(2, "tools/list", json!({})),
            req(3, "tools/list", json!({})),
            // A legacy version in `_meta` is served with legacy rules.
            req(
                4,
                "tools/list",
                json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2025-06-18" } }),
            ),
        ],
    );
    assert_eq!(out[1]["result"]["resultType"], "complete");
    assert!(out[2]["result"].get("resultType").is_none());
    assert!(out[3]["result"].get("resultType").is_none());
    assert_eq!(out[1]["result"]["tools"], out[2]["result"]["tools"]);
}

#[test]
fn lists_are_deterministic() {
    for name in names() {
        let lines: Vec<String> = [
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "prompts/list",
        ]
        .iter()
        .enumerate()
        .map(|(i, m)| req(i as u64, m, json!({})))
        .collect();
        assert_eq!(session(name, &lines), session(name, &lines));
    }
}

#[test]
fn tool_entries_are_well_formed() {
    for name in names() {
        for tool in result(name, req(1, "tools/list", json!({})))["tools"]
            .as_array()
            .unwrap()
        {
            for key in ["name", "title", "description"] {
                assert!(
                    tool[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{key} of {tool}"
                );
            }
            assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
            assert!(tool["inputSchema"]["required"].is_array(), "{tool}");
            assert!(tool["inputSchema"]["properties"].is_object(), "{tool}");
            assert_eq!(tool["annotations"]["openWorldHint"], false, "{tool}");
            assert!(tool["annotations"]["readOnlyHint"].is_boolean(), "{tool}");
            if let Some(output) = tool.get("outputSchema") {
                assert_eq!(output["type"], "object", "{tool}");
            }
        }
    }
}
