//! Query coverage for hybrid's second stage: how much of the *query* a tool accounts for. The
//! first-stage scores add up evidence per word, so a tool whose name repeats one common query
//! word (`git_add` for "add three contacts to HubSpot") can outscore a tool that accounts for
//! most of the query's words more weakly. Coverage is the idf-weighted share of the query's
//! words (a word counts when the tool has it or one of its thesaurus concepts), over the whole
//! tool and over its head (name, server, first sentence) — Lucene's old coordination factor,
//! made field-aware.

use hashbrown::HashMap;

use super::features::{implied_keys, split_lead, text_keys, word_keys};
use super::text::{is_stop, words, ToolDoc};

/// Per tool, the sorted keys of every word of every field, each marked head or body.
#[derive(Debug, Default)]
pub struct ToolTerms {
    /// `keys[start[t]..start[t + 1]]` are tool `t`'s keys, ascending.
    start: Vec<u32>,
    keys: Vec<u32>,
    head: Vec<bool>,
    /// Tools per key, for the query words' idf.
    df: HashMap<u32, u32>,
    tools: usize,
    concepts: bool,
}

/// A query's words as coverage sees them: per word its keys and idf (flat, reused per thread).
#[derive(Debug, Default)]
pub struct QueryTerms {
    keys: Vec<u32>,
    /// (start in `keys`, key count, idf)
    words: Vec<(u32, u32, f32)>,
    total_idf: f32,
}

/// How a tool covers a query: idf share in any field, and in the head fields.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cover {
    pub any: f32,
    pub head: f32,
}

impl ToolTerms {
    pub fn build(docs: &[ToolDoc], concepts: bool) -> ToolTerms {
        let mut terms = ToolTerms {
            concepts,
            tools: docs.len(),
            ..ToolTerms::default()
        };
        terms.start.push(0);
        let mut pairs: Vec<(u32, bool)> = Vec::new();
        let mut buf: Vec<u32> = Vec::new();
        for doc in docs {
            pairs.clear();
            let (lead, rest) = split_lead(&doc.description);
            let head = [doc.tool.as_str(), doc.server.as_str(), lead];
            let body = std::iter::once(rest).chain(
                doc.params
                    .iter()
                    .flat_map(|(n, d)| [n.as_str(), d.as_str()]),
            );
            for (text, is_head) in head
                .into_iter()
                .map(|t| (t, true))
                .chain(body.map(|t| (t, false)))
            {
                buf.clear();
                text_keys(text, concepts, &mut buf);
                pairs.extend(buf.iter().map(|&k| (k, is_head)));
            }
            // Sorted by key, head first among equals: the first of a run says whether any is head.
            pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            pairs.dedup_by_key(|p| p.0);
            for &(k, h) in &pairs {
                terms.keys.push(k);
                terms.head.push(h);
                *terms.df.entry(k).or_insert(0) += 1;
            }
            terms.start.push(terms.keys.len() as u32);
        }
        terms
    }

    fn idf(&self, key: u32) -> Option<f32> {
        let df = *self.df.get(&key)?;
        Some(((self.tools as f32 + 1.0) / (df as f32 + 0.5)).ln())
    }

    /// Fill `q` with the words of `query`. A word's idf is its own (stemmed) word's, or, for a
    /// word no tool has, its rarest concept's; a word that matches nothing at all is left out
    /// (it would lower every tool's coverage alike).
    pub fn query(&self, query: &str, q: &mut QueryTerms) {
        q.keys.clear();
        q.words.clear();
        q.total_idf = 0.0;
        let mut keys: Vec<u32> = Vec::with_capacity(8);
        if self.concepts {
            implied_keys(query, &mut keys);
            for &k in &keys {
                self.push_word(q, &[k]);
            }
        }
        words(query, |w| {
            if is_stop(w) {
                return;
            }
            keys.clear();
            word_keys(w, self.concepts, &mut |k| keys.push(k));
            // The same word twice counts once.
            let seen = q
                .words
                .iter()
                .any(|&(s, _, _)| keys.first() == q.keys.get(s as usize));
            if !seen {
                self.push_word(q, &keys);
            }
        });
    }

    fn push_word(&self, q: &mut QueryTerms, keys: &[u32]) {
        let Some(&own) = keys.first() else { return };
        let idf = self.idf(own).or_else(|| {
            keys[1..]
                .iter()
                .filter_map(|&k| self.idf(k))
                .reduce(f32::max)
        });
        let Some(idf) = idf.filter(|i| *i > 0.0) else {
            return;
        };
        q.words.push((q.keys.len() as u32, keys.len() as u32, idf));
        q.keys.extend_from_slice(keys);
        q.total_idf += idf;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tool_that_explains_more_of_the_query_covers_more() {
        let docs: Vec<ToolDoc> = [
            ("git", json!({"name": "git_add", "description": "Adds file contents to the staging area"})),
            ("hubspot", json!({"name": "hubspot-batch-create-objects", "description": "Create several records at once. Types: contacts, companies, deals."})),
        ]
        .iter()
        .map(|(s, t)| ToolDoc::from_tool(s, &format!("{s}__x"), t))
        .collect();
        let terms = ToolTerms::build(&docs, true);
        let mut q = QueryTerms::default();
        terms.query("add three new contacts to HubSpot", &mut q);
        let (git, hub) = (terms.cover(0, &q), terms.cover(1, &q));
        assert!(hub.any > git.any, "{hub:?} {git:?}");
        assert!(hub.head > 0.0 && hub.head < hub.any);
        assert!(git.any > 0.0);
        assert_eq!(terms.cover(7, &q), Cover::default());
        terms.query("zzzz qqqq", &mut q);
        assert_eq!(terms.cover(0, &q), Cover::default());
    }
}
