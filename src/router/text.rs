//! Text of a tool as the router sees it: the fields of a `tools/list` entry, split into words
//! (snake_case, camelCase, kebab-case, digits), stop words dropped, and a light suffix stemmer.

use serde_json::Value;

/// One tool as indexed: its public name and the fields that describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolDoc {
    /// The public name (`<server>__<tool>`), returned by lookups.
    pub name: String,
    /// The upstream server's name.
    pub server: String,
    /// The upstream's own tool name.
    pub tool: String,
    /// `title` and `description`, joined.
    pub description: String,
    /// Input parameters: (name, description), nested object properties included.
    pub params: Vec<(String, String)>,
}

impl ToolDoc {
    /// Read a `tools/list` entry. Missing or mistyped fields are read as empty: a tool with an odd
    /// schema is still routable by its name.
    pub fn from_tool(server: &str, public_name: &str, tool: &Value) -> ToolDoc {
        let text = |key: &str| tool.get(key).and_then(Value::as_str).unwrap_or("");
        let mut description = String::new();
        let title = text("title");
        let annotation_title = tool
            .get("annotations")
            .and_then(|a| a.get("title"))
            .and_then(Value::as_str)
            .unwrap_or("");
        for part in [title, annotation_title, text("description")] {
            if !part.is_empty() && !description.contains(part) {
                if !description.is_empty() {
                    description.push_str(". ");
                }
                description.push_str(part);
            }
        }
        let mut params = Vec::new();
        if let Some(schema) = tool.get("inputSchema") {
            collect_params(schema, 0, &mut params);
        }
        ToolDoc {
            name: public_name.to_owned(),
            server: server.to_owned(),
            tool: text("name").to_owned(),
            description,
            params,
        }
    }
}

/// Walk `properties` (and array `items`) two levels deep: deeper schemas add noise, not intent.
fn collect_params(schema: &Value, depth: usize, out: &mut Vec<(String, String)>) {
    if depth > 2 || out.len() >= 64 {
        return;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let mut desc = prop
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if let Some(values) = prop.get("enum").and_then(Value::as_array) {
                for v in values.iter().filter_map(Value::as_str).take(16) {
                    desc.push(' ');
                    desc.push_str(v);
                }
            }
            out.push((name.clone(), desc));
            collect_params(prop, depth + 1, out);
            if let Some(items) = prop.get("items") {
                collect_params(items, depth + 1, out);
            }
        }
    }
}

/// Words of `text`, lowercased: runs of letters/digits, split again at camelCase boundaries
/// (`getHTTPStatus` → get, http, status) and between letters and digits.
pub fn words(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::with_capacity(32);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_alphanumeric() {
            flush(&mut buf, &mut f);
            i += 1;
            continue;
        }
        if !buf.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_uppercase() && c.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && c.is_numeric())
                || (prev.is_numeric() && c.is_alphabetic());
            if boundary {
                flush(&mut buf, &mut f);
            }
        }
        buf.extend(c.to_lowercase());
        i += 1;
    }
    flush(&mut buf, &mut f);
}

fn flush(buf: &mut String, f: &mut impl FnMut(&str)) {
    if !buf.is_empty() {
        f(buf);
        buf.clear();
    }
}

/// English function words and the filler of tool descriptions: they say nothing about intent.
const STOP: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "could", "do", "does", "each", "either", "else", "etc", "for",
    "from", "has", "have", "he", "her", "here", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "let", "may", "me", "might", "more", "most", "much", "must", "my",
    "no", "not", "of", "on", "one", "only", "or", "other", "our", "out", "over", "please", "s",
    "shall", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "up", "us", "use", "used",
    "uses", "using", "very", "want", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whose", "why", "will", "with", "within", "without", "would", "you", "your",
];

/// Whether `w` (lowercased) is a stop word.
pub fn is_stop(w: &str) -> bool {
    STOP.binary_search(&w).is_ok()
}

/// A light suffix stemmer (plural, -ing, -ed, final e/y), enough that `issues`, `issue` and
/// `creating`/`create`/`created` meet; not Porter, and never shorter than three letters. A doubled
/// final consonant left by -ing/-ed is undoubled (`running` → `run`, `committed` → `commit`),
/// and common irregular verb forms and plurals map to their base (`wrote` → `write`).
pub fn stem(w: &str) -> &str {
    if let Some(base) = irregular(w) {
        return stem(base);
    }
    let n = w.len();
    if n <= 3 || !w.is_ascii() {
        return w;
    }
    let mut s = w;
    if let Some(b) = s.strip_suffix("ies") {
        s = b;
        return if s.len() >= 3 { s } else { w };
    }
    if let Some(b) = s.strip_suffix("sses") {
        s = &w[..b.len() + 2];
    } else if s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") && !s.ends_with("is") {
        s = &s[..s.len() - 1];
    }
    let before = s.len();
    if let Some(b) = s.strip_suffix("ing").filter(|b| b.len() >= 3) {
        s = b;
    } else if let Some(b) = s.strip_suffix("ed").filter(|b| b.len() >= 3) {
        s = b;
    }
    if s.len() < before {
        s = undouble(s);
    }
    if s.len() > 3 && (s.ends_with('e') || s.ends_with('y')) {
        s = &s[..s.len() - 1];
    }
    s
}

