//! One load run: the plan built from the options, worker threads started together, the live
//! progress line, and the merged report.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mix::MixEntry;
use crate::report::{self, IntervalRow, Report};
use crate::request::{Era, RequestTemplate, TemplateSpec};
use crate::stats::{Interval, Totals};
use crate::target::Target;
use crate::worker::{self, Mode, Msg, Plan, Share};

/// Everything a run needs, already validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub target: Target,
    pub era: Era,
    pub mode: Mode,
    pub agents: usize,
    pub connections: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    pub mix: Vec<MixEntry>,
    /// Arguments per tool name (as written in the mix, before any prefix); `None` key: default.
    pub args: ToolArgs,
    /// Put before every tool name (a gateway's `<server>__`).
    pub tool_prefix: String,
    pub extra_headers: Vec<u8>,
}

/// Tool arguments: per tool, with a fallback.
#[derive(Debug, Clone, Default)]
pub struct ToolArgs {
    pub by_tool: BTreeMap<String, Value>,
    pub default: Option<Value>,
}

impl ToolArgs {
    /// The arguments for `tool`: its own, else the default, else `{"message":"hello ${seq}"}` for
    /// a tool named `echo` (it answers with the message, so answers can be checked), else `{}`.
    pub fn for_tool(&self, tool: &str) -> Value {
        if let Some(v) = self.by_tool.get(tool).or(self.default.as_ref()) {
            return v.clone();
        }
        if tool == "echo" || tool.ends_with("__echo") {
            serde_json::json!({"message": "hello ${seq}"})
        } else {
            serde_json::json!({})
        }
    }
}

/// Where the live line goes.
#[derive(Debug, Clone)]
pub struct Progress {
    pub enabled: bool,
    /// Printed before each line (the target's label in `compare`).
    pub label: String,
}

