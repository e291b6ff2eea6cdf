//! Tests of the `util` demo server: every tool, resource, prompt and completion, through `run`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::tests::{call, error_code, first_text, modern, req, result, session, tool_call};

fn names_of(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn bad_call(name: &str, arguments: Value) -> i64 {
    error_code(&call(
        "util",
        req(
            1,
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        ),
    ))
}

#[test]
fn catalogue() {
    let tools = result("util", req(1, "tools/list", json!({})));
    assert_eq!(
        names_of(&tools["tools"], "name"),
        [
            "echo",
            "add",
            "word_count",
            "sha256",
            "random_id",
            "sleep_ms",
            "fail",
            "toggle_converter"
        ]
    );
    let add = &tools["tools"][1];
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]));
    assert_eq!(add["inputSchema"]["properties"]["a"]["type"], "number");
    assert_eq!(add["outputSchema"]["required"], json!(["sum"]));
    assert_eq!(
        tools["tools"][4]["inputSchema"],
        json!({ "type": "object", "properties": {}, "required": [] })
    );
    assert_eq!(
        tools["tools"][5]["inputSchema"]["properties"]["ms"]["maximum"],
        10000
    );
    for tool in tools["tools"].as_array().unwrap() {
        if tool["name"] == "toggle_converter" {
            continue;
        }
        assert_eq!(
            tool["annotations"],
            json!({ "readOnlyHint": true, "openWorldHint": false }),
            "{tool}"
        );
    }

    let resources = result("util", req(1, "resources/list", json!({})));
    assert_eq!(
        resources["resources"],
        json!([
            { "uri": "util://about", "name": "about", "title": "About this server",
              "description": "What the util demo server is for.", "mimeType": "text/plain" },
            { "uri": "util://config", "name": "config", "title": "Server configuration",
              "description": "Limits and settings, as JSON.", "mimeType": "application/json" },
        ])
    );
    assert_eq!(
        result("util", req(1, "resources/templates/list", json!({}))),
        json!({ "resourceTemplates": [] })
    );

    let prompts = result("util", req(1, "prompts/list", json!({})));
    assert_eq!(
        names_of(&prompts["prompts"], "name"),
        ["code_review", "explain"]
    );
    assert_eq!(
        names_of(&prompts["prompts"][1]["arguments"], "name"),
        ["topic", "level"]
    );
    assert_eq!(prompts["prompts"][1]["arguments"][1]["required"], false);
}

