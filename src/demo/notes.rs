//! The `notes` demo server: an in-memory note store (seeded with three notes) offering tools,
//! resources plus a resource template, prompts, and completions for the template's `id`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::proto::{
    complete_from, object_schema, prompt, prompt_result, resource, structured_result,
    text_contents, tool, tool_error, Args, Effect, Reference, RpcError,
};
use super::{CacheHint, Profile, Server};

static PROFILE: Profile = Profile {
    name: "notes",
    title: "switchyard demo: notes",
    instructions: "An in-memory note store: use add_note, list_notes, search_notes, get_note and delete_note, \
                   or read notes://index and notes://note/{id}.",
    tools: true,
    tools_list_changed: false,
    resources: true,
    prompts: true,
    completions: true,
};

const INDEX_URI: &str = "notes://index";
const NOTE_URI_PREFIX: &str = "notes://note/";
const NOTE_TEMPLATE: &str = "notes://note/{id}";
const MARKDOWN: &str = "text/markdown";
/// Keeps a runaway client from growing the store without bound.
const MAX_NOTES: usize = 10_000;

struct Note {
    title: String,
    body: String,
    tags: Vec<String>,
}

impl Note {
    fn summary(&self, id: u64) -> Value {
        json!({ "id": id.to_string(), "title": self.title, "tags": self.tags })
    }

    fn full(&self, id: u64) -> Value {
        json!({ "id": id.to_string(), "title": self.title, "body": self.body, "tags": self.tags })
    }

    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    fn tag_line(&self) -> String {
        if self.tags.is_empty() {
            "(none)".to_owned()
        } else {
            self.tags.join(", ")
        }
    }

    fn markdown(&self) -> String {
        format!(
            "# {}\n\n{}\n\nTags: {}\n",
            self.title,
            self.body,
            self.tag_line()
        )
    }
}

/// The store; ids are decimal strings of an increasing counter, never reused.
pub(crate) struct Notes {
    notes: BTreeMap<u64, Note>,
    next_id: u64,
}

impl Notes {
    pub(crate) fn new() -> Self {
        let mut store = Notes {
            notes: BTreeMap::new(),
            next_id: 1,
        };
        store.insert(
            "Welcome to switchyard",
            "switchyard presents many upstream MCP servers as one. This note store is a bundled demo server.",
            &["intro", "switchyard"],
        );
        store.insert(
            "Gateway checklist",
            "Check the config, start the gateway, then list tools through it to see every upstream at once.",
            &["ops"],
        );
        store.insert(
            "Protocol eras",
            "Legacy MCP starts with an initialize handshake; the 2026-07-28 revision is stateless and \
             carries its protocol version in each request's _meta.",
            &["mcp", "intro"],
        );
        store
    }

    fn insert(&mut self, title: &str, body: &str, tags: &[&str]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self.notes.insert(
            id,
            Note {
                title: title.to_owned(),
                body: body.to_owned(),
                tags,
            },
        );
        id
    }

    fn find(&self, id: &str) -> Option<(u64, &Note)> {
        let id: u64 = id.parse().ok()?;
        self.notes.get(&id).map(|note| (id, note))
    }

    fn tagged<'s>(&'s self, tag: Option<&'s str>) -> impl Iterator<Item = (u64, &'s Note)> + 's {
        self.notes
            .iter()
            .filter(move |(_, n)| tag.is_none_or(|t| n.has_tag(t)))
            .map(|(id, n)| (*id, n))
    }

    /// All tags, sorted and deduplicated.
    fn all_tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self
            .notes
            .values()
            .flat_map(|n| n.tags.iter().map(String::as_str))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    fn add_note(&mut self, args: &Args<'_>) -> Result<Value, RpcError> {
        let title = args.str("title")?.trim();
        let body = args.str("body")?;
        let mut tags: Vec<String> = Vec::new();
        for tag in args.opt_str_list("tags")? {
            let tag = tag.trim();
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        if title.is_empty() {
            return Ok(tool_error("add_note: the title must not be empty"));
        }
        if self.notes.len() >= MAX_NOTES {
            return Ok(tool_error(format!(
                "add_note: the store is full ({MAX_NOTES} notes); delete some first"
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.notes.insert(
            id,
            Note {
                title: title.to_owned(),
                body: body.to_owned(),
                tags,
            },
        );
        tracing::debug!(id, "note added");
        Ok(structured_result(json!({ "id": id.to_string() })))
    }

    fn search(&self, query: &str) -> Value {
        let needle = query.to_lowercase();
        let notes: Vec<Value> = self
            .notes
            .iter()
            .filter(|(_, n)| {
                n.title.to_lowercase().contains(&needle) || n.body.to_lowercase().contains(&needle)
            })
            .map(|(id, n)| n.summary(*id))
            .collect();
        structured_result(json!({ "notes": notes }))
    }

    fn index_markdown(&self) -> String {
        let mut out = String::from("# Notes\n\n");
        if self.notes.is_empty() {
            out.push_str("(no notes)\n");
        }
        for (id, note) in &self.notes {
            out.push_str(&format!(
                "- [{}]({NOTE_URI_PREFIX}{id}) (tags: {})\n",
                note.title,
                note.tag_line()
            ));
        }
        out
    }
}

fn summary_list_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "notes": { "type": "array", "items": note_schema(false) } },
        "required": ["notes"],
    })
}

