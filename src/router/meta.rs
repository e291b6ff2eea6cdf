//! The meta-tools an agent sees instead of the full tool list in meta-tool mode: `find_tools` (by
//! intent), `call_tool` (a found tool, through the same policy, audit and routing as a direct call)
//! and `list_categories` (servers and their tool counts). Their names take a configurable prefix.
//! These definitions are also what `route-eval` counts against the full list.

use serde_json::{json, Value};

/// Base names; the gateway puts `[router] prefix` in front.
pub const FIND_TOOLS: &str = "find_tools";
pub const CALL_TOOL: &str = "call_tool";
pub const LIST_CATEGORIES: &str = "list_categories";
/// Results a search returns when the agent does not say.
pub const DEFAULT_TOP_K: u64 = 5;
/// Most results a search returns.
pub const MAX_TOP_K: u64 = 20;

/// The `tools` array of a meta-tool mode `tools/list`, with unprefixed names.
pub fn meta_tools() -> Value {
    meta_tools_with_prefix("")
}

/// The `tools` array with `prefix` before each name.
pub fn meta_tools_with_prefix(prefix: &str) -> Value {
    json!([
        {
            "name": format!("{prefix}{FIND_TOOLS}"),
            "description": format!("Find the tools that can do a task. Describe what you want to do in plain words \
                (not a tool name); returns the best matching tools with their names, descriptions and \
                input schemas. Then call one with {prefix}{CALL_TOOL}."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "The task or intent, in plain words"},
                    "top_k": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_TOP_K,
                        "default": DEFAULT_TOP_K,
                        "description": "How many tools to return"
                    }
                },
                "required": ["query"]
            },
            "annotations": {"readOnlyHint": true}
        },
        {
            "name": format!("{prefix}{CALL_TOOL}"),
            "description": format!("Call a tool found with {prefix}{FIND_TOOLS}, by its exact name, with arguments that \
                match its input schema."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's name as find_tools returned it"},
                    "arguments": {"type": "object", "description": "The tool's arguments"}
                },
                "required": ["name"]
            }
        },
        {
            "name": format!("{prefix}{LIST_CATEGORIES}"),
            "description": "List the servers (categories) behind this gateway and how many tools each offers you.",
            "inputSchema": {"type": "object", "properties": {}},
            "annotations": {"readOnlyHint": true}
        }
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_tools_with_schemas_and_prefix() {
        let tools = meta_tools_with_prefix("gw_");
        let arr = tools.as_array().map(Vec::as_slice).unwrap_or_default();
        assert_eq!(arr.len(), 3);
        assert_eq!(arr[0]["name"], "gw_find_tools");
        assert_eq!(arr[2]["name"], "gw_list_categories");
        for t in arr {
            assert_eq!(t["inputSchema"]["type"], "object");
        }
    }
}
