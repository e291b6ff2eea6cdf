//! How `route-eval` prints its report: a table for people, or one JSON object (`--json`).

use std::io::Write;

use super::eval::Report;

/// The report as one JSON object on one line.
pub fn print_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let text = serde_json::to_string(report).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

/// The report as a table.
pub fn print_text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "route-eval: {} tools, {} queries, top-k {}",
        report.tools, report.queries, report.top_k
    )?;
    writeln!(
        out,
        "index build: {:.2} ms (median of 5, min {:.2} ms; both indexes)",
        report.build_ms_median, report.build_ms_min
    )?;
    // recall@k gets its own column only when k is not 5.
    let extra = report.top_k != 5;
    let k_head = if extra {
        format!(" {:>9}", format!("recall@{}", report.top_k))
    } else {
        String::new()
    };
    writeln!(
        out,
        "{:<10} {:>9} {:>9}{k_head} {:>8} {:>8} {:>9} {:>9}",
        "strategy", "recall@1", "recall@5", "MRR@10", "nDCG@5", "p50 µs", "p99 µs"
    )?;
    for s in &report.strategies {
        let k_col = if extra {
            format!(" {:>9.3}", s.recall_at_k)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<10} {:>9.3} {:>9.3}{k_col} {:>8.3} {:>8.3} {:>9.1} {:>9.1}",
            s.strategy,
            s.recall_at_1,
            s.recall_at_5,
            s.mrr_at_10,
            s.ndcg_at_5,
            s.latency_p50_us,
            s.latency_p99_us
        )?;
    }
    let t = &report.tokens;
    writeln!(
        out,
        "tokens ({}): full tool list {}, meta-tools {} ({:.1} % saved); one search answer (top {}) {:.0} on average",
        t.tokenizer,
        t.full_list_tokens,
        t.meta_tools_tokens,
        t.saving * 100.0,
        report.top_k,
        t.mean_search_result_tokens
    )?;
    for s in &report.strategies {
        if s.misses.is_empty() {
            continue;
        }
        writeln!(
            out,
            "\n{} misses (no expected tool in the top 5):",
            s.strategy
        )?;
        for (query, expected, got) in &s.misses {
            writeln!(
                out,
                "  {query}\n    expected {expected:?}\n    got      {got:?}"
            )?;
        }
    }
    Ok(())
}
