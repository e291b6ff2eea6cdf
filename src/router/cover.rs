//! Query coverage for hybrid's second stage: how much of the *query* a tool accounts for. The
//! first-stage scores add up evidence per word, so a tool whose name repeats one common query
//! word (`git_add` for "add three contacts to HubSpot") can outscore a tool that accounts for
//! most of the query's words more weakly. Coverage is the idf-weighted share of the query's
//! words (a word counts when the tool has it or one of its thesaurus concepts), over the whole
//! tool and over its head (name, server, first sentence) — Lucene's old coordination factor,
//! made field-aware.

use super::features::{implied_keys, word_token};
use super::text::{is_stop, words};

/// Per tool, the sorted keyword-index features (stemmed words and thesaurus concepts) of every
/// field, each marked head (name, server, first sentence) or body. Filled while the keyword index
/// is built, from the same features, so a query's words are looked up as the keyword index
/// would.
#[derive(Debug, Default)]
pub struct ToolTerms {
    /// `keys[start[t]..start[t + 1]]` are tool `t`'s features, ascending.
    start: Vec<u32>,
    keys: Vec<u32>,
    head: Vec<bool>,
}

/// A query's words as coverage sees them: per word its keys and idf (flat, reused per thread).
#[derive(Debug, Default)]
pub struct QueryTerms {
    keys: Vec<u32>,
    /// (start in `keys`, key count, idf)
    words: Vec<(u32, u32, f32)>,
    total_idf: f32,
    scratch: Vec<u32>,
}

/// How a tool covers a query: idf share in any field, and in the head fields.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cover {
    pub any: f32,
    pub head: f32,
}

impl ToolTerms {
    /// Add the next tool from its (feature, in head) pairs, in any order, repeats allowed.
    pub fn push_tool(&mut self, pairs: &mut [(u32, bool)]) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        // By feature, head first among equals: the first of a run says whether any is head.
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut last = None;
        for &(k, h) in pairs.iter() {
            if last != Some(k) {
                self.keys.push(k);
                self.head.push(h);
                last = Some(k);
            }
        }
        self.start.push(self.keys.len() as u32);
    }

    /// Fill `q` with the words of `query`; `idf` gives a feature's idf (`None`: no tool has
    /// it). A word's idf is its own (stemmed) word's, or, for a word no tool has, its rarest
    /// concept's; a word that matches nothing at all is left out (it would lower every tool's
    /// coverage alike). `concept_weight` 0 leaves the thesaurus out.
    pub fn query(
        &self,
        query: &str,
        concept_weight: f32,
        idf: &impl Fn(u32) -> Option<f32>,
        q: &mut QueryTerms,
    ) {
        q.keys.clear();
        q.words.clear();
        q.total_idf = 0.0;
        let mut keys = std::mem::take(&mut q.scratch);
        keys.clear();
        if concept_weight > 0.0 {
            implied_keys(query, &mut keys);
            for i in 0..keys.len() {
                push_word(q, &keys[i..=i], idf);
            }
        }
        words(query, |w| {
            if is_stop(w) {
                return;
            }
            keys.clear();
            word_token(w, 1.0, concept_weight, &mut |k, _| keys.push(k));
            // The same word twice counts once.
            let seen = q
                .words
                .iter()
                .any(|&(s, _, _)| keys.first() == q.keys.get(s as usize));
            if !seen {
                push_word(q, &keys, idf);
            }
        });
        q.scratch = keys;
    }

    /// How tool `t` covers the query `q`.
    pub fn cover(&self, t: usize, q: &QueryTerms) -> Cover {
        let (Some(&s), Some(&e)) = (self.start.get(t), self.start.get(t + 1)) else {
            return Cover::default();
        };
        if q.total_idf <= 0.0 {
            return Cover::default();
        }
        let (keys, head) = (
            &self.keys[s as usize..e as usize],
            &self.head[s as usize..e as usize],
        );
        let mut c = Cover::default();
        for &(ws, wn, idf) in &q.words {
            let mut best = 0u8;
            for k in &q.keys[ws as usize..(ws + wn) as usize] {
                if let Ok(i) = keys.binary_search(k) {
                    best = best.max(if head[i] { 2 } else { 1 });
                    if best == 2 {
                        break;
                    }
                }
            }
            if best >= 1 {
                c.any += idf;
            }
            if best == 2 {
                c.head += idf;
            }
        }
        c.any /= q.total_idf;
        c.head /= q.total_idf;
        c
    }
}