fn note_schema(with_body: bool) -> Value {
    let mut properties = json!({
        "id": { "type": "string" },
        "title": { "type": "string" },
        "tags": { "type": "array", "items": { "type": "string" } },
    });
    let mut required = vec!["id", "title", "tags"];
    if let (true, Value::Object(map)) = (with_body, &mut properties) {
        map.insert("body".into(), json!({ "type": "string" }));
        required.push("body");
    }
    json!({ "type": "object", "properties": properties, "required": required })
}

fn id_schema(description: &str) -> Value {
    object_schema(
        json!({ "id": { "type": "string", "description": description } }),
        &["id"],
    )
}

impl Server for Notes {
    fn profile(&self) -> &'static Profile {
        &PROFILE
    }

    fn tools(&self) -> Vec<Value> {
        vec![
            tool(
                "add_note",
                "Add note",
                "Create a note and return its id.",
                object_schema(
                    json!({
                        "title": { "type": "string", "description": "Short title (must not be empty)." },
                        "body": { "type": "string", "description": "The note text." },
                        "tags": { "type": "array", "items": { "type": "string" }, "description": "Optional tags." },
                    }),
                    &["title", "body"],
                ),
                Some(object_schema(json!({ "id": { "type": "string" } }), &["id"])),
                Effect::Additive,
            ),
            tool(
                "list_notes",
                "List notes",
                "List notes (id, title, tags), optionally only those with a tag (case-insensitive).",
                object_schema(json!({ "tag": { "type": "string", "description": "Only notes with this tag." } }), &[]),
                Some(summary_list_schema()),
                Effect::ReadOnly,
            ),
            tool(
                "get_note",
                "Get note",
                "Fetch one note, including its body.",
                id_schema("The note id."),
                Some(note_schema(true)),
                Effect::ReadOnly,
            ),
            tool(
                "search_notes",
                "Search notes",
                "Case-insensitive substring search over note titles and bodies.",
                object_schema(json!({ "query": { "type": "string", "description": "Text to look for." } }), &["query"]),
                Some(summary_list_schema()),
                Effect::ReadOnly,
            ),
            tool(
                "delete_note",
                "Delete note",
                "Delete a note by id.",
                id_schema("The note id."),
                Some(object_schema(json!({ "deleted": { "type": "string" } }), &["deleted"])),
                Effect::DestructiveIdempotent,
            ),
        ]
    }

    fn call_tool(&mut self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        let owner = format!("tool `{name}`");
        let args = Args::new(&owner, args);
        match name {
            "add_note" => self.add_note(&args),
            "list_notes" => {
                let tag = args.opt_str("tag")?;
                let notes: Vec<Value> = self.tagged(tag).map(|(id, n)| n.summary(id)).collect();
                Ok(structured_result(json!({ "notes": notes })))
            }
            "get_note" => {
                let id = args.id("id")?;
                Ok(match self.find(&id) {
                    Some((id, note)) => structured_result(note.full(id)),
                    None => tool_error(format!("get_note: no note with id {id:?}")),
                })
            }
            "search_notes" => Ok(self.search(args.str("query")?)),
            "delete_note" => {
                let id = args.id("id")?;
                Ok(match self.find(&id).map(|(id, _)| id) {
                    Some(key) => {
                        self.notes.remove(&key);
                        structured_result(json!({ "deleted": key.to_string() }))
                    }
                    None => tool_error(format!("delete_note: no note with id {id:?}")),
                })
            }
            _ => Err(RpcError::invalid_params(format!("Unknown tool: {name}"))),
        }
    }

    fn resources(&self) -> Vec<Value> {
        let mut list = vec![resource(
            INDEX_URI,
            "index",
            "Note index",
            "Markdown list of all notes.",
            MARKDOWN,
        )];
        list.extend(self.notes.iter().map(|(id, note)| {
            let uri = format!("{NOTE_URI_PREFIX}{id}");
            let description = format!("Note {id} (tags: {}).", note.tag_line());
            resource(
                &uri,
                &format!("note-{id}"),
                &note.title,
                &description,
                MARKDOWN,
            )
        }));
        list
    }

    fn resource_templates(&self) -> Vec<Value> {
        vec![json!({
            "uriTemplate": NOTE_TEMPLATE,
            "name": "note",
            "title": "Note by id",
            "description": "One note as Markdown; ids come from list_notes or notes://index.",
            "mimeType": MARKDOWN,
        })]
    }

    fn read_resource(&self, uri: &str) -> Result<Vec<Value>, RpcError> {
        if uri == INDEX_URI {
            return Ok(vec![text_contents(uri, MARKDOWN, self.index_markdown())]);
        }
        uri.strip_prefix(NOTE_URI_PREFIX)
            .and_then(|id| self.find(id))
            .map(|(_, note)| vec![text_contents(uri, MARKDOWN, note.markdown())])
            .ok_or_else(|| RpcError::resource_not_found(uri))
    }

    fn prompts(&self) -> Vec<Value> {
        vec![
            prompt(
                "summarize_notes",
                "Summarize notes",
                "Ask the model to summarize the stored notes, optionally only those with a tag.",
                &[("tag", "Only include notes with this tag.", false)],
            ),
            prompt(
                "draft_note",
                "Draft a note",
                "Ask the model to draft a new note on a topic and save it with add_note.",
                &[("topic", "What the note should be about.", true)],
            ),
        ]
    }

    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        let owner = format!("prompt `{name}`");
        let args = Args::new(&owner, args);
        match name {
            "summarize_notes" => {
                let tag = args.opt_str("tag")?;
                let mut text = match tag {
                    Some(tag) => format!("Summarize the following notes tagged \"{tag}\"."),
                    None => "Summarize the following notes.".to_owned(),
                };
                text.push_str(" Group related points and list any open questions.\n");
                let mut any = false;
                for (id, note) in self.tagged(tag) {
                    any = true;
                    text.push_str(&format!(
                        "\n## {} (id {id}; tags: {})\n{}\n",
                        note.title,
                        note.tag_line(),
                        note.body
                    ));
                }
                if !any {
                    text.push_str("\n(no notes match)\n");
                }
                Ok(prompt_result("Summarize notes", text))
            }
            "draft_note" => {
                let topic = args.str("topic")?;
                let text = format!(
                    "Draft a concise note about \"{topic}\": a short title, a body of one to three paragraphs, \
                     and one to three lowercase tags. Then save it with the add_note tool."
                );
                Ok(prompt_result("Draft a note", text))
            }
            _ => Err(RpcError::invalid_params(format!("Unknown prompt: {name}"))),
        }
    }

    fn complete(
        &self,
        reference: Reference<'_>,
        argument: &str,
        value: &str,
    ) -> Result<Vec<String>, RpcError> {
        match (reference, argument) {
            (Reference::Resource(NOTE_TEMPLATE), "id") => {
                let ids: Vec<String> = self.notes.keys().map(u64::to_string).collect();
                Ok(complete_from(ids.iter().map(String::as_str), value))
            }
            (Reference::Prompt("summarize_notes"), "tag") => {
                Ok(complete_from(self.all_tags(), value))
            }
            (
                Reference::Resource(NOTE_TEMPLATE)
                | Reference::Prompt("summarize_notes" | "draft_note"),
                _,
            ) => Ok(Vec::new()),
            (Reference::Resource(uri), _) => Err(RpcError::invalid_params(format!(
                "Unknown resource template: {uri}"
            ))),
            (Reference::Prompt(name), _) => {
                Err(RpcError::invalid_params(format!("Unknown prompt: {name}")))
            }
        }
    }

    /// The notes change as clients edit them: never assume they are fresh, nor share them.
    fn cache_hint(&self, method: &str) -> CacheHint {
        match method {
            "resources/list" | "resources/read" => CacheHint::VOLATILE,
            _ => CacheHint::STATIC,
        }
    }
}
