//! The `route-eval` subcommand: its arguments and the run that prints the report.

use std::path::PathBuf;
use std::process::ExitCode;

use super::eval::{evaluate, load_queries, print_json, print_text, Catalog, EvalOptions};
use super::index::{Fusion, IndexConfig};
use super::{FieldWeights, RerankWeights, Strategy};

/// `switchyard route-eval --catalog CATALOG.json --queries QUERIES.jsonl [...]`
#[derive(clap::Args, Debug, Clone)]
pub struct RouteEvalArgs {
    /// `{"servers":[{"name":…,"tools":[<tools/list entries>]}]}`
    #[arg(long)]
    pub catalog: PathBuf,
    /// One `{"query": "…", "expected": ["<server>__<tool>", …]}` per line.
    #[arg(long)]
    pub queries: PathBuf,
    /// semantic, keyword, hybrid, or all.
    #[arg(long, default_value = "all")]
    pub strategy: String,
    /// Results per search.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Only the queries whose `split` field is this (e.g. `tune`, `test`).
    #[arg(long)]
    pub split: Option<String>,
    /// Timed passes over the queries for the latency percentiles.
    #[arg(long, default_value_t = 20)]
    pub passes: usize,
    /// Hybrid fusion: `linear` (default) or `rrf`.
    #[arg(long, default_value = "linear")]
    pub fusion: String,
    /// Weight of the semantic score in linear fusion.
    #[arg(long)]
    pub semantic_weight: Option<f32>,
    /// Leave the thesaurus out (concept features off in both indexes).
    #[arg(long)]
    pub no_lexicon: bool,
    /// Weight of a thesaurus concept relative to a word, in both indexes.
    #[arg(long)]
    pub concept_weight: Option<f32>,
    /// Field weights `name,server,lead,description,param_name,param_description`.
    #[arg(long, value_delimiter = ',')]
    pub field_weights: Option<Vec<f32>>,
    /// Weight of one character n-gram relative to its word.
    #[arg(long)]
    pub gram_weight: Option<f32>,
    /// Hybrid second stage `depth,name_weight,server_weight[,cover_weight,head_weight]` (depth 0
    /// = off).
    #[arg(long, value_delimiter = ',')]
    pub rerank: Option<Vec<f32>>,
    /// Semantic query pruning: skip features in more than this share of tools.
    #[arg(long)]
    pub max_df: Option<f32>,
    /// Lowest score returned (default: the index default); `0` returns every match.
    #[arg(long)]
    pub min_score: Option<f32>,
    /// Character n-gram lengths `min,max`.
    #[arg(long, value_delimiter = ',')]
    pub ngram: Option<Vec<usize>>,
    /// Weight of a pair of adjacent words relative to one word.
    #[arg(long)]
    pub bigram_weight: Option<f32>,
    /// BM25 `k1,b`.
    #[arg(long, value_delimiter = ',')]
    pub bm25: Option<Vec<f32>>,
    /// List the queries with no expected tool in the top 5.
    #[arg(long)]
    pub misses: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Run `route-eval`: exit 0 with the report, 2 on bad input.
pub fn run(args: &RouteEvalArgs) -> ExitCode {
    match try_run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard route-eval: {e}");
            ExitCode::from(2)
        }
    }
}

fn try_run(args: &RouteEvalArgs) -> Result<(), String> {
    let strategies = match args.strategy.as_str() {
        "all" => Strategy::ALL.to_vec(),
        s => vec![s.parse::<Strategy>().map_err(|e| e.to_string())?],
    };
    let mut config = IndexConfig::default();
    config.fusion = match (args.fusion.as_str(), config.fusion) {
        ("linear", Fusion::Linear { semantic_weight }) => Fusion::Linear {
            semantic_weight: args.semantic_weight.unwrap_or(semantic_weight),
        },
        ("linear", _) => Fusion::Linear {
            semantic_weight: args.semantic_weight.unwrap_or(0.5),
        },
        ("rrf", _) => Fusion::Rrf { k: 60.0, depth: 50 },
        (other, _) => return Err(format!("unknown --fusion {other:?} (linear or rrf)")),
    };
    if let Some(w) = args.concept_weight {
        config.ngram.concept_weight = w;
        config.keyword_concept_weight = w;
    }
    if args.no_lexicon {
        config.ngram.concept_weight = 0.0;
        config.keyword_concept_weight = 0.0;
    }
    if let Some(w) = args.gram_weight {
        config.ngram.gram_weight = w;
    }
    match args.ngram.as_deref() {
        None => {}
        Some(&[min_n, max_n]) if (1..=8).contains(&min_n) && (min_n..=8).contains(&max_n) => {
            config.ngram.min_n = min_n;
            config.ngram.max_n = max_n;
        }
        Some(_) => return Err("--ngram takes min,max with 1 <= min <= max <= 8".into()),
    }
    match args.rerank.as_deref() {
        None => {}
        Some(&[depth, name, server]) if depth >= 0.0 => {
            config.rerank_depth = depth as usize;
            config.rerank.name = name;
            config.rerank.server = server;
        }
        Some(&[depth, name, server, cover, head]) if depth >= 0.0 => {
            config.rerank_depth = depth as usize;
            config.rerank = RerankWeights {
                name,
                server,
                cover,
                head,
            };
        }
        Some(_) => {
            return Err(
                "--rerank takes depth,name_weight,server_weight[,cover_weight,head_weight]".into(),
            )
        }
    }
    if let Some(m) = args.min_score {
        config.min_score = m;
    }
    if let Some(d) = args.max_df {
        config.ngram.max_df = d;
    }
    if let Some(w) = args.bigram_weight {
        config.ngram.bigram_weight = w;
    }
    match args.field_weights.as_deref() {
        None => {}
        Some(&[name, server, lead, description, param_name, param_description]) => {
            config.fields = FieldWeights {
                name,
                server,
                lead,
                description,
                param_name,
                param_description,
            }
        }
        Some(_) => return Err("--field-weights takes 6 numbers".into()),
    }
    match args.bm25.as_deref() {
        None => {}
        Some(&[k1, b]) => {
            config.bm25_k1 = k1;
            config.bm25_b = b;
        }
        Some(_) => return Err("--bm25 takes 2 numbers: k1,b".into()),
    }
    let catalog = Catalog::load(&args.catalog).map_err(|e| e.to_string())?;
    let cases =
        load_queries(&args.queries, &catalog, args.split.as_deref()).map_err(|e| e.to_string())?;
    let opts = EvalOptions {
        strategies,
        top_k: args.top_k,
        passes: args.passes,
        config,
        keep_rankings: args.misses,
    };
    let report = evaluate(&catalog, &cases, &opts).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        print_json(&report, &mut out)
    } else {
        print_text(&report, &mut out)
    };
    written.map_err(|e| format!("stdout: {e}"))
}
