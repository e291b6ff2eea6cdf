//! The catalog: tools, prompts, resources and resource templates of every ready upstream, merged
//! under collision-free public names, with their owners; plus the merged capabilities and
//! instructions. Built on the control thread whenever an upstream's lists change and published whole
//! as a snapshot; shards only read it. List results are serialized once here, so a `tools/list` on a
//! shard is a copy of bytes.

pub mod naming;
pub mod pages;
pub mod params;
pub mod template;

use hashbrown::{HashMap, HashSet};
use serde_json::{json, Map, Value};

use crate::config::{Naming, NamingPolicy};
use crate::policy::Item;
use crate::upstream::Handshake;
pub use naming::NameRules;
pub use pages::{Hint, HintRules, ListBody, Said};
pub use template::Template;

/// `_meta` keys the gateway adds to every listed entry.
pub const META_SERVER: &str = "switchyard.dev/server";
pub const META_NAME: &str = "switchyard.dev/name";

/// Where a public name leads.
#[derive(Debug, Clone)]
pub struct Route {
    pub upstream: u16,
    /// The name (or URI) the upstream knows it by.
    pub original: Box<str>,
    /// Position in the merged list (the bit in each role's visibility set); `UNLISTED` for a URI
    /// reached through a template.
    pub index: u32,
}

/// `Route::index` of something not in a list.
pub const UNLISTED: u32 = u32::MAX;

/// A fixed set of bits.
#[derive(Debug, Clone, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn get(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn any(&self) -> bool {
        self.0.iter().any(|w| *w != 0)
    }
}

/// What one role sees: its lists, serialized, and its visibility sets.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub tools_list: ListBody,
    pub prompts_list: ListBody,
    pub resources_list: ListBody,
    pub templates_list: ListBody,
    pub tools: Bits,
    pub prompts: Bits,
    pub resources: Bits,
    /// The role may use at least one thing here (or there is nothing here yet).
    pub any: bool,
}

/// The visibility question the catalog asks while building: may `role` use `name` of this kind on
/// upstream `upstream`?
pub type Visible<'a> = &'a dyn Fn(u16, u16, Item, &str) -> bool;

/// One ready upstream's own lists and handshake, as fetched.
#[derive(Debug, Clone, Default)]
pub struct UpstreamLists {
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    /// What the upstream said about the freshness and scope of each list.
    pub hints: ListHints,
}

/// What an upstream said about each of its lists (see `pages`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListHints {
    pub tools: Said,
    pub prompts: Said,
    pub resources: Said,
    pub templates: Said,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub generation: u64,
    pub tools: HashMap<Box<str>, Route>,
    pub prompts: HashMap<Box<str>, Route>,
    pub resources: HashMap<Box<str>, Route>,
    pub templates: Vec<(Template, u16)>,
    /// Upstreams that offer resources (name, index), in config order: `<name>+<uri>` reaches one
    /// directly, and the only one is the owner of any unlisted URI.
    pub resource_servers: Vec<(Box<str>, u16)>,
    /// Per role (index = role), what it sees.
    pub views: Vec<View>,
    /// Every merged tool entry as listed, and its upstream, by tool index (for meta-tool mode).
    pub tool_entries: Vec<Value>,
    pub tool_upstream: Vec<u16>,
    /// The meta-tools' list (meta-tool mode only; set by the control thread).
    pub meta_list: Option<ListBody>,
    /// Merged server capabilities (what at least one upstream offers).
    pub capabilities: Value,
    pub instructions: Option<String>,
    /// Tool count per upstream index.
    pub tool_counts: Vec<usize>,
    /// `x-mcp-header` annotations by tool index (only tools that have some).
    pub tool_params: HashMap<u32, Vec<params::ParamHeader>>,
}

/// One upstream's part in a build.
pub struct Part<'a> {
    pub index: u16,
    pub name: &'a str,
    pub handshake: &'a Handshake,
    pub lists: &'a UpstreamLists,
}

/// Add the gateway's `_meta` keys to an entry.
fn tag(entry: &mut Map<String, Value>, server: &str, original: &str) {
    let meta = entry.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.insert(META_SERVER.into(), server.into());
        m.insert(META_NAME.into(), original.into());
    }
}

/// Merged entries, each one's (upstream, original name), and the routes by public name.
type Merged = (Vec<Value>, Vec<(u16, Box<str>)>, HashMap<Box<str>, Route>);

