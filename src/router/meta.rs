//! The meta-tools an agent sees instead of the full tool list in meta-tool mode: `find_tools` (by
//! intent), `call_tool` (a found tool, through the same policy, audit and routing as a direct call)
//! and `list_categories` (servers and their tool counts). Their names are configurable, and take a
//! configurable prefix. These definitions are also what `route-eval` counts against the full list.

use serde_json::{json, Value};

/// Default names; `[router] find_tools_name` (…) replace them, and `[router] prefix` goes in front.
pub const FIND_TOOLS: &str = "find_tools";
pub const CALL_TOOL: &str = "call_tool";
pub const LIST_CATEGORIES: &str = "list_categories";
/// Results a search returns when the agent does not say.
pub const DEFAULT_TOP_K: u64 = 5;
/// Most results a search returns.
pub const MAX_TOP_K: u64 = 20;

/// The public names of the three meta-tools, prefix included: what `tools/list` shows and what a
/// `tools/call` is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaNames {
    pub find: String,
    pub call: String,
    pub categories: String,
}

impl Default for MetaNames {
    fn default() -> Self {
        MetaNames::new("", FIND_TOOLS, CALL_TOOL, LIST_CATEGORIES)
    }
}

impl MetaNames {
    /// `prefix` before each of the three names.
    pub fn new(prefix: &str, find: &str, call: &str, categories: &str) -> MetaNames {
        MetaNames {
            find: format!("{prefix}{find}"),
            call: format!("{prefix}{call}"),
            categories: format!("{prefix}{categories}"),
        }
    }

    /// The three names, in `tools/list` order.
    pub fn all(&self) -> [&str; 3] {
        [&self.find, &self.call, &self.categories]
    }
}

/// The `tools` array of a meta-tool mode `tools/list`, with the default names.
pub fn meta_tools() -> Value {
    meta_tools_named(&MetaNames::default())
}

/// The `tools` array under the configured `names`.
pub fn meta_tools_named(names: &MetaNames) -> Value {
    let MetaNames {
        find,
        call,
        categories,
    } = names;
    json!([
        {
            "name": find,
            "description": format!("Find the tools that can do a task. Describe what you want to do in plain words \
                (not a tool name); returns the best matching tools with their names, descriptions and \
                input schemas. Then call one with {call}."),
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
            "name": call,
            "description": format!("Call a tool found with {find}, by its exact name, with arguments that \
                match its input schema."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": format!("The tool's name as {find} returned it")},
                    "arguments": {"type": "object", "description": "The tool's arguments"}
                },
                "required": ["name"]
            }
        },
        {
            "name": categories,
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
    fn three_tools_with_schemas_and_configured_names() {
        let names = MetaNames::new("gw_", FIND_TOOLS, "run_tool", LIST_CATEGORIES);
        let tools = meta_tools_named(&names);
        let arr = tools.as_array().map(Vec::as_slice).unwrap_or_default();
        assert_eq!(arr.len(), 3);
        let listed: Vec<&str> = arr.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(listed, names.all());
        assert_eq!(
            listed,
            ["gw_find_tools", "gw_run_tool", "gw_list_categories"]
        );
        // Each description points at the others by their configured names.
        let said = |i: usize| arr[i]["description"].as_str().unwrap_or_default();
        assert!(said(0).contains("gw_run_tool"), "{}", said(0));
        assert!(said(1).contains("gw_find_tools"), "{}", said(1));
        for t in arr {
            assert_eq!(t["inputSchema"]["type"], "object");
        }
        assert_eq!(meta_tools()[1]["name"], CALL_TOOL);
    }
}
