//! The meta-tools an agent sees instead of the full tool list in meta-tool mode: one to find tools
//! by intent, one to call a found tool. Their definitions are what `route-eval` counts against the
//! full list; the gateway serves these same definitions.

use serde_json::{json, Value};

/// Name of the search meta-tool.
pub const SEARCH_TOOL: &str = "search_tools";
/// Name of the call meta-tool.
pub const CALL_TOOL: &str = "call_tool";
/// Results a search returns when the agent does not say.
pub const DEFAULT_LIMIT: u64 = 5;
/// Most results a search returns.
pub const MAX_LIMIT: u64 = 20;

/// The `tools` array of a meta-tool mode `tools/list`.
pub fn meta_tools() -> Value {
    json!([
        {
            "name": SEARCH_TOOL,
            "description": "Find the tools that can do a task. Describe what you want to do in plain words \
                (not a tool name); returns the best matching tools with their names, descriptions and \
                input schemas. Then call one with call_tool.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "The task or intent, in plain words"},
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                        "description": "How many tools to return"
                    }
                },
                "required": ["query"]
            },
            "annotations": {"readOnlyHint": true}
        },
        {
            "name": CALL_TOOL,
            "description": "Call a tool found with search_tools, by its exact name, with arguments that match \
                its input schema.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's name as search_tools returned it"},
                    "arguments": {"type": "object", "description": "The tool's arguments"}
                },
                "required": ["name"]
            }
        }
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_tools_with_schemas() {
        let tools = meta_tools();
        let arr = tools.as_array().map(Vec::as_slice).unwrap_or_default();
        assert_eq!(arr.len(), 2);
        for t in arr {
            assert!(t["name"].is_string());
            assert_eq!(t["inputSchema"]["type"], "object");
        }
    }
}
