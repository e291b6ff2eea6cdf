//! `loadtest compare`: the same load against several targets, interleaved over rounds, as medians
//! and ratios to the first target.
//!
//! Round `r` runs the targets in an order rotated by `r`, so no target always runs first (cold)
//! or last (warm): what drifts during the run (CPU frequency, page cache, other processes) is
//! spread over all of them. Each figure is the median over rounds of the per-run figure.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::histogram::human_us;
use crate::report::Report;
use crate::request::{self, Era};
use crate::run::{self, Progress, RunConfig};
use crate::target::{self, Target};
use crate::worker::Mode;

/// One target of a comparison: `LABEL=URL[,era=E][,prefix=P][,api-key=K]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    pub label: String,
    pub target: Target,
    pub era: Option<Era>,
    pub prefix: Option<String>,
    pub api_key: Option<String>,
}

/// Parses `LABEL=URL[,era=E][,prefix=P][,api-key=K]`.
pub fn parse_target(spec: &str) -> Result<TargetSpec, String> {
    let (label, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("target {spec:?}: expected LABEL=URL[,era=..][,prefix=..]"))?;
    let label = label.trim();
    if label.is_empty()
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "target {spec:?}: the label must be [A-Za-z0-9._-]+"
        ));
    }
    let mut parts = rest.split(',');
    let url = parts.next().unwrap_or("").trim();
    let mut out = TargetSpec {
        label: label.to_string(),
        target: target::parse(url)?,
        era: None,
        prefix: None,
        api_key: None,
    };
    for opt in parts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| format!("target {spec:?}: option {opt:?} is not key=value"))?;
        match k.trim() {
            "era" => out.era = Some(Era::parse(v.trim())?),
            "prefix" => out.prefix = Some(v.trim().to_string()),
            "api-key" => out.api_key = Some(v.trim().to_string()),
            other => return Err(format!("target {spec:?}: unknown option {other:?}")),
        }
    }
    Ok(out)
}

/// Every run of one target.
#[derive(Debug, Clone)]
pub struct TargetRuns {
    pub spec: TargetSpec,
    pub era: Era,
    pub runs: Vec<Report>,
}

/// Runs `rounds` rounds over `targets`; `base` gives the load (its target is replaced).
pub fn compare(
    base: &RunConfig,
    targets: &[TargetSpec],
    rounds: usize,
    api_key: Option<&str>,
    headers: &[String],
    progress: bool,
) -> Result<Vec<TargetRuns>, String> {
    let mut configs = Vec::with_capacity(targets.len());
    let mut results = Vec::with_capacity(targets.len());
    for t in targets {
        let mut cfg = base.clone();
        cfg.target = t.target.clone();
        cfg.era = t.era.unwrap_or(base.era);
        if let Some(p) = &t.prefix {
            cfg.tool_prefix = p.clone();
        }
        cfg.extra_headers = request::extra_headers(t.api_key.as_deref().or(api_key), headers)?;
        results.push(TargetRuns {
            spec: t.clone(),
            era: cfg.era,
            runs: Vec::with_capacity(rounds),
        });
        configs.push(cfg);
    }
    let n = targets.len();
    for round in 0..rounds {
        for step in 0..n {
            let i = (round + step) % n;
            let label = format!("round {}/{rounds} {}", round + 1, targets[i].label);
            let report = run::execute(
                &configs[i],
                &Progress {
                    enabled: progress,
                    label: label.clone(),
                },
            )
            .map_err(|e| format!("{label}: {e}"))?;
            if progress {
                let s = report.totals.latency.summary();
                eprintln!(
                    "{label}: {:.0} req/s  p50 {}  p99 {}  errors {}",
                    report.throughput_rps,
                    human_us(s.p50),
                    human_us(s.p99),
                    report.totals.error_count()
                );
            }
            results[i].runs.push(report);
        }
    }
    Ok(results)
}

/// Medians of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Medians {
    pub rps: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub errors: u64,
    pub unsent: u64,
    /// Open loop: the generator's own scheduler lag at p99 (how far behind schedule it sent).
    pub lag_p99: Option<f64>,
}

/// The medians over a target's runs.
pub fn medians(runs: &[Report]) -> Medians {
    let pick = |f: &dyn Fn(&Report) -> f64| median(runs.iter().map(f).collect());
    let rps: Vec<f64> = runs.iter().map(|r| r.throughput_rps).collect();
    Medians {
        rps: median(rps.clone()),
        rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
        rps_max: rps.iter().copied().fold(0.0, f64::max),
        p50: pick(&|r| r.totals.latency.summary().p50 as f64),
        p90: pick(&|r| r.totals.latency.summary().p90 as f64),
        p99: pick(&|r| r.totals.latency.summary().p99 as f64),
        p999: pick(&|r| r.totals.latency.summary().p999 as f64),
        errors: runs.iter().map(|r| r.totals.error_count()).sum(),
        unsent: runs.iter().map(|r| r.totals.unsent).sum(),
        lag_p99: runs
            .iter()
            .any(|r| matches!(r.mode, Mode::Open { .. }))
            .then(|| pick(&|r| r.totals.sched_lag.summary().p99 as f64)),
    }
}