#[test]
fn echo_add_word_count_sha256() {
    let r = tool_call("util", "echo", json!({ "message": "héllo\nworld" }));
    assert_eq!(
        r,
        json!({ "content": [{ "type": "text", "text": "héllo\nworld" }] })
    );

    let r = tool_call("util", "add", json!({ "a": 2, "b": 3 }));
    assert_eq!(r["structuredContent"], json!({ "sum": 5 }));
    assert_eq!(first_text(&r), r#"{"sum":5}"#);
    assert_eq!(
        tool_call("util", "add", json!({ "a": 1.5, "b": -4 }))["structuredContent"]["sum"],
        -2.5
    );
    let r = tool_call("util", "add", json!({ "a": i64::MAX, "b": 1 }));
    assert_eq!(r["structuredContent"]["sum"], 9_223_372_036_854_775_808.0);
    let r = tool_call("util", "add", json!({ "a": 1e308, "b": 1e308 }));
    assert_eq!(r["isError"], true);

    let r = tool_call(
        "util",
        "word_count",
        json!({ "text": "one two  three\nfour é" }),
    );
    assert_eq!(
        r["structuredContent"],
        json!({ "words": 5, "characters": 21, "lines": 2 })
    );
    let r = tool_call("util", "word_count", json!({ "text": "" }));
    assert_eq!(
        r["structuredContent"],
        json!({ "words": 0, "characters": 0, "lines": 0 })
    );

    let r = tool_call("util", "sha256", json!({ "text": "abc" }));
    assert_eq!(
        first_text(&r),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let r = tool_call("util", "sha256", json!({ "text": "" }));
    assert_eq!(
        first_text(&r),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn random_id_is_uuid_v4_shaped_and_fresh() {
    let a = tool_call("util", "random_id", json!({}));
    let b = tool_call("util", "random_id", json!(null));
    let (a, b) = (first_text(&a), first_text(&b));
    assert_ne!(a, b);
    for id in [a, b] {
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(
            id.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{id}"
        );
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(
            matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{id}"
        );
    }
}

#[test]
fn sleep_ms_blocks_within_bounds() {
    let start = Instant::now();
    let r = tool_call("util", "sleep_ms", json!({ "ms": 30 }));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(first_text(&r), "slept 30 ms");
    assert_eq!(
        first_text(&tool_call("util", "sleep_ms", json!({ "ms": 0 }))),
        "slept 0 ms"
    );
    for ms in [
        json!(10_001),
        json!(-1),
        json!(1.5),
        json!("5"),
        Value::Null,
    ] {
        assert_eq!(bad_call("sleep_ms", json!({ "ms": ms })), -32602, "{ms}");
    }
}

#[test]
fn fail_returns_an_error_result() {
    let r = tool_call("util", "fail", json!({ "message": "it broke" }));
    assert_eq!(
        r,
        json!({ "content": [{ "type": "text", "text": "it broke" }], "isError": true })
    );
}

#[test]
fn bad_arguments_are_invalid_params() {
    assert_eq!(bad_call("echo", json!({})), -32602);
    assert_eq!(bad_call("echo", json!({ "message": 1 })), -32602);
    assert_eq!(bad_call("add", json!({ "a": 1 })), -32602);
    assert_eq!(bad_call("add", json!({ "a": "1", "b": 2 })), -32602);
    assert_eq!(bad_call("word_count", json!({ "text": null })), -32602);
    assert_eq!(bad_call("sha256", json!({ "text": ["a"] })), -32602);
    assert_eq!(bad_call("fail", json!({})), -32602);
    assert_eq!(bad_call("nope", json!({})), -32602);
    let r = call(
        "util",
        req(
            1,
            "tools/call",
            json!({ "name": "add", "arguments": { "a": 1 } }),
        ),
    );
    assert_eq!(
        r["error"]["message"],
        "Invalid arguments for tool `add`: `b` is required and must be a number"
    );
    // Extra arguments are ignored.
    assert_eq!(
        first_text(&tool_call(
            "util",
            "echo",
            json!({ "message": "m", "extra": 1 })
        )),
        "m"
    );
}

#[test]
fn resources_read() {
    let r = result(
        "util",
        req(1, "resources/read", json!({ "uri": "util://about" })),
    );
    assert_eq!(r["contents"][0]["uri"], "util://about");
    assert_eq!(r["contents"][0]["mimeType"], "text/plain");
    assert!(r["contents"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("switchyard-demo-util "));

    let r = result(
        "util",
        req(1, "resources/read", json!({ "uri": "util://config" })),
    );
    assert_eq!(r["contents"][0]["mimeType"], "application/json");
    let config: Value = serde_json::from_str(r["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(config["limits"]["sleepMsMax"], 10000);
    assert_eq!(config["randomId"]["cryptographic"], false);

    let r = call(
        "util",
        req(1, "resources/read", json!({ "uri": "util://nope" })),
    );
    assert_eq!(error_code(&r), -32002);
    assert_eq!(r["error"]["data"]["uri"], "util://nope");
}

#[test]
fn prompts_get() {
    let r = result(
        "util",
        req(
            1,
            "prompts/get",
            json!({
                "name": "code_review", "arguments": { "language": "rust", "code": "fn main() {}" }
            }),
        ),
    );
    assert_eq!(r["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["messages"][0]["role"], "user");
    let text = r["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(text.contains("```rust\nfn main() {}\n```"), "{text}");

    let explain = |args: Value| {
        call(
            "util",
            req(
                1,
                "prompts/get",
                json!({ "name": "explain", "arguments": args }),
            ),
        )
    };
    let beginner = explain(json!({ "topic": "DNS" }));
    assert!(beginner["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("DNS to a beginner"));
    assert_eq!(
        beginner,
        explain(json!({ "topic": "DNS", "level": "beginner" }))
    );
    let expert = explain(json!({ "topic": "DNS", "level": "expert" }));
    assert!(expert["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("DNS to an expert"));

    assert_eq!(
        error_code(&explain(json!({ "topic": "DNS", "level": "guru" }))),
        -32602
    );
    assert_eq!(error_code(&explain(json!({}))), -32602);
    assert_eq!(
        error_code(&call(
            "util",
            req(
                1,
                "prompts/get",
                json!({ "name": "code_review", "arguments": { "language": "c" } })
            )
        )),
        -32602
    );
    assert_eq!(
        error_code(&call(
            "util",
            req(1, "prompts/get", json!({ "name": "nope" }))
        )),
        -32602
    );
}

#[test]
fn completions() {
    let complete = |name: &str, argument: &str, value: &str| {
        call(
            "util",
            req(
                1,
                "completion/complete",
                json!({
                    "ref": { "type": "ref/prompt", "name": name }, "argument": { "name": argument, "value": value },
                    "context": { "arguments": { "topic": "x" } }
                }),
            ),
        )
    };
    let r = complete("explain", "level", "");
    assert_eq!(
        r["result"],
        json!({ "completion": { "values": ["beginner", "expert"], "total": 2, "hasMore": false } })
    );
    assert_eq!(
        complete("explain", "level", "E")["result"]["completion"]["values"],
        json!(["expert"])
    );
    assert_eq!(
        complete("explain", "level", "z")["result"]["completion"]["values"],
        json!([])
    );
    assert_eq!(
        complete("explain", "topic", "")["result"]["completion"]["values"],
        json!([])
    );
    assert_eq!(
        complete("code_review", "language", "ja")["result"]["completion"]["values"],
        json!(["java", "javascript"])
    );
    assert_eq!(error_code(&complete("nope", "x", "")), -32602);
    let r = call(
        "util",
        req(
            1,
            "completion/complete",
            json!({
                "ref": { "type": "ref/resource", "uri": "util://{x}" }, "argument": { "name": "x", "value": "" }
            }),
        ),
    );
    assert_eq!(error_code(&r), -32602);
}

/// `toggle_converter` adds `convert_temperature`, announces it after its own response, and a
/// second toggle takes it away again (calls to it then fail like any unknown tool).
#[test]
fn toggle_changes_the_tool_list() {
    let convert = |id| {
        req(
            id,
            "tools/call",
            json!({ "name": "convert_temperature", "arguments": { "value": 100, "from": "celsius", "to": "fahrenheit" } }),
        )
    };
    let toggle = |id| req(id, "tools/call", json!({ "name": "toggle_converter" }));
    let out = session(
        "util",
        &[
            convert(1),
            toggle(2),
            req(3, "tools/list", json!({})),
            convert(4),
            modern(5, "tools/list", json!({})),
            toggle(6),
            req(7, "tools/list", json!({})),
            convert(8),
        ],
    );
    let listed = |v: &Value| {
        names_of(&v["result"]["tools"], "name").contains(&"convert_temperature".to_owned())
    };
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" });
    assert_eq!(out.len(), 10, "{out:?}");
    assert_eq!(error_code(&out[0]), -32602);
    assert_eq!(
        out[1]["result"]["structuredContent"],
        json!({ "enabled": true })
    );
    assert_eq!(out[2], note);
    assert!(listed(&out[3]));
    assert_eq!(
        out[4]["result"]["structuredContent"],
        json!({ "value": 212.0 })
    );
    assert!(listed(&out[5]));
    // A list that can change is not cacheable.
    assert_eq!(out[5]["result"]["ttlMs"], 0);
    assert_eq!(
        out[6]["result"]["structuredContent"],
        json!({ "enabled": false })
    );
    assert_eq!(out[7], note);
    assert!(!listed(&out[8]));
    assert_eq!(error_code(&out[9]), -32602);

    let on = |args: Value| {
        session(
            "util",
            &[
                toggle(1),
                req(
                    2,
                    "tools/call",
                    json!({ "name": "convert_temperature", "arguments": args }),
                ),
            ],
        )
        .remove(2)
    };
    let cold = on(json!({ "value": -500, "from": "celsius", "to": "kelvin" }));
    assert_eq!(cold["result"]["isError"], true, "{cold}");
    let bad = on(json!({ "value": 1, "from": "rankine", "to": "kelvin" }));
    assert_eq!(error_code(&bad), -32602);
    let k = on(json!({ "value": 32, "from": "fahrenheit", "to": "kelvin" }));
    assert_eq!(k["result"]["structuredContent"]["value"], 273.15);
}
