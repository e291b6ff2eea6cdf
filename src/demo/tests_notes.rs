//! Tests of the `notes` demo server: every tool, resource, prompt and completion, through `run`.

use serde_json::{json, Value};

use super::tests::{call, error_code, first_text, modern, req, result, session, tool_call};

fn names_of(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn catalogue() {
    let tools = result("notes", req(1, "tools/list", json!({})));
    assert_eq!(
        names_of(&tools["tools"], "name"),
        [
            "add_note",
            "list_notes",
            "get_note",
            "search_notes",
            "delete_note"
        ]
    );
    let add = &tools["tools"][0];
    assert_eq!(add["inputSchema"]["required"], json!(["title", "body"]));
    assert_eq!(add["inputSchema"]["properties"]["tags"]["type"], "array");
    assert_eq!(
        add["annotations"],
        json!({
            "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false
        })
    );
    assert_eq!(
        tools["tools"][1]["annotations"],
        json!({ "readOnlyHint": true, "openWorldHint": false })
    );
    assert_eq!(tools["tools"][4]["annotations"]["destructiveHint"], true);

    let resources = result("notes", req(1, "resources/list", json!({})));
    assert_eq!(
        names_of(&resources["resources"], "uri"),
        [
            "notes://index",
            "notes://note/1",
            "notes://note/2",
            "notes://note/3"
        ]
    );
    assert_eq!(resources["resources"][0]["mimeType"], "text/markdown");
    assert_eq!(resources["resources"][1]["title"], "Welcome to switchyard");

    let templates = result("notes", req(1, "resources/templates/list", json!({})));
    assert_eq!(
        templates["resourceTemplates"],
        json!([{
            "uriTemplate": "notes://note/{id}",
            "name": "note",
            "title": "Note by id",
            "description": "One note as Markdown; ids come from list_notes or notes://index.",
            "mimeType": "text/markdown",
        }])
    );

    let prompts = result("notes", req(1, "prompts/list", json!({})));
    assert_eq!(
        names_of(&prompts["prompts"], "name"),
        ["summarize_notes", "draft_note"]
    );
    assert_eq!(
        prompts["prompts"][0]["arguments"],
        json!([
            { "name": "tag", "description": "Only include notes with this tag.", "required": false }
        ])
    );
    assert_eq!(prompts["prompts"][1]["arguments"][0]["required"], true);
}

#[test]
fn add_get_list_search_delete() {
    let out = session(
        "notes",
        &[
            req(
                1,
                "tools/call",
                json!({ "name": "add_note", "arguments": {
                "title": " Groceries ", "body": "Milk and EGGS", "tags": ["home", "home", " ", "todo"]
            } }),
            ),
            req(
                2,
                "tools/call",
                json!({ "name": "get_note", "arguments": { "id": "4" } }),
            ),
            req(
                3,
                "tools/call",
                json!({ "name": "list_notes", "arguments": { "tag": "HOME" } }),
            ),
            req(
                4,
                "tools/call",
                json!({ "name": "search_notes", "arguments": { "query": "eggs" } }),
            ),
            req(
                5,
                "tools/call",
                json!({ "name": "delete_note", "arguments": { "id": 4 } }),
            ),
            req(
                6,
                "tools/call",
                json!({ "name": "delete_note", "arguments": { "id": "4" } }),
            ),
            req(
                7,
                "tools/call",
                json!({ "name": "get_note", "arguments": { "id": "4" } }),
            ),
            req(8, "tools/call", json!({ "name": "list_notes" })),
        ],
    );
    assert_eq!(out.len(), 8);
    let r: Vec<&Value> = out.iter().map(|o| &o["result"]).collect();
    assert_eq!(r[0]["structuredContent"], json!({ "id": "4" }));
    assert_eq!(first_text(r[0]), r#"{"id":"4"}"#);
    assert!(r[0].get("isError").is_none());
    assert_eq!(
        r[1]["structuredContent"],
        json!({
            "id": "4", "title": "Groceries", "body": "Milk and EGGS", "tags": ["home", "todo"]
        })
    );
    assert_eq!(
        r[2]["structuredContent"],
        json!({ "notes": [{ "id": "4", "title": "Groceries", "tags": ["home", "todo"] }] })
    );
    assert_eq!(names_of(&r[3]["structuredContent"]["notes"], "id"), ["4"]);
    assert_eq!(r[4]["structuredContent"], json!({ "deleted": "4" }));
    assert_eq!(r[5]["isError"], true);
    assert_eq!(first_text(r[5]), "delete_note: no note with id \"4\"");
    assert_eq!(r[6]["isError"], true);
    assert_eq!(
        names_of(&r[7]["structuredContent"]["notes"], "id"),
        ["1", "2", "3"]
    );
}

#[test]
fn search_is_case_insensitive_over_title_and_body() {
    let r = tool_call("notes", "search_notes", json!({ "query": "CHECKLIST" }));
    assert_eq!(names_of(&r["structuredContent"]["notes"], "id"), ["2"]);
    let r = tool_call("notes", "search_notes", json!({ "query": "handshake" }));
    assert_eq!(names_of(&r["structuredContent"]["notes"], "id"), ["3"]);
    let r = tool_call("notes", "search_notes", json!({ "query": "no such text" }));
    assert_eq!(r["structuredContent"], json!({ "notes": [] }));
    let r = tool_call("notes", "list_notes", json!({ "tag": "intro" }));
    assert_eq!(names_of(&r["structuredContent"]["notes"], "id"), ["1", "3"]);
}

#[test]
fn tool_errors_and_bad_arguments() {
    // Execution failures: isError results.
    let r = tool_call("notes", "add_note", json!({ "title": "  ", "body": "x" }));
    assert_eq!(r["isError"], true);
    let r = tool_call("notes", "get_note", json!({ "id": "abc" }));
    assert_eq!(r["isError"], true);
    // Schema violations and unknown tools: -32602.
    let bad = [
        json!({ "name": "add_note", "arguments": { "title": "t" } }),
        json!({ "name": "add_note", "arguments": { "title": "t", "body": 5 } }),
        json!({ "name": "add_note", "arguments": { "title": "t", "body": "b", "tags": "x" } }),
        json!({ "name": "add_note", "arguments": { "title": "t", "body": "b", "tags": [1] } }),
        json!({ "name": "get_note", "arguments": {} }),
        json!({ "name": "get_note", "arguments": { "id": -1 } }),
        json!({ "name": "list_notes", "arguments": { "tag": 3 } }),
        json!({ "name": "search_notes" }),
        json!({ "name": "delete_note", "arguments": { "id": true } }),
        json!({ "name": "no_such_tool", "arguments": {} }),
    ];
    for params in bad {
        let r = call("notes", req(1, "tools/call", params.clone()));
        assert_eq!(error_code(&r), -32602, "{params}");
    }
    let r = call(
        "notes",
        req(
            1,
            "tools/call",
            json!({ "name": "get_note", "arguments": {} }),
        ),
    );
    assert_eq!(r["error"]["data"], json!({ "argument": "id" }));
}

#[test]
fn resources_read() {
    let r = result(
        "notes",
        req(1, "resources/read", json!({ "uri": "notes://index" })),
    );
    let index = &r["contents"][0];
    assert_eq!(index["uri"], "notes://index");
    assert_eq!(index["mimeType"], "text/markdown");
    let text = index["text"].as_str().unwrap();
    assert!(text.starts_with("# Notes\n"), "{text}");
    assert!(
        text.contains("- [Gateway checklist](notes://note/2) (tags: ops)"),
        "{text}"
    );

    let r = result(
        "notes",
        req(1, "resources/read", json!({ "uri": "notes://note/3" })),
    );
    assert_eq!(r["contents"][0]["uri"], "notes://note/3");
    let text = r["contents"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("# Protocol eras\n\n"), "{text}");
    assert!(text.ends_with("Tags: mcp, intro\n"), "{text}");

    for uri in [
        "notes://note/9",
        "notes://note/",
        "notes://note/x",
        "notes://other",
        "util://about",
    ] {
        let r = call("notes", req(1, "resources/read", json!({ "uri": uri })));
        assert_eq!(error_code(&r), -32002, "{uri}");
    }
}

#[test]
fn resources_follow_the_store() {
    let out = session(
        "notes",
        &[
            req(
                1,
                "tools/call",
                json!({ "name": "add_note", "arguments": { "title": "New", "body": "b" } }),
            ),
            req(
                2,
                "tools/call",
                json!({ "name": "delete_note", "arguments": { "id": "1" } }),
            ),
            req(3, "resources/list", json!({})),
            req(4, "resources/read", json!({ "uri": "notes://note/4" })),
            req(5, "resources/read", json!({ "uri": "notes://note/1" })),
            modern(6, "resources/list", json!({})),
            modern(7, "resources/read", json!({ "uri": "notes://note/4" })),
            modern(8, "tools/list", json!({})),
        ],
    );
    assert_eq!(
        names_of(&out[2]["result"]["resources"], "uri"),
        [
            "notes://index",
            "notes://note/2",
            "notes://note/3",
            "notes://note/4"
        ]
    );
    assert_eq!(
        out[3]["result"]["contents"][0]["text"],
        "# New\n\nb\n\nTags: (none)\n"
    );
    assert_eq!(error_code(&out[4]), -32002);
    // Note-derived results are volatile and private; the static catalogue is public.
    for i in [5, 6] {
        assert_eq!(out[i]["result"]["ttlMs"], 0);
        assert_eq!(out[i]["result"]["cacheScope"], "private");
    }
    assert_eq!(out[7]["result"]["ttlMs"], 300000);
    assert_eq!(out[7]["result"]["cacheScope"], "public");
}

#[test]
fn prompts_get() {
    let r = result(
        "notes",
        req(1, "prompts/get", json!({ "name": "summarize_notes" })),
    );
    assert_eq!(r["description"], "Summarize notes");
    assert_eq!(r["messages"][0]["role"], "user");
    assert_eq!(r["messages"][0]["content"]["type"], "text");
    let text = r["messages"][0]["content"]["text"].as_str().unwrap();
    for title in [
        "Welcome to switchyard",
        "Gateway checklist",
        "Protocol eras",
    ] {
        assert!(text.contains(&format!("## {title}")), "{text}");
    }

    let r = result(
        "notes",
        req(
            1,
            "prompts/get",
            json!({ "name": "summarize_notes", "arguments": { "tag": "ops" } }),
        ),
    );
    let text = r["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("tagged \"ops\"")
            && text.contains("Gateway checklist")
            && !text.contains("Protocol eras")
    );

    let r = result(
        "notes",
        req(
            1,
            "prompts/get",
            json!({ "name": "summarize_notes", "arguments": { "tag": "none" } }),
        ),
    );
    assert!(r["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("(no notes match)"));

    let r = result(
        "notes",
        req(
            1,
            "prompts/get",
            json!({ "name": "draft_note", "arguments": { "topic": "rust" } }),
        ),
    );
    let text = r["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("\"rust\"") && text.contains("add_note"),
        "{text}"
    );

    for params in [
        json!({ "name": "draft_note" }),
        json!({ "name": "draft_note", "arguments": { "topic": 1 } }),
        json!({ "name": "summarize_notes", "arguments": { "tag": ["x"] } }),
        json!({ "name": "nope" }),
    ] {
        assert_eq!(
            error_code(&call("notes", req(1, "prompts/get", params.clone()))),
            -32602,
            "{params}"
        );
    }
}

#[test]
fn completions() {
    let complete = |reference: Value, name: &str, value: &str| {
        call(
            "notes",
            req(
                1,
                "completion/complete",
                json!({ "ref": reference, "argument": { "name": name, "value": value } }),
            ),
        )
    };
    let template = json!({ "type": "ref/resource", "uri": "notes://note/{id}" });
    let r = complete(template.clone(), "id", "");
    assert_eq!(
        r["result"],
        json!({ "completion": { "values": ["1", "2", "3"], "total": 3, "hasMore": false } })
    );
    assert_eq!(
        complete(template.clone(), "id", "2")["result"]["completion"]["values"],
        json!(["2"])
    );
    assert_eq!(
        complete(template.clone(), "id", "9")["result"]["completion"]["values"],
        json!([])
    );
    assert_eq!(
        complete(template, "other", "")["result"]["completion"]["values"],
        json!([])
    );

    let summarize = json!({ "type": "ref/prompt", "name": "summarize_notes" });
    let r = complete(summarize.clone(), "tag", "");
    assert_eq!(
        r["result"]["completion"]["values"],
        json!(["intro", "mcp", "ops", "switchyard"])
    );
    assert_eq!(
        complete(summarize, "tag", "I")["result"]["completion"]["values"],
        json!(["intro"])
    );
    let draft = json!({ "type": "ref/prompt", "name": "draft_note" });
    assert_eq!(
        complete(draft, "topic", "x")["result"]["completion"]["values"],
        json!([])
    );

    assert_eq!(
        error_code(&complete(
            json!({ "type": "ref/prompt", "name": "nope" }),
            "x",
            ""
        )),
        -32602
    );
    assert_eq!(
        error_code(&complete(
            json!({ "type": "ref/resource", "uri": "notes://index" }),
            "x",
            ""
        )),
        -32602
    );

    // The 2026-07-28 form works too.
    let r = result(
        "notes",
        modern(
            1,
            "completion/complete",
            json!({
                "ref": { "type": "ref/resource", "uri": "notes://note/{id}" }, "argument": { "name": "id", "value": "1" }
            }),
        ),
    );
    assert_eq!(r["completion"]["values"], json!(["1"]));
    assert_eq!(r["resultType"], "complete");
}

#[test]
fn completion_values_are_capped() {
    let mut lines: Vec<String> = (0..120)
        .map(|i| req(i, "tools/call", json!({ "name": "add_note", "arguments": { "title": format!("n{i}"), "body": "" } })))
        .collect();
    lines.push(req(999, "completion/complete", json!({
        "ref": { "type": "ref/resource", "uri": "notes://note/{id}" }, "argument": { "name": "id", "value": "" }
    })));
    let out = session("notes", &lines);
    let completion = &out[120]["result"]["completion"];
    assert_eq!(completion["values"].as_array().map(Vec::len), Some(100));
    assert_eq!(completion["total"], 123);
    assert_eq!(completion["hasMore"], true);
}