/// `runn` → `run`, `dropp` → `drop`: a doubled final consonant other than l, s, z, f (which
/// double in the base word: `install`, `press`, `buzz`, `stuff`), when at least three letters
/// remain (`add` stays).
fn undouble(s: &str) -> &str {
    let b = s.as_bytes();
    match b {
        [.., x, y] if x == y && s.len() > 3 && !b"aeiouylszf".contains(y) => &s[..s.len() - 1],
        _ => s,
    }
}

/// The base form of an irregular verb form or plural common in requests (`ran`, `wrote`,
/// `children`). Forms that are also everyday nouns or adjectives, or filler of tool descriptions,
/// are left alone (`left`, `saw`, `read`, `done`, `found`, `given`).
fn irregular(w: &str) -> Option<&'static str> {
    Some(match w {
        "ran" => "run",
        "wrote" | "written" => "write",
        "made" => "make",
        "sent" => "send",
        "got" | "gotten" => "get",
        "took" | "taken" => "take",
        "gave" => "give",
        "built" => "build",
        "began" | "begun" => "begin",
        "chose" | "chosen" => "choose",
        "drew" | "drawn" => "draw",
        "froze" | "frozen" => "freeze",
        "hid" | "hidden" => "hide",
        "kept" => "keep",
        "lost" => "lose",
        "paid" => "pay",
        "said" => "say",
        "seen" => "see",
        "shown" => "show",
        "sold" => "sell",
        "spent" => "spend",
        "told" => "tell",
        "threw" | "thrown" => "throw",
        "went" | "gone" => "go",
        "bought" => "buy",
        "brought" => "bring",
        "caught" => "catch",
        "thought" => "think",
        "broke" | "broken" => "break",
        "forgot" | "forgotten" => "forget",
        "spoke" | "spoken" => "speak",
        "sought" => "seek",
        "undid" | "undone" => "undo",
        "rewrote" | "rewritten" => "rewrite",
        "children" => "child",
        "people" => "person",
        "indices" => "index",
        "analyses" => "analysis",
        "criteria" => "criterion",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        words(s, |w| v.push(w.to_owned()));
        v
    }

    #[test]
    fn splits_identifiers() {
        assert_eq!(split("get_file_contents"), ["get", "file", "contents"]);
        assert_eq!(split("getHTTPStatus"), ["get", "http", "status"]);
        assert_eq!(
            split("browser-navigate v2"),
            ["browser", "navigate", "v", "2"]
        );
        assert_eq!(split("ÉtéÀ"), ["été", "à"]);
        assert!(split("  --  ").is_empty());
    }

    #[test]
    fn stop_list_is_sorted() {
        assert!(STOP.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stop("the") && !is_stop("issue"));
    }

    #[test]
    fn stems_meet() {
        assert_eq!(stem("issues"), stem("issue"));
        assert_eq!(stem("creating"), stem("create"));
        assert_eq!(stem("created"), stem("create"));
        assert_eq!(stem("repositories"), stem("repository"));
        assert_eq!(stem("branches"), stem("branch"));
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("ids"), "ids");
        assert_eq!(stem("running"), stem("run"));
        assert_eq!(stem("committed"), stem("commit"));
        assert_eq!(stem("logged"), stem("logs"));
        assert_eq!(stem("added"), stem("add"));
        assert_eq!(stem("installed"), stem("install"));
        assert_eq!(stem("pressing"), stem("press"));
        assert_eq!(stem("wrote"), stem("writes"));
        assert_eq!(stem("children"), stem("child"));
    }

    #[test]
    fn reads_a_tool() {
        let tool = serde_json::json!({
            "name": "create_issue",
            "description": "Create a new issue",
            "inputSchema": {"type": "object", "properties": {
                "title": {"type": "string", "description": "Issue title"},
                "labels": {"type": "array", "items": {"type": "string"}},
                "state": {"type": "string", "enum": ["open", "closed"]}
            }}
        });
        let d = ToolDoc::from_tool("github", "github__create_issue", &tool);
        assert_eq!(d.tool, "create_issue");
        assert_eq!(d.description, "Create a new issue");
        assert_eq!(d.params.len(), 3);
        assert!(d
            .params
            .iter()
            .any(|(n, d)| n == "state" && d.contains("closed")));
        let odd = ToolDoc::from_tool("x", "x__y", &serde_json::json!({"name": 3}));
        assert_eq!(odd.tool, "");
    }
}
