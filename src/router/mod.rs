//! Tool search for meta-tool mode: find the right tool by intent among thousands, in microseconds,
//! with no model. Three strategies over one index:
//! - `semantic`: cosine over TF-IDF vectors of hashed character 3–4-grams, stemmed words and
//!   thesaurus concepts of a tool's name, server, description and parameters;
//! - `keyword`: BM25 over the same fields' words (snake_case/camelCase split, stemmed, concepts);
//! - `hybrid` (the default): both, max-normalized and averaged, then the top 30 re-scored by how
//!   much of the tool's name the query accounts for, whether it names the server, and how much of
//!   the query the tool accounts for (idf-weighted, anywhere and in its name/first sentence). It
//!   measured best on the development set: `perf/results/2026-11-25-routing.md`.
//!
//! Built off-core by [`IndexBuilder`] and swapped in whole through [`RouterHandle`].
//!
//! # Numbers (`perf/results/2026-11-25-routing.md`)
//! `switchyard route-eval` on the development set (589 real tools, 405 queries): hybrid recall@5
//! 0.931 (0.934 on the half its weights were tuned on, 0.927 on the other), all-MiniLM-L6-v2
//! 0.850–0.858. `taskset -c 1 cargo bench --bench router`: hybrid query p50 37 µs at 1,000 tools,
//! 183 µs at 10,000; a 10,000-tool build takes 0.43 s on the builder thread.
//!
//! # Use
//! ```no_run
//! use switchyard::router::{IndexBuilder, IndexConfig, RouterHandle, ToolDoc};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = RouterHandle::empty(IndexConfig::default());
//! let builder = IndexBuilder::spawn(handle.clone())?;
//! // On every catalog change (control thread): the docs in catalog order, the catalog generation.
//! let tool = serde_json::json!({"name": "create_issue", "description": "Open a new issue"});
//! builder.rebuild(1, vec![ToolDoc::from_tool("github", "github__create_issue", &tool)])?;
//! // On a shard: never waits for a build, never sees half of one.
//! let index = handle.load();
//! for hit in index.search("file a bug report", 5, |_tool| true) {
//!     println!("{} {:.3}", index.name(hit.tool).unwrap_or("?"), hit.score);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//! - `text`: a `tools/list` entry as a [`ToolDoc`]; word splitting, stop words, stemming.
//! - `features`: hashed n-gram and token features with field weights.
//! - `lexicon`: the thesaurus of interchangeable words (concept features).
//! - `postings`: the inverted lists, the per-thread accumulators, top-k with the visibility filter.
//! - `index`: [`RouterIndex`] — build and search, the three strategies.
//! - `rerank`: hybrid's second stage (name cover, server named, query cover) over the fused
//!   candidates.
//! - `cover`: query coverage — per tool the keyword features of its head and body.
//! - `holder`: [`RouterHandle`] (the `ArcSwap`) and [`IndexBuilder`] (the builder thread).
//! - `meta`: the meta-tools' definitions that replace the full tool list.
//! - `eval`, `report`, `command`: `switchyard route-eval` — recall, MRR, nDCG, latency, token saving.

pub mod command;
mod cover;
pub mod eval;
pub mod features;
pub mod holder;
pub mod index;
mod lexicon;
pub mod meta;
pub mod postings;
mod report;
mod rerank;
pub mod text;

use std::fmt;
use std::str::FromStr;

pub use features::{FieldWeights, NgramShape};
pub use holder::{IndexBuilder, RouterHandle};
pub use index::{Fusion, IndexConfig, RouterIndex, SearchOptions};
pub use postings::Hit;
pub use rerank::RerankWeights;
pub use text::ToolDoc;

/// How a query is matched against the tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Cosine over hashed character n-gram TF-IDF vectors of names, descriptions and parameters.
    Semantic,
    /// BM25 over words (snake_case and camelCase split, stemmed).
    Keyword,
    /// Both, fused.
    Hybrid,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Semantic, Strategy::Keyword, Strategy::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Semantic => "semantic",
            Strategy::Keyword => "keyword",
            Strategy::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is none of `semantic`, `keyword`, `hybrid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?} (expected semantic, keyword or hybrid)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "semantic" => Ok(Strategy::Semantic),
            "keyword" => Ok(Strategy::Keyword),
            "hybrid" => Ok(Strategy::Hybrid),
            other => Err(UnknownStrategy(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests;
