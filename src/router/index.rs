//! The routing index: a semantic (character n-gram TF-IDF, cosine) and a keyword (BM25) inverted
//! index over the same tools, built together, immutable once built, searched by any strategy.

use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::cover::{QueryTerms, ToolTerms};
use super::features::{
    doc_fields, is_gram, text_ngrams, text_tokens, text_tokens_weighted, Bag, FieldWeights,
    NgramShape,
};
use super::postings::{top_k, Accumulator, Hit, Postings, Scratch, SCRATCH};
use super::rerank::{rerank, NameKeys, RerankWeights, Stage};
use super::text::ToolDoc;
use super::Strategy;

/// One query feature's postings (tools, weights) and its query weight.
type List<'a> = (&'a [u32], &'a [f32], f32);

/// How hybrid search fuses the two rankings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)` over the top `depth` of each ranking.
    Rrf { k: f32, depth: usize },
    /// `w · cosine + (1 − w) · bm25 / max bm25` over every tool either index touched.
    Linear { semantic_weight: f32 },
}

/// What an index is built with; the defaults are the measured choice (perf/results).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexConfig {
    pub fields: FieldWeights,
    pub ngram: NgramShape,
    pub bm25_k1: f32,
    pub bm25_b: f32,
    /// Weight of a thesaurus concept in the keyword index (the semantic one's is in `ngram`).
    pub keyword_concept_weight: f32,
    pub fusion: Fusion,
    /// Hybrid only: how many fused candidates are re-scored by name cover and server mention
    /// (0 = no second stage), and the weights of those two signals.
    pub rerank_depth: usize,
    pub rerank: RerankWeights,
    /// Strategy and threshold of [`RouterIndex::search`] (see [`IndexConfig::threshold`]).
    pub strategy: Strategy,
    pub min_score: f32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            fields: FieldWeights::default(),
            ngram: NgramShape::default(),
            bm25_k1: 1.2,
            bm25_b: 0.75,
            keyword_concept_weight: 1.0,
            fusion: Fusion::Linear {
                semantic_weight: 0.5,
            },
            rerank_depth: 30,
            rerank: RerankWeights {
                name: 0.2,
                server: 0.1,
                cover: 0.3,
                head: 0.3,
            },
            strategy: Strategy::Hybrid,
            min_score: 0.05,
        }
    }
}

impl IndexConfig {
    /// `min_score` where the strategy scores in [0, 1] (semantic; hybrid with linear fusion),
    /// else 0: BM25 and reciprocal-rank sums have no fixed scale to put a threshold on.
    pub fn threshold(&self, strategy: Strategy) -> f32 {
        match (strategy, self.fusion) {
            (Strategy::Semantic, _) | (Strategy::Hybrid, Fusion::Linear { .. }) => self.min_score,
            _ => 0.0,
        }
    }
}

/// One search: which strategy, how many results, and the lowest score returned. Scores are a
/// cosine in [0, 1] (semantic), BM25 (keyword, unbounded), and for hybrid in [0, 1] with linear
/// fusion (the default; RRF gives sums of reciprocal ranks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    pub strategy: Strategy,
    pub top_k: usize,
    pub min_score: f32,
}

/// An immutable index over one catalog generation. Tools are numbered by their position in the
/// list it was built from.
#[derive(Debug)]
pub struct RouterIndex {
    generation: u64,
    names: Vec<Box<str>>,
    config: IndexConfig,
    semantic: Postings,
    keyword: Postings,
    names_keys: NameKeys,
    terms: ToolTerms,
    build_time: Duration,
}

