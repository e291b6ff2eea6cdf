//! The thesaurus: the words agents and tool authors use for the same thing (`folder` /
//! `directory`, `remove` / `delete` / `erase`, `PR` / `pull request`, `k8s` / `kubernetes`).
//! Each group is a concept; a word (or two-word phrase, or digit abbreviation) in a group adds the
//! concept as one more feature, to tools and to queries alike, so either word finds the other.
//! General developer and agent vocabulary, organised by concept and written once for the whole
//! domain, not per catalog or per query; `route-eval --no-lexicon` measures what it adds.

use std::sync::OnceLock;

use hashbrown::HashMap;

use super::text::{stem, words};

/// The concepts: one string each, its words separated by spaces, lowercase, matched after
/// stemming (so one form of a word suffices). `a_b` is a two-word phrase, matched on adjacent
/// words (`pull_request`, `kick_off`, `log_in`); a word with digits (`k8s`, `a11y`) is matched
/// whole, before the word splitter breaks it at the digits. A word may sit in several concepts
/// (`open`: read it, go to it). General developer and agent vocabulary, by concept; abbreviations
/// sit with what they abbreviate.
const GROUPS: &[&str] = &[
    // ---- what is done: making, reading, changing, removing ----
    "create add new make insert register generate compose draft build setup set_up establish \
     start spawn spin_up provision initialize init instantiate creation sign_up",
    "get show read fetch retrieve view display see lookup details info information inspect open \
     load peek print pull_up look_at",
    "list enumerate browse overview every ls inventory",
    "update change edit modify set patch adjust alter tweak revise amend rewrite replace upsert \
     correct bump",
    "delete remove drop erase wipe destroy purge forget discard trash rid get_rid clear unlink \
     nuke prune evict dispose deletion removal rm del clean_up cleanup tear_down",
    "close complete finish done resolve resolved finalize ship completion wrap_up check_off \
     tick_off cross_off mark_done",
    "reopen restore undo unarchive revert recover undelete bring_back",
    "search find query locate discover look lookup look_up look_for seek hunt grep",
    "send post tell notify publish announce share message dm broadcast",
    "run execute trigger launch invoke perform exec rerun kick_off fire_off",
    "stop cancel halt terminate abort pause end kill shut_down shutdown interrupt suspend quit",
    "archive shelve stash",
    "rename retitle move relocate transfer mv",
    "copy duplicate clone replicate cp",
    "count number many total tally",
    "download fetch grab pull retrieve scrape",
    "upload attach attachment",
    "import ingest",
    "backup back_up snapshot dump",
    "install installation provision",
    "uninstall",
    "upgrade bump",
    "subscribe follow watch notification notify subscription",
    "monitor watch track tracking observe change",
    "compare diff difference differences delta",
    "merge combine squash land",
    "assign assignee owner allocate delegate hand_off reassign",
    "approve approval review lgtm sign_off accept",
    "reject decline deny refuse",
    "think reason reasoning thought step reflect plan brainstorm",
    "remember memory memorize memorise recall knowledge store long_term retain",
    "research investigate study report deep",
    "analyze analyse analysis diagnose debug troubleshoot triage root_cause investigate",
    "summarize summarise summary tldr digest recap",
    "extract extraction parse structured",
    "sort order rank arrange order_by",
    "filter criteria criterion condition narrow",
    "scale replicas replica resize",
    "forward tunnel localhost expose",
    "restart rollout rollback redeploy roll roll_back reboot",
    "connect reconnect connection hook_up",
    "disconnect detach",
    "schedule scheduled cron recurrence timer",
    "due deadline due_date",
    "remind reminder",
    "invite invitation onboard",
    // ---- files and text ----
    "file files disk filesystem fs path local",
    "directory folder dir directories folders subdirectory subfolder",
    "content contents text body",
    "markdown md",
    "export dump save file",
    "save write persist store overwrite",
    "size space disk storage bytes big large",
    "tree hierarchy recursive",
    "compress gzip zip compression",
    "convert translate transform conversion",
    "image picture photo png jpg jpeg media graphic drawing draw pic img illustration artwork \
     icon logo thumbnail",
    // ---- version control and code hosting ----
    "repository repo repos monorepo",
    "pr pull merge pull_request merge_request mr",
    "commit commits revision changeset check_in checkin",
    "stage staging index add",
    "branch branches trunk master",
    "checkout switch check_out",
    "fork copy",
    "push upload",
    "history log changelog audit changes",
    "code source source_code codebase snippet",
    "release releases version deploy deployment semver",
    "tag tags label",
    // ---- issue trackers and planning ----
    "issue ticket bug defect problem story epic subtask incident",
    "comment note remark reply feedback annotation",
    "task tasks todo to_do errand chore checklist action_item",
    "project projects initiative",
    "sprint cycle iteration",
    "milestone milestones checkpoint",
    "roadmap roadmaps plan",
    "label tag tags labels category",
    "status state progress health stage",
    "priority urgent urgency importance p0 p1 p2",
    "template templates boilerplate",
    "view views filter saved",
    "favorite favorites star bookmark pin",
    "workflow automation automations",
    // ---- people and organizations ----
    "user member people person teammate collaborator account profile employee colleague \
     coworker staff",
    "self viewer whoami myself current_user my_account my_profile authenticated",
    "team teams group squad",
    "organization organizations org orgs workspace company",
    "allowed permitted permission permissions access grant role roles rbac acl privilege perms",
    // ---- messaging ----
    "message messages chat msg dm",
    "channel channels room chatroom",
    "thread conversation replies discussion",
    "reaction emoji react thumbs thumbs_up upvote",
    "email mail e_mail",
    "notification notifications inbox alerts unread notif",
    "calendar appointment meeting booking",
    // ---- browsers and web pages ----
    "browser chrome chromium headless puppeteer playwright devtools",
    "navigate go visit goto load url open browse_to head_to",
    "screenshot capture snapshot image screen_shot screengrab screen_grab",
    "click press tap button double_click",
    "type fill enter input typing key_in fill_in fill_out",
    "form forms textbox text_box textarea",
    "element elements selector dom xpath locator",
    "dropdown select option combobox choose pick",
    "hover mouse mouseover",
    "scroll swipe",
    "dialog popup alert modal confirm prompt",
    "tab tabs page pages window",
    "javascript js script code snippet evaluate typescript",
    "console log logs output stdout stderr tail",
    "network http traffic xhr",
    "cookie cookies localstorage local_storage",
    "wait until sleep appear",
    "back previous prior",
    "resize dimension dimensions width viewport",
    "key keyboard keystroke shortcut hotkey",
    "css style styles styling",
    "accessibility a11y aria",
    "audit lighthouse seo",
    "emulate throttle simulate device",
    "performance perf trace speed slow lcp vitals profiling",
    "heap memory leak",
    "screencast video recording record",
    // ---- search and the web ----
    "web internet online website site google bing duckduckgo",
    "webpage page url site website link html hyperlink href",
    "crawl crawler spider pages",
    "paper papers article arxiv academic publication",
    "documentation docs manual guide reference",
    // ---- databases ----
    "database db databases datastore data_source",
    "mongo mongodb",
    "postgres postgresql psql pg",
    "mysql mariadb",
    "sqlite sqlite3",
    "sql select query",
    "table tables collection collections tbl",
    "row rows record records entry entries document documents",
    "property properties field fields attribute attributes column columns attr attrs prop props \
     col cols",
    "schema structure shape columns fields",
    "aggregate aggregation group sum pipeline",
    "index indexes indices idx",
    // ---- cloud, containers, CI ----
    "kubernetes k8s kubectl cluster kube",
    "pod pods container containers docker",
    "workload workloads deployment deployments statefulset daemonset replicaset",
    "node nodes machine worker drain cordon vm host instance instances",
    "namespace namespaces ns",
    "helm chart charts",
    "shell bash terminal command cmd cli exec",
    "ping health healthcheck health_check alive reachable uptime heartbeat liveness",
    "config configuration configure settings setting preferences options conf cfg",
    "environment env variables vars var envvar env_var dotenv",
    "secret secrets key token credential credentials password apikey api_key passphrase",
    "oauth auth authorization authorize authentication authn authz",
    "session sessions login logout signin log_in sign_in log_out sign_out",
    "revoke logout invalidate kill",
    "rotate regenerate renew reset",
    "ci pipeline build circleci jenkins job jobs",
    "test tests testing suite",
    "flaky flake intermittent unstable",
    "artifact artifacts output outputs",
    "error exception crash failure fail failed failing broken",
    "webhook webhooks callback endpoint",
    "rate limit throttled throttle limited",
    "credit credits quota usage",
    "stats statistics metrics analytics",
    // ---- knowledge graph and notes ----
    "entity entities node nodes fact facts observation observations",
    "graph knowledge_graph kg ontology",
    "association associations link relationship relation relations",
    "relation relationship link connection edge edges",
    "document doc docs wiki writeup",
    "block blocks paragraph paragraphs",
    "child children nested inside sub",
    // ---- commerce and CRM ----
    "customer client buyer",
    "product products sku goods merchandise",
    "coupon discount promo promotion voucher promo_code",
    "refund reimburse chargeback",
    "dispute chargeback contest",
    "invoice bill billing",
    "price pricing cost amount charge fee",
    "balance funds money",
    "payment pay checkout purchase",
    "subscription plan recurring membership",
    "contact contacts lead leads crm",
    "deal deals opportunity opportunities",
    "engagement call meeting note activity",
    // ---- places and time ----
    "coordinates latitude longitude lat lng geocode location",
    "address street place location",
    "directions route drive driving walking walk bike bicycle cycling car bus train transit travel",
    "elevation altitude height",
    "place places business businesses restaurant restaurants shop shops venue nearby near",
    "distance far miles kilometers km",
    "time clock hour now today date datetime timestamp",
    "timezone tz zone utc gmt",
    // ---- the rest of the catalog's own vocabulary ----
    "describe description explain details desc",
    "toggle enable disable turn",
    "echo repeat parrot",
    "sum add plus total addition",
];