/// The median of `v` (mean of the middle two for an even count; 0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The table: one row per target, ratios against the first. `lag p99` (open loop) is how late
/// the generator itself sent, at p99: when it is near the latencies, the machine is the limit.
pub fn table(results: &[TargetRuns]) -> String {
    let mut s = String::new();
    let rounds = results.first().map_or(0, |r| r.runs.len());
    let _ = writeln!(
        s,
        "medians over {rounds} round(s); ratios are against {}",
        results.first().map_or("-", |r| r.spec.label.as_str())
    );
    let _ = writeln!(
        s,
        "{:<12}{:<12}{:>10}{:>17}{:>8}{:>9}{:>9}{:>9}{:>9}{:>8}{:>8}{:>8}{:>10}",
        "target",
        "era",
        "req/s",
        "(min-max)",
        "x rps",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "x p50",
        "x p99",
        "errors",
        "lag p99"
    );
    let base = results
        .first()
        .map(|r| medians(&r.runs))
        .unwrap_or_default();
    for r in results {
        let m = medians(&r.runs);
        let _ = writeln!(
            s,
            "{:<12}{:<12}{:>10.0}{:>17}{:>8.2}{:>9}{:>9}{:>9}{:>9}{:>8.2}{:>8.2}{:>8}{:>10}",
            r.spec.label,
            r.era.name(),
            m.rps,
            format!("({:.0}-{:.0})", m.rps_min, m.rps_max),
            ratio(m.rps, base.rps),
            human_us(m.p50 as u64),
            human_us(m.p90 as u64),
            human_us(m.p99 as u64),
            human_us(m.p999 as u64),
            ratio(m.p50, base.p50),
            ratio(m.p99, base.p99),
            m.errors,
            m.lag_p99.map_or("-".to_string(), |l| human_us(l as u64)),
        );
    }
    s
}

/// The `--json` object of a comparison.
pub fn to_json(results: &[TargetRuns]) -> Value {
    let base = results
        .first()
        .map(|r| medians(&r.runs))
        .unwrap_or_default();
    let targets: Vec<Value> = results
        .iter()
        .map(|r| {
            let m = medians(&r.runs);
            json!({
                "label": r.spec.label,
                "url": r.spec.target.url,
                "era": r.era.name(),
                "throughput_rps": {"median": m.rps, "min": m.rps_min, "max": m.rps_max},
                "latency_us": {"p50": m.p50, "p90": m.p90, "p99": m.p99, "p999": m.p999},
                "ratio": {"throughput": ratio(m.rps, base.rps), "p50": ratio(m.p50, base.p50), "p99": ratio(m.p99, base.p99)},
                "errors": m.errors,
                "unsent": m.unsent,
                "scheduler_lag_p99_us": m.lag_p99,
                "runs": r.runs.iter().map(Report::to_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "rounds": results.first().map_or(0, |r| r.runs.len()), "targets": targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_specs() {
        let t = parse_target("direct=http://127.0.0.1:3400/mcp").unwrap();
        assert_eq!(t.label, "direct");
        assert_eq!(t.target.path, "/mcp");
        assert_eq!((t.era, t.prefix.as_deref()), (None, None));
        let t =
            parse_target("gw=http://127.0.0.1:3100/mcp,era=legacy,prefix=up__,api-key=k").unwrap();
        assert_eq!(t.era, Some(Era::Legacy));
        assert_eq!(t.prefix.as_deref(), Some("up__"));
        assert_eq!(t.api_key.as_deref(), Some("k"));
        for bad in [
            "http://127.0.0.1/mcp",
            "=http://127.0.0.1/",
            "a b=http://127.0.0.1/",
            "x=http://10.1.1.1/",
            "x=http://127.0.0.1/,era=1999",
            "x=http://127.0.0.1/,colour=blue",
            "x=http://127.0.0.1/,prefix",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    fn runs(label: &str, mode: Mode, rps: &[f64]) -> TargetRuns {
        let spec = parse_target(&format!("{label}=http://127.0.0.1:1/mcp")).unwrap();
        let runs = rps
            .iter()
            .map(|&r| {
                let mut totals = crate::stats::Totals::default();
                totals.latency.record_us(100);
                totals.sched_lag.record_us(7);
                Report {
                    url: spec.target.url.clone(),
                    era: Era::Modern,
                    mode,
                    agents: 1,
                    connections: 1,
                    threads: 1,
                    duration: std::time::Duration::from_secs(1),
                    warmup: std::time::Duration::ZERO,
                    totals,
                    throughput_rps: r,
                    timeline: Vec::new(),
                }
            })
            .collect();
        TargetRuns {
            spec,
            era: Era::Modern,
            runs,
        }
    }

    #[test]
    fn table_has_ratios_against_the_first_target() {
        let open = Mode::Open { rate: 10.0 };
        let results = [
            runs("a", open, &[100.0, 300.0, 200.0]),
            runs("b", open, &[50.0, 150.0, 100.0]),
        ];
        let m = medians(&results[1].runs);
        assert_eq!((m.rps, m.rps_min, m.rps_max), (100.0, 50.0, 150.0));
        assert_eq!(m.lag_p99, Some(7.0));
        let t = table(&results);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].trim_end().ends_with("lag p99"), "{t}");
        assert!(
            lines[3].starts_with("b ") && lines[3].contains(" 0.50 "),
            "{t}"
        );
        assert!(lines[3].trim_end().ends_with("7µs"), "{t}");
        let closed = [
            runs("a", Mode::Closed, &[1.0]),
            runs("b", Mode::Closed, &[1.0]),
        ];
        assert!(table(&closed)
            .lines()
            .nth(2)
            .is_some_and(|l| l.trim_end().ends_with('-')));
        let v = to_json(&results);
        assert_eq!(v["targets"][1]["ratio"]["throughput"], 0.5);
        assert_eq!(v["targets"][0]["runs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(ratio(1.0, 0.0), 0.0);
        assert_eq!(ratio(3.0, 4.0), 0.75);
    }
}