impl RouterIndex {
    /// Build the index of `docs` (the caller's catalog `generation` is kept for the swap).
    pub fn build(generation: u64, docs: &[ToolDoc], config: IndexConfig) -> RouterIndex {
        let started = Instant::now();
        let n = docs.len();
        let mut bag = Bag::default();
        let mut sem_docs = Vec::with_capacity(n);
        let mut kw_docs = Vec::with_capacity(n);
        let mut kw_len = Vec::with_capacity(n);
        // Only hybrid's second stage reads the term sets; filled from the keyword features.
        let with_terms = config.rerank_depth > 0 && config.rerank.uses_cover();
        let mut terms = ToolTerms::default();
        let mut pairs: Vec<(u32, bool)> = Vec::new();
        for doc in docs {
            bag.clear();
            doc_fields(doc, &config.fields, |text, w, _| {
                text_ngrams(text, &config.ngram, w, &mut |k, v| bag.push(k, v))
            });
            // Sublinear term frequency: a word repeated in a long description is not ten times
            // the evidence.
            let sem: Vec<(u32, f32)> = bag
                .merged()
                .iter()
                .map(|&(k, tf)| (k, tf.ln_1p()))
                .collect();
            sem_docs.push(sem);
            bag.clear();
            pairs.clear();
            doc_fields(doc, &config.fields, |text, w, head| {
                let from = bag.len();
                text_tokens_weighted(text, w, config.keyword_concept_weight, &mut bag);
                if with_terms {
                    pairs.extend(bag.features_since(from).map(|k| (k, head)));
                }
            });
            if with_terms {
                terms.push_tool(&mut pairs);
            }
            let kw = bag.merged().clone();
            kw_len.push(kw.iter().map(|&(_, tf)| tf).sum::<f32>());
            kw_docs.push(kw);
        }

        let nf = n as f32;
        let mut semantic = Postings::build(&sem_docs);
        semantic.set_idf(|df| ((nf + 1.0) / (df as f32 + 0.5)).ln());
        semantic.map_weights(|idf, _, tf| tf * idf);
        // L2-normalize each tool's vector so a dot product is a cosine.
        let mut norms = vec![0f32; n];
        semantic.map_weights(|_, t, w| {
            if let Some(x) = norms.get_mut(t as usize) {
                *x += w * w;
            }
            w
        });
        semantic.map_weights(|_, t, w| {
            let norm = norms.get(t as usize).map_or(0.0, |x| x.sqrt());
            if norm > 0.0 {
                w / norm
            } else {
                0.0
            }
        });

        let mut keyword = Postings::build(&kw_docs);
        keyword.set_idf(|df| (1.0 + (nf - df as f32 + 0.5) / (df as f32 + 0.5)).ln());
        let avg = (kw_len.iter().sum::<f32>() / nf.max(1.0)).max(f32::MIN_POSITIVE);
        let (k1, b) = (config.bm25_k1, config.bm25_b);
        // The BM25 term weight of each posting is fixed at build time; a query only multiplies
        // by idf.
        keyword.map_weights(|_, t, tf| {
            let dl = kw_len.get(t as usize).copied().unwrap_or(avg);
            tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avg))
        });

        RouterIndex {
            generation,
            names: docs.iter().map(|d| d.name.as_str().into()).collect(),
            config,
            semantic,
            keyword,
            names_keys: NameKeys::build(docs, config.ngram.concept_weight > 0.0),
            terms,
            build_time: started.elapsed(),
        }
    }

    /// The per-tool term sets of the second stage (empty unless it uses coverage).
    #[cfg(test)]
    pub(crate) fn terms(&self) -> &ToolTerms {
        &self.terms
    }

    /// `query`'s words for [`ToolTerms::cover`], with the keyword index's idf.
    pub(crate) fn query_terms(&self, query: &str, q: &mut QueryTerms) {
        let idf = |k: u32| self.keyword.get(k).map(|(_, _, idf)| idf);
        self.terms
            .query(query, self.config.keyword_concept_weight, &idf, q);
    }

    /// The catalog generation this index was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The public name of tool `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(|n| &**n)
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// How long [`RouterIndex::build`] took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// Distinct features (semantic, keyword) and postings (semantic, keyword): the index's size.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        (
            self.semantic.features(),
            self.keyword.features(),
            self.semantic.len(),
            self.keyword.len(),
        )
    }

    /// The best `top_k` visible tools for `query` with the index's own strategy and threshold.
    pub fn search(&self, query: &str, top_k: usize, visible: impl Fn(usize) -> bool) -> Vec<Hit> {
        let opts = SearchOptions {
            strategy: self.config.strategy,
            top_k,
            min_score: self.config.threshold(self.config.strategy),
        };
        self.search_with(query, &opts, visible)
    }

    /// The best `opts.top_k` tools for `query` for which `visible(tool)` is true, best first.
    /// Allocation-free apart from the result: the accumulators are per thread.
    pub fn search_with(
        &self,
        query: &str,
        opts: &SearchOptions,
        visible: impl Fn(usize) -> bool,
    ) -> Vec<Hit> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.search_in(query, opts, &visible, &mut scratch),
            // Re-entered from inside `visible`: use a fresh scratch rather than fail.
            Err(_) => self.search_in(query, opts, &visible, &mut Scratch::default()),
        })
    }

    fn search_in(
        &self,
        query: &str,
        opts: &SearchOptions,
        visible: &dyn Fn(usize) -> bool,
        s: &mut Scratch,
    ) -> Vec<Hit> {
        let n = self.names.len();
        match opts.strategy {
            Strategy::Semantic => {
                self.score_semantic(query, &mut s.bag, &mut s.semantic);
                let acc = &s.semantic;
                top_k(
                    acc.touched(),
                    |t| acc.score(t),
                    opts.top_k,
                    opts.min_score,
                    visible,
                )
            }
            Strategy::Keyword => {
                self.score_keyword(query, &mut s.bag, &mut s.keyword);
                let acc = &s.keyword;
                top_k(
                    acc.touched(),
                    |t| acc.score(t),
                    opts.top_k,
                    opts.min_score,
                    visible,
                )
            }
            Strategy::Hybrid => {
                self.score_semantic(query, &mut s.bag, &mut s.semantic);
                self.score_keyword(query, &mut s.bag, &mut s.keyword);
                let depth = self.config.rerank_depth;
                let first = SearchOptions {
                    top_k: if depth > 0 {
                        depth.max(opts.top_k)
                    } else {
                        opts.top_k
                    },
                    min_score: if depth > 0 { 0.0 } else { opts.min_score },
                    ..*opts
                };
                let fused = match self.config.fusion {
                    Fusion::Linear { semantic_weight } => {
                        linear(s, semantic_weight, &first, visible)
                    }
                    Fusion::Rrf { k, depth } => rrf(s, n, k, depth, &first, visible),
                };
                if depth == 0 {
                    return fused;
                }
                if self.config.rerank.uses_cover() {
                    self.query_terms(query, &mut s.query_terms);
                }
                let stage = Stage {
                    names: &self.names_keys,
                    terms: &self.terms,
                    query_keys: &mut s.query_keys,
                    query_terms: &s.query_terms,
                };
                rerank(
                    fused,
                    stage,
                    query,
                    &self.config.rerank,
                    opts.top_k,
                    opts.min_score,
                )
            }
        }
    }

    fn score_semantic(&self, query: &str, bag: &mut Bag, acc: &mut Accumulator) {
        let n = self.names.len();
        acc.reset(n);
        bag.clear();
        text_ngrams(query, &self.config.ngram, 1.0, &mut |k, v| bag.push(k, v));
        // Query weights: sublinear tf × idf, normalized; unknown features carry no weight.
        let mut norm = 0.0f32;
        let mut lists: SmallVec<[List<'_>; 128]> = SmallVec::new();
        let max_len = ((n as f32) * self.config.ngram.max_df).ceil() as usize;
        for &(k, tf) in bag.merged().iter() {
            if let Some((tools, weights, idf)) = self.semantic.get(k) {
                let w = tf.ln_1p() * idf;
                norm += w * w;
                // Common n-grams cost the longest lists and move a cosine least.
                if !(is_gram(k) && tools.len() > max_len) {
                    lists.push((tools, weights, w));
                }
            }
        }
        if norm <= 0.0 {
            return;
        }
        let inv = 1.0 / norm.sqrt();
        for &(tools, weights, w) in &lists {
            acc.add(tools, weights, w * inv);
        }
    }

    fn score_keyword(&self, query: &str, bag: &mut Bag, acc: &mut Accumulator) {
        acc.reset(self.names.len());
        bag.clear();
        text_tokens(query, self.config.keyword_concept_weight, bag);
        for &(k, qtf) in bag.merged().iter() {
            if let Some((tools, weights, idf)) = self.keyword.get(k) {
                acc.add(tools, weights, idf * qtf);
            }
        }
    }
}

