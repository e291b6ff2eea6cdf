//! Inverted lists in one flat array (feature → the tools that have it, with a weight), the score
//! accumulator a query fills, and the top-k selection that applies the visibility filter.

use std::cell::RefCell;

use hashbrown::HashMap;

/// Where one feature's list lies, and the feature's weight in a query (its idf).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    idf: f32,
}

/// Feature → a range of `tools`/`weights` (structure of arrays: a query walks them in order).
#[derive(Debug, Default)]
pub struct Postings {
    ranges: HashMap<u32, Span>,
    tools: Vec<u32>,
    weights: Vec<f32>,
}

impl Postings {
    /// Build from per-tool sparse vectors (each sorted by feature, no duplicates).
    pub fn build(docs: &[Vec<(u32, f32)>]) -> Postings {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for doc in docs {
            for &(k, _) in doc {
                *counts.entry(k).or_insert(0) += 1;
            }
        }
        let mut ranges = HashMap::with_capacity(counts.len());
        let mut start = 0u32;
        for (&k, &n) in &counts {
            ranges.insert(
                k,
                Span {
                    start,
                    len: 0,
                    idf: 0.0,
                },
            );
            start += n;
        }
        let total = start as usize;
        let mut tools = vec![0u32; total];
        let mut weights = vec![0f32; total];
        for (t, doc) in docs.iter().enumerate() {
            for &(k, w) in doc {
                if let Some(r) = ranges.get_mut(&k) {
                    let at = (r.start + r.len) as usize;
                    tools[at] = t as u32;
                    weights[at] = w;
                    r.len += 1;
                }
            }
        }
        Postings {
            ranges,
            tools,
            weights,
        }
    }

    /// Set every feature's idf from its document frequency.
    pub fn set_idf(&mut self, idf: impl Fn(usize) -> f32) {
        for r in self.ranges.values_mut() {
            r.idf = idf(r.len as usize);
        }
    }

    /// Rewrite every posting's weight: `f(feature idf, tool, weight)`.
    pub fn map_weights(&mut self, mut f: impl FnMut(f32, u32, f32) -> f32) {
        for r in self.ranges.values() {
            let (s, e) = (r.start as usize, (r.start + r.len) as usize);
            for i in s..e {
                self.weights[i] = f(r.idf, self.tools[i], self.weights[i]);
            }
        }
    }

    /// The tools having `feature`, with their weights (ascending tool order), and its idf.
    #[inline]
    pub fn get(&self, feature: u32) -> Option<(&[u32], &[f32], f32)> {
        let r = self.ranges.get(&feature)?;
        let (s, e) = (r.start as usize, (r.start + r.len) as usize);
        Some((&self.tools[s..e], &self.weights[s..e], r.idf))
    }

    /// Number of tools having `feature`.
    pub fn df(&self, feature: u32) -> usize {
        self.ranges.get(&feature).map_or(0, |r| r.len as usize)
    }

    pub fn features(&self) -> usize {
        self.ranges.len()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// A score per tool and the list of tools touched; cleared by walking the touched list, so a
/// query costs what it touches, not the catalog size.
#[derive(Debug, Default)]
pub struct Accumulator {
    scores: Vec<f32>,
    touched: Vec<u32>,
}

impl Accumulator {
    pub fn reset(&mut self, n: usize) {
        for &t in &self.touched {
            if let Some(s) = self.scores.get_mut(t as usize) {
                *s = 0.0;
            }
        }
        self.touched.clear();
        if self.scores.len() != n {
            self.scores.clear();
            self.scores.resize(n, 0.0);
        }
    }

    /// `scores[t] += q * w` for every posting.
    #[inline]
    pub fn add(&mut self, tools: &[u32], weights: &[f32], q: f32) {
        for (&t, &w) in tools.iter().zip(weights) {
            if let Some(s) = self.scores.get_mut(t as usize) {
                if *s == 0.0 {
                    self.touched.push(t);
                }
                // A tiny floor keeps a touched tool from reading as untouched.
                *s += (q * w).max(f32::MIN_POSITIVE);
            }
        }
    }

    #[inline]
    pub fn score(&self, t: u32) -> f32 {
        self.scores.get(t as usize).copied().unwrap_or(0.0)
    }

    pub fn touched(&self) -> &[u32] {
        &self.touched
    }
}

/// One result: a tool (its position in the list the index was built from) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub tool: usize,
    pub score: f32,
}

/// The best `k` of `candidates` by `score` (ties: lower tool index first) that pass `visible`
/// and reach `min_score`, best first.
pub fn top_k(
    candidates: &[u32],
    score: impl Fn(u32) -> f32,
    k: usize,
    min_score: f32,
    visible: &dyn Fn(usize) -> bool,
) -> Vec<Hit> {
    let mut best: Vec<Hit> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    let before = |a: &Hit, b: &Hit| a.score > b.score || (a.score == b.score && a.tool < b.tool);
    for &t in candidates {
        let s = score(t);
        if s < min_score || s.is_nan() {
            continue;
        }
        let hit = Hit {
            tool: t as usize,
            score: s,
        };
        if best.len() == k && best.last().is_some_and(|last| !before(&hit, last)) {
            continue;
        }
        if !visible(hit.tool) {
            continue;
        }
        let at = best.partition_point(|b| before(b, &hit));
        best.insert(at, hit);
        best.truncate(k);
    }
    best
}

thread_local! {
    /// Per-thread scratch: shards are threads, so a query never allocates its accumulators.
    pub static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The accumulators one query needs.
#[derive(Debug, Default)]
pub struct Scratch {
    pub semantic: Accumulator,
    pub keyword: Accumulator,
    pub bag: super::features::Bag,
    pub query_keys: Vec<u32>,
    pub query_terms: super::cover::QueryTerms,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_roundtrip() {
        let docs = vec![vec![(1, 0.5), (2, 1.0)], vec![(2, 0.25)], vec![]];
        let p = Postings::build(&docs);
        assert_eq!(p.get(2), Some((&[0u32, 1][..], &[1.0f32, 0.25][..], 0.0)));
        assert_eq!(p.df(1), 1);
        assert_eq!(p.get(9), None);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn top_k_orders_filters_and_breaks_ties() {
        let scores = [0.1f32, 0.9, 0.5, 0.9, 0.7];
        let cands: Vec<u32> = (0..5).collect();
        let all = |_: usize| true;
        let hits = top_k(&cands, |t| scores[t as usize], 3, 0.0, &all);
        let order: Vec<usize> = hits.iter().map(|h| h.tool).collect();
        assert_eq!(order, [1, 3, 4]);
        let no_three = |t: usize| t != 3;
        let hits = top_k(&cands, |t| scores[t as usize], 2, 0.6, &no_three);
        let order: Vec<usize> = hits.iter().map(|h| h.tool).collect();
        assert_eq!(order, [1, 4]);
        assert!(top_k(&cands, |t| scores[t as usize], 0, 0.0, &all).is_empty());
    }

    #[test]
    fn accumulator_resets_what_it_touched() {
        let mut a = Accumulator::default();
        a.reset(4);
        a.add(&[1, 3], &[0.5, 1.0], 2.0);
        a.add(&[1], &[0.5], 1.0);
        assert_eq!(a.score(1), 1.5);
        assert_eq!(a.touched(), &[1, 3]);
        a.reset(4);
        assert_eq!(a.score(1), 0.0);
        assert!(a.touched().is_empty());
    }
}