/// Runs the load described by `cfg` and returns the merged report.
pub fn execute(cfg: &RunConfig, progress: &Progress) -> Result<Report, String> {
    let workers = cfg.threads.min(cfg.connections).min(cfg.agents).max(1);
    let plan = Arc::new(build_plan(cfg, workers)?);
    let (tx, rx) = mpsc::channel();
    let mut starts = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers {
        let share = Share {
            index,
            agents: split(cfg.agents, workers, index),
            connections: split(cfg.connections, workers, index),
        };
        let (start_tx, start_rx) = mpsc::channel();
        let (plan, tx) = (plan.clone(), tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("loadtest-w{index}"))
            .spawn(move || worker::run(plan, share, tx, start_rx))
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        starts.push(start_tx);
        handles.push(handle);
    }
    drop(tx);

    // Setup: every worker connected (and, legacy, every agent initialized) before the clock starts.
    let mut ready = 0;
    let mut failure = None;
    while ready < workers {
        match rx.recv() {
            Ok(Msg::Ready { result, .. }) => {
                ready += 1;
                if let Err(e) = result {
                    failure.get_or_insert(e);
                }
            }
            Ok(_) => {}
            Err(_) => {
                failure.get_or_insert_with(|| "a worker thread stopped during setup".into());
                break;
            }
        }
    }
    if let Some(e) = failure {
        for s in &starts {
            let _ = s.send(None);
        }
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    let start = Instant::now() + Duration::from_millis(20);
    for s in &starts {
        let _ = s.send(Some(start));
    }

    let tty = std::io::stderr().is_terminal();
    let mut pending: BTreeMap<u32, (usize, Interval, f64)> = BTreeMap::new();
    let mut timeline = Vec::new();
    let mut totals = Totals::default();
    let mut done = 0;
    while done < workers {
        match rx.recv() {
            Ok(Msg::Interval {
                index,
                secs,
                interval,
                ..
            }) => {
                let slot = pending
                    .entry(index)
                    .or_insert_with(|| (0, Interval::default(), secs));
                slot.0 += 1;
                slot.1.merge(&interval);
                if slot.0 == workers {
                    if let Some((_, iv, secs)) = pending.remove(&index) {
                        let row = row_of(index, secs, &iv, cfg);
                        if progress.enabled {
                            print_progress(&progress.label, &row, tty);
                        }
                        timeline.push(row);
                    }
                }
            }
            Ok(Msg::Done { totals: t, .. }) => {
                totals.merge(&t);
                done += 1;
            }
            Ok(Msg::Ready { .. }) => {}
            Err(_) => break,
        }
    }
    if progress.enabled && tty {
        eprintln!();
    }
    let mut died = false;
    for h in handles {
        died |= h.join().is_err();
    }
    if died || done < workers {
        return Err("a worker thread died during the run".into());
    }
    let window = cfg.duration.as_secs_f64();
    let throughput_rps = if window > 0.0 {
        totals.ok_in_window as f64 / window
    } else {
        0.0
    };
    Ok(Report {
        url: cfg.target.url.clone(),
        era: cfg.era,
        mode: cfg.mode,
        agents: cfg.agents,
        connections: cfg.connections,
        threads: workers,
        duration: cfg.duration,
        warmup: cfg.warmup,
        totals,
        throughput_rps,
        timeline,
    })
}

fn build_plan(cfg: &RunConfig, workers: usize) -> Result<Plan, String> {
    let mut templates = Vec::with_capacity(cfg.mix.len());
    for entry in &cfg.mix {
        let tool = entry
            .tool
            .as_ref()
            .map(|t| format!("{}{t}", cfg.tool_prefix));
        let args = entry.tool.as_deref().map(|t| cfg.args.for_tool(t));
        templates.push(RequestTemplate::new(&TemplateSpec {
            era: cfg.era,
            target: &cfg.target,
            method: &entry.method,
            tool: tool.as_deref(),
            args: args.as_ref(),
            extra_headers: &cfg.extra_headers,
        })?);
    }
    Ok(Plan {
        target: cfg.target.clone(),
        era: cfg.era,
        templates,
        weights: cfg.mix.iter().map(|e| e.weight).collect(),
        extra_headers: cfg.extra_headers.clone(),
        mode: cfg.mode,
        warmup: cfg.warmup,
        duration: cfg.duration,
        timeout: cfg.timeout,
        workers,
    })
}

/// Worker `index`'s part of `total` (the first ones get the remainder).
fn split(total: usize, workers: usize, index: usize) -> usize {
    total / workers + usize::from(index < total % workers)
}

fn row_of(index: u32, secs: f64, iv: &Interval, cfg: &RunConfig) -> IntervalRow {
    let s = iv.latency.summary();
    let t_s = (Duration::from_secs(u64::from(index.saturating_sub(1))).as_secs_f64() + secs)
        .min((cfg.warmup + cfg.duration).as_secs_f64());
    IntervalRow {
        t_s,
        warmup: Duration::from_secs_f64(t_s) <= cfg.warmup && !cfg.warmup.is_zero(),
        ok: iv.ok,
        errors: iv.errors,
        rps: if secs > 0.0 { iv.ok as f64 / secs } else { 0.0 },
        p50_us: s.p50,
        p99_us: s.p99,
        max_us: s.max,
        inflight: iv.inflight,
        queued: iv.queued,
    }
}

fn print_progress(label: &str, row: &IntervalRow, tty: bool) {
    let line = report::progress_line(label, row);
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, workers) in [(16, 1), (16, 3), (5, 4), (1, 1)] {
            let sum: usize = (0..workers).map(|i| split(total, workers, i)).sum();
            assert_eq!(sum, total);
            assert!((0..workers).all(|i| split(total, workers, i) >= 1));
        }
    }

    #[test]
    fn default_arguments_echo_the_sequence_number() {
        let args = ToolArgs::default();
        assert_eq!(args.for_tool("echo")["message"], "hello ${seq}");
        assert_eq!(args.for_tool("up__echo")["message"], "hello ${seq}");
        assert_eq!(args.for_tool("compute"), serde_json::json!({}));
        let mut args = ToolArgs {
            default: Some(serde_json::json!({"a": 1})),
            ..ToolArgs::default()
        };
        args.by_tool
            .insert("delay".into(), serde_json::json!({"ms": 5}));
        assert_eq!(args.for_tool("delay")["ms"], 5);
        assert_eq!(args.for_tool("echo")["a"], 1);
    }
}