fn linear(
    s: &Scratch,
    semantic_weight: f32,
    opts: &SearchOptions,
    visible: &dyn Fn(usize) -> bool,
) -> Vec<Hit> {
    let (sem, kw) = (&s.semantic, &s.keyword);
    let max_kw = kw
        .touched()
        .iter()
        .map(|&t| kw.score(t))
        .fold(0.0f32, f32::max);
    let kw_scale = if max_kw > 0.0 { 1.0 / max_kw } else { 0.0 };
    let fused =
        |t: u32| semantic_weight * sem.score(t) + (1.0 - semantic_weight) * kw.score(t) * kw_scale;
    // Every keyword hit has n-grams in common with the query too, so the semantic touched set
    // covers the union.
    top_k(sem.touched(), fused, opts.top_k, opts.min_score, visible)
}

fn rrf(
    s: &Scratch,
    n: usize,
    k: f32,
    depth: usize,
    opts: &SearchOptions,
    visible: &dyn Fn(usize) -> bool,
) -> Vec<Hit> {
    let depth = depth.max(opts.top_k);
    let sem = top_k(
        s.semantic.touched(),
        |t| s.semantic.score(t),
        depth,
        0.0,
        visible,
    );
    let kw = top_k(
        s.keyword.touched(),
        |t| s.keyword.score(t),
        depth,
        0.0,
        visible,
    );
    let mut fused: Vec<Hit> = Vec::with_capacity(sem.len() + kw.len());
    for list in [&sem, &kw] {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (k + rank as f32 + 1.0);
            match fused.iter_mut().find(|h| h.tool == hit.tool) {
                Some(h) => h.score += add,
                None if hit.tool < n => fused.push(Hit {
                    tool: hit.tool,
                    score: add,
                }),
                None => {}
            }
        }
    }
    fused.retain(|h| h.score >= opts.min_score);
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.tool.cmp(&b.tool)));
    fused.truncate(opts.top_k);
    fused
}
