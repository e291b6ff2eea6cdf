//! A small thesaurus of the words agents and tool authors use for the same thing (`folder` /
//! `directory`, `remove` / `delete` / `drop`, `PR` / `pull request`, `sprint` / `cycle`). Each
//! group is a concept; a word in a group adds the concept as one more feature, to tools and to
//! queries alike, so either word finds the other. General software and office vocabulary, written
//! once for the whole domain, not per catalog; `route-eval --no-lexicon` measures what it adds.

use std::sync::OnceLock;

use hashbrown::HashMap;

use super::text::stem;

/// Groups of interchangeable words (lowercase; matched after stemming, so one form suffices).
const GROUPS: &[&[&str]] = &[
    // what is done
    &[
        "create",
        "add",
        "new",
        "make",
        "insert",
        "register",
        "generate",
        "compose",
        "draft",
        "build",
        "setup",
        "establish",
        "start",
    ],
    &[
        "get",
        "show",
        "read",
        "fetch",
        "retrieve",
        "view",
        "display",
        "see",
        "lookup",
        "details",
        "info",
        "information",
        "inspect",
        "open",
    ],
    &["list", "all", "enumerate", "browse", "overview", "which"],
    &[
        "update", "change", "edit", "modify", "set", "patch", "adjust", "alter", "tweak", "revise",
    ],
    &[
        "delete", "remove", "drop", "erase", "wipe", "destroy", "purge", "forget", "discard",
        "trash", "rid", "clear",
    ],
    &[
        "close", "complete", "finish", "done", "resolve", "resolved", "finalize", "ship",
    ],
    &["reopen", "restore", "undo", "unarchive", "revert"],
    &[
        "search", "find", "query", "locate", "discover", "look", "lookup",
    ],
    &[
        "send", "post", "tell", "notify", "publish", "announce", "share", "message",
    ],
    &["run", "execute", "trigger", "launch", "invoke", "perform"],
    &[
        "stop",
        "cancel",
        "halt",
        "terminate",
        "abort",
        "pause",
        "end",
    ],
    &["archive", "shelve", "stash"],
    &["rename", "retitle", "move", "relocate"],
    &["copy", "duplicate", "clone", "replicate"],
    &["count", "number", "many", "total", "tally"],
    &["download", "fetch", "grab", "pull", "retrieve", "scrape"],
    &["upload", "attach", "attachment"],
    &[
        "subscribe",
        "follow",
        "watch",
        "notification",
        "notify",
        "subscription",
    ],
    &["monitor", "watch", "track", "tracking", "observe", "change"],
    &["compare", "diff", "difference", "differences"],
    &["merge", "combine", "squash"],
    &["assign", "assignee", "owner", "allocate"],
    &["approve", "approval", "review", "lgtm"],
    &[
        "think",
        "reason",
        "reasoning",
        "thought",
        "step",
        "reflect",
        "plan",
    ],
    &[
        "remember",
        "memory",
        "memorize",
        "recall",
        "knowledge",
        "store",
    ],
    &["research", "investigate", "study", "report", "deep"],
    &["scale", "replicas", "replica", "resize"],
    &["forward", "tunnel", "localhost", "expose"],
    &["restart", "rollout", "rollback", "redeploy", "roll"],
    // things
    &["directory", "folder", "dir", "directories", "folders"],
    &[
        "image", "picture", "photo", "png", "jpg", "jpeg", "media", "graphic", "drawing", "draw",
    ],
    &["repository", "repo", "repos"],
    &["pr", "pull", "merge"],
    &["issue", "ticket", "bug", "defect", "problem"],
    &["comment", "note", "remark", "reply", "feedback"],
    &[
        "user",
        "member",
        "people",
        "person",
        "teammate",
        "collaborator",
        "account",
        "profile",
    ],
    &["customer", "client", "buyer"],
    &["coupon", "discount", "promo", "promotion", "voucher"],
    &["refund", "reimburse", "chargeback"],
    &["dispute", "chargeback", "contest"],
    &["invoice", "bill", "billing"],
    &["price", "pricing", "cost", "amount", "charge", "fee"],
    &["balance", "funds", "money"],
    &["payment", "pay", "checkout", "purchase"],
    &["subscription", "plan", "recurring", "membership"],
    &[
        "coordinates",
        "latitude",
        "longitude",
        "lat",
        "lng",
        "geocode",
        "location",
    ],
    &["address", "street", "place", "location"],
    &[
        "directions",
        "route",
        "drive",
        "driving",
        "walking",
        "walk",
        "bike",
        "transit",
        "travel",
    ],
    &["elevation", "altitude", "height"],
    &["navigate", "go", "visit", "goto", "load", "url", "open"],
    &["screenshot", "capture", "snapshot", "image"],
    &["click", "press", "tap", "button"],
    &["type", "fill", "enter", "input", "typing"],
    &["dropdown", "select", "option", "combobox", "choose", "pick"],
    &["hover", "mouse", "mouseover"],
    &["dialog", "popup", "alert", "modal", "confirm", "prompt"],
    &["tab", "tabs", "page", "pages", "window"],
    &["javascript", "js", "script", "code", "snippet", "evaluate"],
    &["console", "log", "logs", "output"],
    &["web", "internet", "online", "website", "site"],
    &["webpage", "page", "url", "site", "website", "link", "html"],
    &["crawl", "crawler", "spider", "pages"],
    &["sprint", "cycle", "iteration"],
    &["label", "tag", "tags", "labels", "category"],
    &["status", "state", "progress", "health", "stage"],
    &["priority", "urgent", "urgency", "importance", "p1"],
    &["history", "log", "changelog", "audit", "changes"],
    &["commit", "commits", "revision", "changeset"],
    &["stage", "staging", "index", "add"],
    &["branch", "branches"],
    &[
        "error",
        "exception",
        "crash",
        "failure",
        "fail",
        "failed",
        "failing",
    ],
    &["kubernetes", "k8s", "kubectl", "cluster"],
    &["pod", "pods", "container", "containers"],
    &["database", "db", "databases"],
    &["mongo", "mongodb"],
    &["postgres", "postgresql", "psql"],
    &["sql", "select", "query"],
    &[
        "row",
        "rows",
        "record",
        "records",
        "entry",
        "entries",
        "document",
        "documents",
    ],
    &["size", "space", "disk", "storage", "bytes", "big", "large"],
    &[
        "property",
        "properties",
        "field",
        "fields",
        "attribute",
        "attributes",
        "column",
        "columns",
    ],
    &["schema", "structure", "shape", "columns", "fields"],
    &["aggregate", "aggregation", "group", "sum", "pipeline"],
    &["export", "dump", "save", "file"],
    &["save", "write", "persist", "store", "overwrite"],
    &["sum", "add", "plus", "total", "addition"],
    &["file", "files", "disk", "filesystem", "path", "local"],
    &["content", "contents", "text", "body"],
    &["markdown", "md"],
    // the catalog's own vocabulary, with the everyday words for it
    &[
        "oauth",
        "auth",
        "authorization",
        "authorize",
        "authentication",
    ],
    &["block", "blocks", "paragraph", "paragraphs"],
    &["child", "children", "nested", "inside", "sub"],
    &["network", "http", "traffic", "xhr"],
    &["stats", "statistics", "metrics", "analytics"],
    &["describe", "description", "explain", "details"],
    &["rotate", "regenerate", "renew", "reset"],
    &["revoke", "logout", "invalidate", "kill"],
    &["toggle", "enable", "disable", "turn"],
    &["checkout", "switch"],
    &["wait", "until", "sleep", "appear"],
    &["convert", "translate", "transform", "conversion"],
    &["tree", "hierarchy", "recursive"],
    &[
        "allowed",
        "permitted",
        "permission",
        "permissions",
        "access",
    ],
    &["fork", "copy"],
    &["push", "upload"],
    &[
        "place",
        "places",
        "business",
        "businesses",
        "restaurant",
        "restaurants",
        "shop",
        "shops",
        "venue",
        "nearby",
        "near",
    ],
    &["distance", "far", "miles", "kilometers", "km"],
    &["back", "previous", "prior"],
    &["resize", "dimension", "dimensions", "width", "viewport"],
    &["key", "keyboard", "keystroke", "shortcut", "hotkey"],
    &["echo", "repeat", "parrot"],
    &["environment", "env", "variables", "vars"],
    &["compress", "gzip", "zip", "compression"],
    &["time", "clock", "hour", "now"],
    &["timezone", "tz", "zone"],
    &["email", "mail", "e-mail"],
    &["reaction", "emoji", "react"],
    &["thread", "conversation", "replies", "discussion"],
    &["channel", "channels", "room"],
    &["message", "messages", "chat"],
    &["task", "tasks", "todo", "to-do", "errand", "chore"],
    &["project", "projects", "initiative"],
    &["team", "teams", "group", "squad"],
    &["document", "doc", "docs", "wiki", "writeup"],
    &["documentation", "docs", "manual", "guide", "reference"],
    &["workflow", "automation", "automations"],
    &["contact", "contacts", "lead", "leads", "crm"],
    &["deal", "deals", "opportunity", "opportunities"],
    &["engagement", "call", "meeting", "note", "activity"],
    &[
        "association",
        "associations",
        "link",
        "relationship",
        "relation",
        "relations",
    ],
    &["relation", "relationship", "link", "connection"],
    &[
        "entity",
        "entities",
        "node",
        "nodes",
        "fact",
        "facts",
        "observation",
        "observations",
    ],
    &["test", "tests", "testing"],
    &["flaky", "flake", "intermittent", "unstable"],
    &["ci", "pipeline", "build", "circleci"],
    &["artifact", "artifacts", "output", "outputs"],
    &["release", "releases", "version", "deploy", "deployment"],
    &[
        "paper",
        "papers",
        "article",
        "arxiv",
        "academic",
        "publication",
    ],
    &["credit", "credits", "quota", "usage"],
    &[
        "performance",
        "perf",
        "trace",
        "speed",
        "slow",
        "lcp",
        "vitals",
    ],
    &["heap", "memory", "leak"],
    &["screencast", "video", "recording", "record"],
    &["css", "style", "styles", "styling"],
    &["accessibility", "a11y", "aria"],
    &["audit", "lighthouse", "seo"],
    &["emulate", "throttle", "simulate", "device"],
    &["webhook", "webhooks", "callback", "endpoint"],
    &["secret", "secrets", "key", "token", "credential"],
    &["session", "sessions", "login", "logout", "signin"],
    &["notification", "notifications", "inbox", "alerts", "unread"],
    &["favorite", "favorites", "star", "bookmark", "pin"],
    &["template", "templates", "boilerplate"],
    &["milestone", "milestones", "checkpoint"],
    &["roadmap", "roadmaps", "plan"],
    &["view", "views", "filter", "saved"],
    &["helm", "chart", "charts"],
    &["node", "nodes", "machine", "worker", "drain", "cordon"],
    &["namespace", "namespaces"],
    &["rate", "limit", "throttled", "throttle", "limited"],
    &[
        "organization",
        "organizations",
        "org",
        "orgs",
        "workspace",
        "company",
    ],
];

