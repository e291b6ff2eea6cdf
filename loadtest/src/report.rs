//! What a run reports: the JSON object scripts read, the table people read, the live line.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::histogram::{human_us, Summary};
use crate::request::Era;
use crate::stats::Totals;
use crate::worker::Mode;

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub era: Era,
    pub mode: Mode,
    pub agents: usize,
    pub connections: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub totals: Totals,
    /// Successful answers completed in the measured window, per second.
    pub throughput_rps: f64,
    pub timeline: Vec<IntervalRow>,
}

/// One second of the run (by completion time).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalRow {
    /// Seconds since the start at the end of this interval.
    pub t_s: f64,
    pub warmup: bool,
    pub ok: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub inflight: u64,
    pub queued: u64,
}

impl Report {
    /// Requests measured that finished (answered or failed); unsent ones are counted apart.
    pub fn requests(&self) -> u64 {
        self.totals.ok + self.totals.error_count()
    }

    /// The `--json` object. Stable keys: `requests`, `errors`, `throughput_rps`, `latency_us`.
    pub fn to_json(&self) -> Value {
        let t = &self.totals;
        let errors_by_kind: serde_json::Map<String, Value> = t
            .errors
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let (mode, rate) = match self.mode {
            Mode::Open { rate } => ("open", json!(rate)),
            Mode::Closed => ("closed", Value::Null),
        };
        let timeline: Vec<Value> = self
            .timeline
            .iter()
            .map(|r| {
                json!({
                    "t_s": round3(r.t_s), "warmup": r.warmup, "ok": r.ok, "errors": r.errors,
                    "rps": round1(r.rps), "p50_us": r.p50_us, "p99_us": r.p99_us,
                    "max_us": r.max_us, "inflight": r.inflight, "queued": r.queued,
                })
            })
            .collect();
        let mut out = json!({
            "url": self.url,
            "era": self.era.name(),
            "mode": mode,
            "rate": rate,
            "agents": self.agents,
            "connections": self.connections,
            "threads": self.threads,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "requests": self.requests(),
            "ok": t.ok,
            "errors": t.error_count(),
            "errors_by_kind": errors_by_kind,
            "unsent": t.unsent,
            "reconnects": t.reconnects,
            "throughput_rps": round1(self.throughput_rps),
            "latency_us": summary_json(&t.latency.summary()),
            "service_us": summary_json(&t.service.summary()),
            "timeline": timeline,
        });
        if matches!(self.mode, Mode::Open { .. }) {
            out["scheduler_lag_us"] = summary_json(&t.sched_lag.summary());
        }
        out
    }

    /// The table printed at the end of `run`.
    pub fn to_text(&self) -> String {
        let t = &self.totals;
        let mut s = String::new();
        let mode = match self.mode {
            Mode::Open { rate } => format!("open loop at {rate} req/s"),
            Mode::Closed => "closed loop".to_string(),
        };
        let _ = writeln!(s, "target      {}  (era {})", self.url, self.era.name());
        let _ = writeln!(
            s,
            "load        {mode}, {} agents, {} connections, {} thread(s)",
            self.agents, self.connections, self.threads
        );
        let _ = writeln!(
            s,
            "measured    {:.1} s after {:.1} s of warm-up",
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "requests    {}  ok {}  errors {}  unsent {}  reconnects {}",
            self.requests(),
            t.ok,
            t.error_count(),
            t.unsent,
            t.reconnects
        );
        let _ = writeln!(
            s,
            "throughput  {:.1} req/s (successful answers)",
            self.throughput_rps
        );
        if !t.errors.is_empty() {
            let kinds: Vec<String> = t.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "errors      {}", kinds.join(", "));
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        let first = match self.mode {
            Mode::Open { .. } => "latency (from intended)",
            Mode::Closed => "latency",
        };
        let _ = writeln!(s, "{}", summary_row(first, &t.latency.summary()));
        if let Mode::Open { .. } = self.mode {
            let _ = writeln!(
                s,
                "{}",
                summary_row("service (from sent)", &t.service.summary())
            );
            let _ = writeln!(
                s,
                "{}",
                summary_row("scheduler lag", &t.sched_lag.summary())
            );
        }
        let _ = writeln!(s);
        for note in self.notes() {
            let _ = writeln!(s, "note: {note}");
        }
        s
    }