/// Merge named entries (tools or prompts) of all parts.
fn merge_named(
    parts: &[Part<'_>],
    pick: fn(&UpstreamLists) -> &Vec<Value>,
    naming: &Naming,
    reserved: &[&str],
) -> Merged {
    let mut count: HashMap<&str, usize> = HashMap::new();
    if naming.policy == NamingPolicy::PrefixOnCollision {
        for p in parts {
            for e in pick(p.lists) {
                if let Some(n) = e.get("name").and_then(Value::as_str) {
                    *count.entry(n).or_default() += 1;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut owners = Vec::new();
    let mut routes: HashMap<Box<str>, Route> = HashMap::new();
    for p in parts {
        for e in pick(p.lists) {
            let (Some(name), Value::Object(obj)) = (e.get("name").and_then(Value::as_str), e)
            else {
                continue;
            };
            let bare_ok = count.get(name).copied().unwrap_or(0) <= 1;
            let taken = |c: &str| routes.contains_key(c) || reserved.contains(&c);
            let public = naming::public_name(p.name, name, naming, bare_ok, &taken);
            let mut obj = obj.clone();
            tag(&mut obj, p.name, name);
            obj.insert("name".into(), Value::String(public.clone()));
            routes.insert(
                public.into(),
                Route {
                    upstream: p.index,
                    original: name.into(),
                    index: out.len() as u32,
                },
            );
            owners.push((p.index, Box::from(name)));
            out.push(Value::Object(obj));
        }
    }
    (out, owners, routes)
}

/// The entries `role` may see, their bits, and their serialized list.
fn view_of(
    key: &'static str,
    items: &[Value],
    owners: &[(u16, Box<str>)],
    item: Item,
    (role, hint): (u16, Hint),
    visible: Visible<'_>,
) -> (ListBody, Bits) {
    let mut bits = Bits::new(items.len());
    let mut seen = Vec::new();
    for (i, (e, (up, name))) in items.iter().zip(owners).enumerate() {
        if visible(role, *up, item, name) {
            bits.set(i);
            seen.push(e.clone());
        }
    }
    (ListBody::new(key, &seen, hint), bits)
}

impl Catalog {
    /// Build from the ready upstreams' parts, in config order, under `names` (no tool gets a
    /// reserved name); `rules` make the lists' caching hints.
    pub fn build(
        generation: u64,
        parts: &[Part<'_>],
        names: NameRules<'_>,
        upstream_count: usize,
        roles: usize,
        visible: Visible<'_>,
        rules: &HintRules,
    ) -> Catalog {
        let (tools, tool_owners, tool_routes) =
            merge_named(parts, |l| &l.tools, names.naming, names.reserved);
        let (prompts, prompt_owners, prompt_routes) =
            merge_named(parts, |l| &l.prompts, names.naming, &[]);

        // Resources keep their URI; a URI offered by two servers keeps it for the first, and later
        // ones get `<server>+<uri>` (still a valid URI: the scheme just grows).
        let mut resources = Vec::new();
        let mut resource_owners = Vec::new();
        let mut template_owners = Vec::new();
        let mut resource_routes: HashMap<Box<str>, Route> = HashMap::new();
        let mut templates = Vec::new();
        let mut template_routes = Vec::new();
        let mut seen_templates: HashSet<String> = HashSet::new();
        let mut resource_servers = Vec::new();
        for p in parts {
            if p.handshake.has_capability("resources") {
                resource_servers.push((Box::from(p.name), p.index));
            }
            for e in &p.lists.resources {
                let (Some(uri), Value::Object(obj)) = (e.get("uri").and_then(Value::as_str), e)
                else {
                    continue;
                };
                let public = if resource_routes.contains_key(uri) {
                    format!("{}+{uri}", p.name)
                } else {
                    uri.to_owned()
                };
                let mut obj = obj.clone();
                tag(&mut obj, p.name, uri);
                obj.insert("uri".into(), Value::String(public.clone()));
                resource_routes.insert(
                    public.into(),
                    Route {
                        upstream: p.index,
                        original: uri.into(),
                        index: resources.len() as u32,
                    },
                );
                resource_owners.push((p.index, Box::from(uri)));
                resources.push(Value::Object(obj));
            }
            for e in &p.lists.templates {
                let (Some(t), Value::Object(obj)) =
                    (e.get("uriTemplate").and_then(Value::as_str), e)
                else {
                    continue;
                };
                let mut obj = obj.clone();
                tag(&mut obj, p.name, t);
                if seen_templates.insert(t.to_owned()) {
                    if let Some(parsed) = Template::parse(t) {
                        template_routes.push((parsed, p.index));
                    }
                } else {
                    // The same template on a later server: its URIs are reached as `<server>+…`.
                    obj.insert(
                        "uriTemplate".into(),
                        Value::String(format!("{}+{t}", p.name)),
                    );
                }
                template_owners.push((p.index, Box::from(t)));
                templates.push(Value::Object(obj));
            }
        }

        // Every configured upstream has listed (or is down with its last lists kept).
        let settled = parts.len() >= upstream_count;
        let hint = |said: fn(&ListHints) -> Said| {
            rules.merge(parts.iter().map(|p| said(&p.lists.hints)), settled)
        };
        let tools_hint = hint(|h| h.tools);
        let prompts_hint = hint(|h| h.prompts);
        let resources_hint = hint(|h| h.resources);
        let templates_hint = hint(|h| h.templates);
        let views = (0..roles as u16)
            .map(|role| {
                let (tools_list, tools_bits) = view_of(
                    "tools",
                    &tools,
                    &tool_owners,
                    Item::Tool,
                    (role, tools_hint),
                    visible,
                );
                let (prompts_list, prompt_bits) = view_of(
                    "prompts",
                    &prompts,
                    &prompt_owners,
                    Item::Prompt,
                    (role, prompts_hint),
                    visible,
                );
                let (resources_list, resource_bits) = view_of(
                    "resources",
                    &resources,
                    &resource_owners,
                    Item::Resource,
                    (role, resources_hint),
                    visible,
                );
                let (templates_list, template_bits) = view_of(
                    "resourceTemplates",
                    &templates,
                    &template_owners,
                    Item::Resource,
                    (role, templates_hint),
                    visible,
                );
                let empty = tools.is_empty()
                    && prompts.is_empty()
                    && resources.is_empty()
                    && templates.is_empty();
                let any = empty
                    || tools_bits.any()
                    || prompt_bits.any()
                    || resource_bits.any()
                    || template_bits.any();
                View {
                    tools_list,
                    prompts_list,
                    resources_list,
                    templates_list,
                    tools: tools_bits,
                    prompts: prompt_bits,
                    resources: resource_bits,
                    any,
                }
            })
            .collect();

        let mut tool_counts = vec![0; upstream_count];
        for r in tool_routes.values() {
            if let Some(c) = tool_counts.get_mut(r.upstream as usize) {
                *c += 1;
            }
        }
        Catalog {
            generation,
            views,
            tool_upstream: tool_owners.iter().map(|(u, _)| *u).collect(),
            tool_params: tools
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let schema = t.get("inputSchema")?;
                    match params::annotations(schema) {
                        Ok(a) if a.is_empty() => None,
                        Ok(a) => Some((i as u32, a)),
                        Err(e) => {
                            tracing::warn!(tool = %t.get("name").and_then(serde_json::Value::as_str).unwrap_or(""), "ignoring its x-mcp-header annotations: {e}");
                            None
                        }
                    }
                })
                .collect(),
            tool_entries: tools,
            meta_list: None,
            tools: tool_routes,
            prompts: prompt_routes,
            resources: resource_routes,
            templates: template_routes,
            resource_servers,
            capabilities: with_subscribe(merged_capabilities(parts), parts),
            instructions: merged_instructions(parts),
            tool_counts,
        }
    }

    /// The owner of a resource URI: listed URIs, then the `<server>+<uri>` form, then templates, then
    /// the only resource server.
    /// Per role, which of `kinds` it sees at least one entry of from `upstream` (`mcp::listen` bits).
    pub fn roles_seeing(&self, upstream: u16, kinds: u8) -> Vec<u8> {
        use crate::mcp::listen::{PROMPTS, RESOURCES, TOOLS};
        self.views
            .iter()
            .map(|v| {
                let mut bits = 0;
                if kinds & TOOLS != 0
                    && self
                        .tool_upstream
                        .iter()
                        .enumerate()
                        .any(|(i, u)| *u == upstream && v.tools.get(i as u32))
                {
                    bits |= TOOLS;
                }
                if kinds & PROMPTS != 0
                    && self
                        .prompts
                        .values()
                        .any(|r| r.upstream == upstream && v.prompts.get(r.index))
                {
                    bits |= PROMPTS;
                }
                if kinds & RESOURCES != 0
                    && self
                        .resources
                        .values()
                        .any(|r| r.upstream == upstream && v.resources.get(r.index))
                {
                    bits |= RESOURCES;
                }
                bits
            })
            .collect()
    }

    /// The public URI of `upstream`'s resource `uri` (it differs when another server listed the same
    /// URI first); `None` for a URI that is not listed.
    pub fn public_uri(&self, upstream: u16, uri: &str) -> Option<String> {
        self.resources
            .iter()
            .find(|(_, r)| r.upstream == upstream && &*r.original == uri)
            .map(|(public, _)| public.to_string())
    }

    pub fn resource_route(&self, uri: &str) -> Option<Route> {
        if let Some(r) = self.resources.get(uri) {
            return Some(r.clone());
        }
        for (name, up) in &self.resource_servers {
            if let Some(rest) = uri.strip_prefix(&**name).and_then(|r| r.strip_prefix('+')) {
                return Some(Route {
                    upstream: *up,
                    original: rest.into(),
                    index: UNLISTED,
                });
            }
        }
        if let Some((_, up)) = self.templates.iter().find(|(t, _)| t.matches(uri)) {
            return Some(Route {
                upstream: *up,
                original: uri.into(),
                index: UNLISTED,
            });
        }
        match self.resource_servers.as_slice() {
            [(_, only)] => Some(Route {
                upstream: *only,
                original: uri.into(),
                index: UNLISTED,
            }),
            _ => None,
        }
    }
}

/// `resources.subscribe` when an upstream offers it: the gateway holds subscriptions on it for
/// legacy sessions (`resources/subscribe`) and 2026-07-28 listen streams (`resourceSubscriptions`)
/// alike, whatever the server's era (`upstream::subs`).
fn with_subscribe(mut caps: Value, parts: &[Part<'_>]) -> Value {
    let subscribe = parts
        .iter()
        .any(|p| p.handshake.capabilities["resources"]["subscribe"] == json!(true));
    if subscribe {
        caps["resources"]["subscribe"] = json!(true);
    }
    caps
}

/// What the gateway offers: each capability at least one upstream offers, `listChanged` always
/// (the gateway tells of list changes itself); `subscribe` is `with_subscribe`'s.
fn merged_capabilities(parts: &[Part<'_>]) -> Value {
    let has = |c: &str| parts.iter().any(|p| p.handshake.has_capability(c));
    // The gateway tells clients of list changes itself (GET streams, listen streams).
    let mut caps = Map::new();
    caps.insert("tools".into(), json!({ "listChanged": true }));
    if has("prompts") {
        caps.insert("prompts".into(), json!({ "listChanged": true }));
    }
    if has("resources") {
        caps.insert("resources".into(), json!({ "listChanged": true }));
    }
    if has("completions") {
        caps.insert("completions".into(), json!({}));
    }
    if has("logging") {
        caps.insert("logging".into(), json!({}));
    }
    Value::Object(caps)
}

fn merged_instructions(parts: &[Part<'_>]) -> Option<String> {
    let pieces: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            p.handshake
                .instructions
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|i| format!("## {}\n{}", p.name, i.trim()))
        })
        .collect();
    if pieces.is_empty() {
        None
    } else {
        Some(format!("switchyard fronts several MCP servers; their tools and prompts are named <server>__<name>.\n\n{}", pieces.join("\n\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Era, Handshake};

    fn hs(caps: Value, instructions: Option<&str>) -> Handshake {
        Handshake {
            era: Era::Legacy,
            version: "2025-11-25".into(),
            capabilities: caps,
            server_info: json!({}),
            instructions: instructions.map(Into::into),
        }
    }

    #[test]
    fn merges_with_public_names_and_routes() {
        let a = UpstreamLists {
            tools: vec![
                json!({"name":"echo","inputSchema":{"type":"object"}}),
                json!({"name":"add","inputSchema":{"type":"object"}}),
            ],
            resources: vec![json!({"uri":"file:///x","name":"x"})],
            templates: vec![json!({"uriTemplate":"demo://r/{id}","name":"r"})],
            ..Default::default()
        };
        let b = UpstreamLists {
            tools: vec![json!({"name":"echo","inputSchema":{"type":"object"},"_meta":{"keep":1}})],
            prompts: vec![json!({"name":"p"})],
            resources: vec![json!({"uri":"file:///x","name":"x2"})],
            templates: vec![json!({"uriTemplate":"demo://r/{id}","name":"r"})],
            ..Default::default()
        };
        let ha = hs(json!({"tools":{},"resources":{}}), Some("Use a."));
        let hb = hs(json!({"tools":{},"prompts":{},"resources":{}}), None);
        let parts = [
            Part {
                index: 0,
                name: "a",
                handshake: &ha,
                lists: &a,
            },
            Part {
                index: 1,
                name: "b",
                handshake: &hb,
                lists: &b,
            },
        ];
        let everything = |_: u16, _: u16, _: Item, _: &str| true;
        let c = Catalog::build(
            1,
            &parts,
            NameRules {
                naming: &Naming::default(),
                reserved: &[],
            },
            2,
            1,
            &everything,
            &HintRules::default(),
        );
        let tools: Value = serde_json::from_slice(&c.views[0].tools_list.whole(false)).unwrap();
        let names: Vec<&str> = tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a__echo", "a__add", "b__echo"]);
        assert_eq!(tools["tools"][2]["_meta"]["keep"], 1);
        assert_eq!(tools["tools"][2]["_meta"][META_NAME], "echo");
        assert_eq!(c.tools["b__echo"].upstream, 1);
        assert_eq!(&*c.tools["b__echo"].original, "echo");
        let modern: Value = serde_json::from_slice(&c.views[0].tools_list.whole(true)).unwrap();
        assert_eq!(modern["resultType"], "complete");
        assert_eq!(modern["tools"], tools["tools"]);
        assert_eq!(modern["cacheScope"], "private");
        // Resource collision: the second keeps a prefixed URI that routes back to the original.
        assert_eq!(c.resource_route("file:///x").unwrap().upstream, 0);
        let r = c.resource_route("b+file:///x").unwrap();
        assert_eq!((r.upstream, &*r.original), (1, "file:///x"));
        assert_eq!(c.resource_route("demo://r/7").unwrap().upstream, 0);
        let r = c.resource_route("b+demo://r/7").unwrap();
        assert_eq!((r.upstream, &*r.original), (1, "demo://r/7"));
        let t: Value = serde_json::from_slice(&c.views[0].templates_list.whole(false)).unwrap();
        assert_eq!(t["resourceTemplates"][1]["uriTemplate"], "b+demo://r/{id}");
        assert!(c.resource_route("zzz://nothing").is_none());
        assert!(c.capabilities.get("prompts").is_some() && c.capabilities.get("logging").is_none());
        assert!(c.instructions.as_deref().unwrap().contains("## a\nUse a."));
        assert_eq!(c.tool_counts, [2, 1]);
    }

    #[test]
    fn reserved_names_go_to_the_collision_policy() {
        let a = UpstreamLists {
            tools: vec![
                json!({"name":"call_tool","inputSchema":{"type":"object"}}),
                json!({"name":"echo","inputSchema":{"type":"object"}}),
            ],
            prompts: vec![json!({"name":"call_tool"})],
            ..Default::default()
        };
        let h = hs(json!({"tools":{},"prompts":{}}), None);
        let parts = [Part {
            index: 0,
            name: "a",
            handshake: &h,
            lists: &a,
        }];
        let everything = |_: u16, _: u16, _: Item, _: &str| true;
        let bare = Naming {
            policy: NamingPolicy::PrefixOnCollision,
            ..Naming::default()
        };
        let reserved = ["find_tools", "call_tool", "list_categories"];
        let build = |naming: &Naming, reserved: &[&str]| {
            Catalog::build(
                1,
                &parts,
                NameRules { naming, reserved },
                1,
                1,
                &everything,
                &HintRules::default(),
            )
        };
        // The tool that would hide behind the meta-tool is prefixed, as on a collision, and still
        // routes to the upstream's own name; prompts have names of their own.
        let c = build(&bare, &reserved);
        let mut names: Vec<&str> = c.tools.keys().map(|k| &**k).collect();
        names.sort_unstable();
        assert_eq!(names, ["a__call_tool", "echo"]);
        assert_eq!(&*c.tools["a__call_tool"].original, "call_tool");
        assert!(c.prompts.contains_key("call_tool"));
        // Nothing reserved (passthrough): the bare name stays.
        assert!(build(&bare, &[]).tools.contains_key("call_tool"));
        // Under the prefix policy a reserved name can only meet a prefixed one: that one gets a hash.
        let c = build(&Naming::default(), &["a__echo"]);
        let echo = c.tools.keys().find(|k| k.starts_with("a__echo")).cloned();
        assert!(
            echo.as_deref()
                .is_some_and(|e| e.len() == "a__echo-".len() + 8),
            "{echo:?}"
        );
        assert_eq!(c.tools.len(), 2);
    }
}