/// The group of `issue`: a ticket key such as `ENG-512` or `PROJ-42` implies it.
fn issue_group() -> Option<u16> {
    GROUPS
        .iter()
        .position(|g| g.first() == Some(&"issue"))
        .map(|g| g as u16)
}

/// Whether `text` holds a ticket key (`ABC-123`: capitals, a dash, digits).
pub fn has_ticket_key(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_uppercase() {
            i += 1;
        }
        let letters = i - start;
        let at_word_start = start == 0 || !b[start - 1].is_ascii_alphanumeric();
        if letters >= 2 && at_word_start && b.get(i) == Some(&b'-') {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits >= 1 {
                return true;
            }
        }
        i = i.max(start + 1);
    }
    false
}

/// Concepts implied by the shape of a text rather than its words.
pub fn implied_concepts(text: &str) -> impl Iterator<Item = u16> {
    issue_group().filter(|_| has_ticket_key(text)).into_iter()
}

/// Stemmed word → the groups it belongs to.
fn table() -> &'static HashMap<String, Vec<u16>> {
    static TABLE: OnceLock<HashMap<String, Vec<u16>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map: HashMap<String, Vec<u16>> = HashMap::new();
        for (g, words) in GROUPS.iter().enumerate() {
            for w in *words {
                let ids = map.entry(stem(w).to_owned()).or_default();
                if !ids.contains(&(g as u16)) {
                    ids.push(g as u16);
                }
            }
        }
        map
    })
}

/// The concept groups of a (lowercased) word.
#[inline]
pub fn concepts(word: &str) -> &'static [u16] {
    table().get(stem(word)).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_share_a_concept() {
        let shared = |a: &str, b: &str| concepts(a).iter().any(|g| concepts(b).contains(g));
        assert!(shared("folder", "directories"));
        assert!(shared("removing", "delete"));
        assert!(shared("sprint", "cycles"));
        assert!(!shared("folder", "delete"));
        assert!(concepts("xyzzy").is_empty());
        assert!(has_ticket_key("move ENG-512 to done"));
        assert!(has_ticket_key("PROJ-42"));
        assert!(!has_ticket_key("utf-8 and X-1 and eNG-5 and ENG-"));
        assert_eq!(implied_concepts("see ENG-1").count(), 1);
    }
}
