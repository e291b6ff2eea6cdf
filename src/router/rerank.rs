//! The second stage of hybrid search: the fused top candidates are re-scored with signals the
//! bag-of-features scores miss — how much of the tool's *name* the query accounts for (a query
//! that says "add a customer" explains `createCustomer` whole, `addIssueToProject` by a third),
//! whether the query names the tool's server, and how much of the *query* the tool accounts for,
//! anywhere and in its head (`cover`).

use hashbrown::HashMap;

use super::cover::{QueryTerms, ToolTerms};
use super::features::{text_keys, word_keys};
use super::postings::Hit;
use super::text::{is_stop, stem, words, ToolDoc};

/// Per tool: its name's words as key sets (word and concepts), and its server.
#[derive(Debug, Default)]
pub struct NameKeys {
    /// Per tool, per name word, the keys that match it.
    words: Vec<Box<[Box<[u32]>]>>,
    server_of: Vec<u32>,
    /// Per server, the keys of its name's words.
    servers: Vec<Box<[u32]>>,
    /// Whether thesaurus concepts count as a match.
    concepts: bool,
}

impl NameKeys {
    pub fn build(docs: &[ToolDoc], concepts: bool) -> NameKeys {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut keys = NameKeys {
            concepts,
            ..NameKeys::default()
        };
        // Per server: its tool count, and how many of its tool names have each word. A word in
        // most of one server's names (`API-…`, `browser_…`, `kubectl_…`) tells its tools apart
        // from nothing: it is left out of the name.
        let mut tools_per_server: Vec<usize> = Vec::new();
        let mut word_count: HashMap<(u32, String), usize> = HashMap::new();
        let mut names: Vec<Vec<(String, String)>> = Vec::with_capacity(docs.len());
        for doc in docs {
            let next = ids.len() as u32;
            let id = *ids.entry(doc.server.as_str()).or_insert(next);
            if id as usize == keys.servers.len() {
                let mut k = Vec::new();
                text_keys(&doc.server, concepts, &mut k);
                keys.servers.push(k.into_boxed_slice());
                tools_per_server.push(0);
            }
            if let Some(n) = tools_per_server.get_mut(id as usize) {
                *n += 1;
            }
            keys.server_of.push(id);
            let mut server_stems: Vec<String> = Vec::new();
            words(&doc.server, |w| server_stems.push(stem(w).to_owned()));
            let mut name: Vec<(String, String)> = Vec::new();
            words(&doc.tool, |w| {
                let st = stem(w);
                if is_stop(w)
                    || server_stems.iter().any(|s| s == st)
                    || name.iter().any(|n| n.1 == st)
                {
                    return;
                }
                name.push((w.to_owned(), st.to_owned()));
            });
            for (_, st) in &name {
                *word_count.entry((id, st.clone())).or_insert(0) += 1;
            }
            names.push(name);
        }
        for (t, name) in names.iter().enumerate() {
            let id = keys.server_of.get(t).copied().unwrap_or(0);
            let size = tools_per_server.get(id as usize).copied().unwrap_or(0);
            let mut name_words: Vec<Box<[u32]>> = Vec::new();
            for (w, st) in name {
                let shared = word_count.get(&(id, st.clone())).copied().unwrap_or(0);
                if size >= 4 && shared * 2 > size {
                    continue;
                }
                let mut k = Vec::new();
                word_keys(w, concepts, &mut |x| k.push(x));
                if !k.is_empty() {
                    name_words.push(k.into_boxed_slice());
                }
            }
            keys.words.push(name_words.into_boxed_slice());
        }
        keys
    }

    /// Share of tool `t`'s name words that `query` (sorted keys) contains.
    fn name_cover(&self, t: usize, query: &[u32]) -> f32 {
        let Some(words) = self.words.get(t) else {
            return 0.0;
        };
        if words.is_empty() {
            return 0.0;
        }
        let hit = words
            .iter()
            .filter(|keys| keys.iter().any(|k| query.binary_search(k).is_ok()))
            .count();
        hit as f32 / words.len() as f32
    }

    /// 1 when the query names tool `t`'s server.
    fn server_named(&self, t: usize, query: &[u32]) -> f32 {
        let named = self
            .server_of
            .get(t)
            .and_then(|&s| self.servers.get(s as usize))
            .is_some_and(|keys| keys.iter().any(|k| query.binary_search(k).is_ok()));
        if named {
            1.0
        } else {
            0.0
        }
    }
}

/// The second stage's signal weights (each signal is in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankWeights {
    /// Share of the tool's name words the query accounts for.
    pub name: f32,
    /// The query names the tool's server.
    pub server: f32,
    /// Idf share of the query's words the tool has anywhere ([`ToolTerms::cover`]).
    pub cover: f32,
    /// Idf share of the query's words the tool has in its name, server or first sentence.
    pub head: f32,
}

impl RerankWeights {
    /// Whether the query-coverage signals count (and the term sets are needed).
    pub fn uses_cover(&self) -> bool {
        self.cover > 0.0 || self.head > 0.0
    }
}

/// What the second stage reads: the index's name keys and term sets, the query's words for
/// coverage (already filled when it counts), and scratch for the query's name keys.
pub struct Stage<'a> {
    pub names: &'a NameKeys,
    pub terms: &'a ToolTerms,
    pub query_keys: &'a mut Vec<u32>,
    pub query_terms: &'a QueryTerms,
}

/// Re-score `hits` (the fused candidates, already filtered for visibility) and keep the best
/// `top_k` at or above `min_score`.
pub fn rerank(
    mut hits: Vec<Hit>,
    stage: Stage<'_>,
    query: &str,
    w: &RerankWeights,
    top_k: usize,
    min_score: f32,
) -> Vec<Hit> {
    let Stage {
        names: keys,
        terms,
        query_keys,
        query_terms,
    } = stage;
    query_keys.clear();
    text_keys(query, keys.concepts, query_keys);
    query_keys.sort_unstable();
    query_keys.dedup();
    // Divided by the largest possible sum, a linear-fusion score stays in [0, 1].
    let scale =
        1.0 / (1.0 + w.name.max(0.0) + w.server.max(0.0) + w.cover.max(0.0) + w.head.max(0.0));
    for h in &mut hits {
        let mut s = h.score
            + w.name * keys.name_cover(h.tool, query_keys)
            + w.server * keys.server_named(h.tool, query_keys);
        if w.uses_cover() {
            let c = terms.cover(h.tool, query_terms);
            s += w.cover * c.any + w.head * c.head;
        }
        h.score = s * scale;
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool)));
    hits.retain(|h| h.score >= min_score);
    hits.truncate(top_k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_cover_and_server() {
        let docs: Vec<ToolDoc> = [
            ("linear", "linear_createCustomer"),
            ("linear", "linear_addIssueToProject"),
            ("github", "create_issue"),
        ]
        .iter()
        .map(|(s, t)| ToolDoc::from_tool(s, &format!("{s}__{t}"), &json!({"name": t})))
        .collect();
        let keys = NameKeys::build(&docs, true);
        let mut q = Vec::new();
        text_keys("add Globex as a customer in Linear", true, &mut q);
        q.sort_unstable();
        assert_eq!(keys.name_cover(0, &q), 1.0);
        assert!(keys.name_cover(1, &q) < 0.5);
        assert_eq!(keys.server_named(0, &q), 1.0);
        assert_eq!(keys.server_named(2, &q), 0.0);
        assert_eq!(keys.name_cover(9, &q), 0.0);
    }
}