    /// Warnings a careful reader needs.
    pub fn notes(&self) -> Vec<String> {
        let t = &self.totals;
        let mut notes = Vec::new();
        match self.mode {
            Mode::Closed => notes.push(
                "closed loop measures the service time at maximum throughput; use --rate for latency under a given load".into(),
            ),
            Mode::Open { rate } => {
                if t.unsent > 0 {
                    notes.push(format!(
                        "{} requests were still queued at the end: the target did not keep up with {rate} req/s (their wait so far is in the latency, as a lower bound)",
                        t.unsent
                    ));
                }
                let lag = t.sched_lag.summary();
                if lag.p99 > 1_000 {
                    notes.push(format!(
                        "the load generator itself fell behind its schedule (scheduler lag p99 {}): a busy CPU or slow wake-ups on this machine; latencies include it, so they err on the slow side",
                        human_us(lag.p99)
                    ));
                }
            }
        }
        notes
    }
}

fn summary_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        human_us(s.p50),
        human_us(s.p90),
        human_us(s.p99),
        human_us(s.p999),
        human_us(s.max),
        human_us(s.mean.round() as u64)
    )
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "p50": s.p50, "p90": s.p90, "p99": s.p99, "p999": s.p999, "max": s.max,
        "mean": round1(s.mean), "count": s.count,
    })
}

/// The live line: `[  3.0s measure] 4998 req/s  err 0  p50 210µs  p99 480µs  inflight 3  queued 0`.
pub fn progress_line(label: &str, r: &IntervalRow) -> String {
    let phase = if r.warmup { "warm-up" } else { "measure" };
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label} ")
    };
    format!(
        "{label}[{:>6.1}s {phase}] {:>9.0} req/s  err {:<5} p50 {:<8} p99 {:<8} max {:<8} inflight {} queued {}",
        r.t_s,
        r.rps,
        r.errors,
        human_us(r.p50_us),
        human_us(r.p99_us),
        human_us(r.max_us),
        r.inflight,
        r.queued
    )
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::ErrorKind;

    fn report(mode: Mode) -> Report {
        let mut totals = Totals {
            ok: 98,
            ..Totals::default()
        };
        totals.errors.insert(ErrorKind::Timeout, 1);
        totals.errors.insert(ErrorKind::HttpRpc(502, -31050), 1);
        for us in 1..=100 {
            totals.latency.record_us(us * 10);
        }
        totals.ok_in_window = 98;
        Report {
            url: "http://127.0.0.1:1/mcp".into(),
            era: Era::Modern,
            mode,
            agents: 4,
            connections: 4,
            threads: 1,
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            totals,
            throughput_rps: 49.0,
            timeline: vec![IntervalRow {
                t_s: 1.0,
                warmup: true,
                ok: 10,
                errors: 0,
                rps: 10.0,
                p50_us: 5,
                p99_us: 9,
                max_us: 10,
                inflight: 1,
                queued: 0,
            }],
        }
    }

    #[test]
    fn json_has_the_scripted_keys() {
        let v = report(Mode::Open { rate: 50.0 }).to_json();
        assert_eq!(v["requests"], 100);
        assert_eq!(v["errors"], 2);
        assert_eq!(v["errors_by_kind"]["timeout"], 1);
        assert_eq!(v["errors_by_kind"]["http_502/jsonrpc_-31050"], 1);
        assert_eq!(v["throughput_rps"], 49.0);
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_us"][k].is_u64(), "{k}");
        }
        assert_eq!(v["latency_us"]["p50"], 500);
        assert_eq!(v["mode"], "open");
        assert!(v["scheduler_lag_us"].is_object());
        assert_eq!(v["timeline"][0]["warmup"], true);
        let v = report(Mode::Closed).to_json();
        assert_eq!(v["mode"], "closed");
        assert!(v["rate"].is_null());
        assert!(v.get("scheduler_lag_us").is_none());
    }

    #[test]
    fn text_names_errors_and_notes() {
        let text = report(Mode::Closed).to_text();
        assert!(text.contains("timeout 1"), "{text}");
        assert!(text.contains("closed loop measures"), "{text}");
        let line = progress_line("gw", &report(Mode::Closed).timeline[0]);
        assert!(line.starts_with("gw [   1.0s warm-up]"), "{line}");
    }
}