/// The words of the thesaurus, by kind, each with the concepts it belongs to.
#[derive(Default)]
struct Table {
    /// Stemmed word → concepts.
    words: HashMap<String, Vec<u16>>,
    /// Two stemmed words, space-separated → concepts.
    phrases: HashMap<String, Vec<u16>>,
    /// The stemmed first words of `phrases`: most word pairs need no lookup.
    phrase_heads: HashMap<String, ()>,
    /// A lowercased word with digits, unsplit (`k8s`) → concepts.
    compounds: HashMap<String, Vec<u16>>,
    /// The concept of `issue`: a ticket key such as `ENG-512` implies it.
    issue: Option<u16>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table::default();
        let add = |map: &mut HashMap<String, Vec<u16>>, key: String, g: u16| {
            let ids = map.entry(key).or_default();
            if !ids.contains(&g) {
                ids.push(g);
            }
        };
        for (g, group) in GROUPS.iter().enumerate() {
            let g = g as u16;
            for w in group.split_whitespace() {
                if w == "issue" {
                    t.issue = Some(g);
                }
                if let Some((a, b)) = w.split_once('_') {
                    add(&mut t.phrases, format!("{} {}", stem(a), stem(b)), g);
                    t.phrase_heads.insert(stem(a).to_owned(), ());
                } else if w.bytes().any(|c| c.is_ascii_digit()) {
                    add(&mut t.compounds, w.to_owned(), g);
                } else {
                    add(&mut t.words, stem(w).to_owned(), g);
                }
            }
        }
        t
    })
}