fn push_word(q: &mut QueryTerms, keys: &[u32], idf: &impl Fn(u32) -> Option<f32>) {
    let Some((&own, concepts)) = keys.split_first() else {
        return;
    };
    let idf = idf(own).or_else(|| concepts.iter().filter_map(|&k| idf(k)).reduce(f32::max));
    let Some(idf) = idf.filter(|i| *i > 0.0) else {
        return;
    };
    q.words.push((q.keys.len() as u32, keys.len() as u32, idf));
    q.keys.extend_from_slice(keys);
    q.total_idf += idf;
}

#[cfg(test)]
mod tests {
    use super::super::{IndexConfig, RerankWeights, RouterIndex, SearchOptions, Strategy, ToolDoc};
    use serde_json::json;

    /// A tool whose name holds one common query word (`add`) ranks below the one that accounts for
    /// most of the query, and coverage widens the gap.
    #[test]
    fn the_tool_that_explains_more_of_the_query_wins() {
        let tools = [
            (
                "git",
                json!({"name": "git_add", "description": "Add file contents to the staging area"}),
            ),
            (
                "linear",
                json!({"name": "linear_addToFavorites", "description": "Add an item to your favorites"}),
            ),
            (
                "hubspot",
                json!({"name": "hubspot-batch-create-objects", "description": "Create several records at once. Types: contacts, companies, deals."}),
            ),
            (
                "hubspot",
                json!({"name": "hubspot-get-user-details", "description": "Get the details of the signed-in user"}),
            ),
            (
                "memory",
                json!({"name": "add_observations", "description": "Add new observations to existing entities"}),
            ),
            (
                "linear",
                json!({"name": "linear_addIssueToProject", "description": "Add an issue to a project"}),
            ),
            (
                "todoist",
                json!({"name": "add_comment", "description": "Add a comment to a task"}),
            ),
        ];
        let docs: Vec<ToolDoc> = tools
            .iter()
            .map(|(s, t)| {
                ToolDoc::from_tool(s, &format!("{s}__{}", t["name"].as_str().unwrap_or("")), t)
            })
            .collect();
        let query = "add three new contacts to HubSpot";
        let ranking = |config: IndexConfig| {
            let index = RouterIndex::build(1, &docs, config);
            let opts = SearchOptions {
                strategy: Strategy::Hybrid,
                top_k: 4,
                min_score: 0.0,
            };
            index.search_with(query, &opts, |_| true)
        };
        let on = IndexConfig::default();
        assert!(on.rerank.uses_cover());
        let off = IndexConfig {
            rerank: RerankWeights {
                cover: 0.0,
                head: 0.0,
                ..on.rerank
            },
            ..on
        };
        // The tool that explains the query wins, and by a wider margin once coverage counts.
        let lead = |config: IndexConfig| {
            let hits = ranking(config);
            assert_eq!(hits.first().map(|h| h.tool), Some(2), "{hits:?}");
            hits[0].score - hits.get(1).map_or(0.0, |h| h.score)
        };
        assert!(lead(on) > 2.0 * lead(off));
        let index = RouterIndex::build(1, &docs, on);
        let mut q = super::QueryTerms::default();
        index.query_terms(query, &mut q);
        let (git, hub) = (index.terms().cover(0, &q), index.terms().cover(2, &q));
        assert!(hub.any > git.any && git.any > 0.0, "{hub:?} {git:?}");
        // "contacts" is only in the body.
        assert!(hub.head > 0.0 && hub.head < hub.any, "{hub:?}");
        assert_eq!(index.terms().cover(9, &q), super::Cover::default());
        index.query_terms("zzzz qqqq", &mut q);
        assert_eq!(index.terms().cover(0, &q), super::Cover::default());
    }
}