/// The concept groups of a (lowercased) word.
#[inline]
pub fn concepts(word: &str) -> &'static [u16] {
    table().words.get(stem(word)).map_or(&[], Vec::as_slice)
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

/// Calls `f` for the concepts of `text` that no single word of it carries: a ticket key means
/// `issue`, two adjacent words may be a phrase (`pull request`, `log in`; stop words count
/// here), and a word with digits may be an abbreviation (`k8s`) that the splitter breaks up.
pub fn implied_concepts(text: &str, mut f: impl FnMut(u16)) {
    let t = table();
    if let Some(g) = t.issue.filter(|_| has_ticket_key(text)) {
        f(g);
    }
    let mut pair = String::new();
    let mut prev: Option<&str> = None;
    words(text, |w| {
        let s = stem(w);
        if let Some(head) = prev {
            pair.clear();
            pair.push_str(head);
            pair.push(' ');
            pair.push_str(s);
            t.phrases
                .get(pair.as_str())
                .into_iter()
                .flatten()
                .for_each(|&g| f(g));
        }
        prev = t.phrase_heads.get_key_value(s).map(|(k, _)| k.as_str());
    });
    for raw in text.split(|c: char| !c.is_alphanumeric()) {
        let b = raw.as_bytes();
        if b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic) {
            let lower = raw.to_ascii_lowercase();
            t.compounds
                .get(&lower)
                .into_iter()
                .flatten()
                .for_each(|&g| f(g));
        }
    }
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
        let implied = |t: &str| {
            let mut v = Vec::new();
            implied_concepts(t, |g| v.push(g));
            v
        };
        assert_eq!(implied("see ENG-1").len(), 1);
        let pr = concepts("pr");
        assert!(implied("open a pull request")
            .iter()
            .any(|g| pr.contains(g)));
        assert!(implied("createPullRequest").iter().any(|g| pr.contains(g)));
        assert!(!implied("pull the request").iter().any(|g| pr.contains(g)));
        let kube = concepts("kubernetes");
        assert!(implied("list K8s pods").iter().any(|g| kube.contains(g)));
        assert!(implied("k 8 s").is_empty());
        assert!(shared("repo", "repositories"));
        assert!(shared("env", "environment"));
        assert!(shared("erase", "deleting"));
    }
}
