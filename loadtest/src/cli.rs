//! The command line: `run`, `compare`, `upstream`, their options, and turning them into configs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::floor::FloorConfig;
use crate::mix;
use crate::request::{self, Era};
use crate::run::{RunConfig, ToolArgs};
use crate::target;
use crate::worker::Mode;

/// switchyard's MCP load generator.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive one MCP Streamable HTTP endpoint and report throughput, latency and errors.
    Run(RunArgs),
    /// The same load against two or more targets, interleaved over rounds: medians and ratios.
    Compare(CompareArgs),
    /// A fast native MCP server (Streamable HTTP, or stdio) with echo, compute and delay tools.
    Upstream(UpstreamArgs),
    /// The stdio floor: a stdio MCP server driven directly (no gateway), N requests in flight.
    StdioFloor(FloorArgs),
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Requests in flight (pipelined over the server's stdin), closed loop.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,
    /// Measured time (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Time run before measuring.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// How long to wait for the last answers after the run.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// The tool called.
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Tool arguments (a JSON object; `${seq}` comes back in the answer). Default for echo:
    /// {"message":"hello ${seq}"}.
    #[arg(long = "args")]
    pub args: Option<String>,
    /// Print one JSON object (the keys of `run --json`) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// The server's command and arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:3100/mcp (loopback only).
    #[arg(long)]
    pub url: String,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// LABEL=URL[,era=2026-07-28|legacy][,prefix=SERVER__][,api-key=KEY]; the first is the baseline.
    #[arg(long = "target", required = true, num_args = 1)]
    pub targets: Vec<String>,
    /// Rounds (each runs every target once, in rotated order).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The load, shared by `run` and `compare`.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Protocol era: 2026-07-28 (stateless) or legacy (initialize + Mcp-Session-Id per agent).
    #[arg(long, default_value = "2026-07-28")]
    pub era: String,
    /// MCP clients; in the legacy era each has its own session.
    #[arg(long, default_value_t = 16)]
    pub agents: usize,
    /// TCP connections in all (default: one per agent).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Measured time (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Time run before measuring.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Open loop: this many requests per second in all, latency from the intended send time.
    #[arg(long, conflicts_with = "closed")]
    pub rate: Option<f64>,
    /// Closed loop (the default): each connection sends as soon as it has its answer.
    #[arg(long)]
    pub closed: bool,
    /// Request mix: METHOD[@TOOL][:WEIGHT],... e.g. tools/call:90,tools/list:10.
    #[arg(long, default_value = "tools/call")]
    pub mix: String,
    /// The tool of tools/call entries that name none.
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Tool arguments: a JSON object for every tool, or TOOL=JSON; `${seq}` is replaced by the
    /// request's number and must come back in the result. Default for echo: {"message":"hello ${seq}"}.
    #[arg(long = "args")]
    pub args: Vec<String>,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// Address to listen on (loopback; port 0 picks one and prints it).
    #[arg(long, default_value = "127.0.0.1:3400")]
    pub listen: SocketAddr,
    /// Serve newline-delimited JSON-RPC on stdin/stdout instead.
    #[arg(long)]
    pub stdio: bool,
    /// Threads, each with its own SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// At most this many tool calls run at once; the rest wait (models a saturated server).
    #[arg(long)]
    pub max_concurrent: Option<usize>,
}

/// Builds a run's config from the command line (`url` for `run`; `compare` replaces it).
pub fn run_config(url: &str, load: &LoadArgs) -> Result<RunConfig, String> {
    let target = target::parse(url)?;
    let era = Era::parse(&load.era)?;
    if load.agents == 0 {
        return Err("--agents must be at least 1".into());
    }
    let connections = load.connections.unwrap_or(load.agents);
    if connections == 0 || connections > 100_000 || load.agents > 1_000_000 {
        return Err("--connections must be 1 to 100000, --agents at most 1000000".into());
    }
    if load.threads == 0 || load.threads > 256 {
        return Err("--threads must be 1 to 256".into());
    }
    let mode = match load.rate {
        Some(r) if r.is_finite() && r > 0.0 && r <= 10_000_000.0 => Mode::Open { rate: r },
        Some(r) => return Err(format!("--rate {r}: must be above 0 and at most 10000000")),
        None => Mode::Closed,
    };
    let duration = parse_duration(&load.duration)?;
    if duration.is_zero() {
        return Err("--duration must be above 0".into());
    }
    let timeout = parse_duration(&load.timeout)?;
    if timeout.is_zero() {
        return Err("--timeout must be above 0".into());
    }
    if load.tool.is_empty()
        || load
            .tool
            .bytes()
            .any(|b| b < 0x20 || b == b'"' || b == b'\\')
    {
        return Err(format!("--tool {:?}: bad tool name", load.tool));
    }
    Ok(RunConfig {
        target,
        era,
        mode,
        agents: load.agents,
        connections,
        threads: load.threads,
        duration,
        warmup: parse_duration(&load.warmup)?,
        timeout,
        mix: mix::parse(&load.mix, &load.tool)?,
        args: parse_args(&load.args)?,
        tool_prefix: String::new(),
        extra_headers: request::extra_headers(load.api_key.as_deref(), &load.headers)?,
    })
}

/// Turns `stdio-floor`'s options into its config.
pub fn floor_config(a: &FloorArgs) -> Result<FloorConfig, String> {
    if a.inflight == 0 || a.inflight > 100_000 {
        return Err("--inflight must be 1 to 100000".into());
    }
    let duration = parse_duration(&a.duration)?;
    let timeout = parse_duration(&a.timeout)?;
    if duration.is_zero() || timeout.is_zero() {
        return Err("--duration and --timeout must be above 0".into());
    }
    let args = parse_args(a.args.as_slice())?;
    Ok(FloorConfig {
        command: a.command.clone(),
        inflight: a.inflight,
        duration,
        warmup: parse_duration(&a.warmup)?,
        timeout,
        args: args.for_tool(&a.tool),
        tool: a.tool.clone(),
        progress: !a.quiet,
    })
}

/// `--args` values: `JSON` (every tool) or `TOOL=JSON`.
pub fn parse_args(values: &[String]) -> Result<ToolArgs, String> {
    let mut out = ToolArgs::default();
    for v in values {
        let t = v.trim();
        let (tool, json) = if t.starts_with('{') {
            (None, t)
        } else {
            let (tool, json) = t
                .split_once('=')
                .ok_or_else(|| format!("--args {v:?}: expected a JSON object or TOOL=JSON"))?;
            (Some(tool.trim()), json.trim())
        };
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("--args {v:?}: {e}"))?;
        if !value.is_object() {
            return Err(format!("--args {v:?}: arguments must be a JSON object"));
        }
        match tool {
            Some(tool) => {
                out.by_tool.insert(tool.to_string(), value);
            }
            None => out.default = Some(value),
        }
    }
    Ok(out)
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us`, or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("duration {s:?}: unknown unit {other:?}")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("duration {s:?}: out of range (0 to 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["", "s", "10x", "-1s", "1e9s", "25h", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn args() {
        let a = parse_args(&[r#"{"message":"x"}"#.into(), r#"delay={"ms":5}"#.into()]).unwrap();
        assert_eq!(a.default, Some(serde_json::json!({"message": "x"})));
        assert_eq!(a.by_tool["delay"]["ms"], 5);
        assert!(parse_args(&["[1]".into()]).is_err());
        assert!(parse_args(&["delay=5".into()]).is_err());
        assert!(parse_args(&["nothing".into()]).is_err());
    }

    #[test]
    fn configs_from_the_command_line() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "run",
            "--url",
            "http://127.0.0.1:3100/mcp",
            "--duration",
            "3s",
            "--rate",
            "500",
            "--agents",
            "8",
            "--json",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run");
        };
        let cfg = run_config(&run.url, &run.load).unwrap();
        assert_eq!(cfg.mode, Mode::Open { rate: 500.0 });
        assert_eq!((cfg.agents, cfg.connections), (8, 8));
        assert_eq!(cfg.duration, Duration::from_secs(3));
        assert!(
            Cli::try_parse_from(["loadtest", "run", "--url", "u", "--rate", "5", "--closed"])
                .is_err()
        );
        let mut load = run.load.clone();
        load.rate = Some(0.0);
        assert!(run_config(&run.url, &load).is_err());
        load.rate = None;
        load.agents = 0;
        assert!(run_config(&run.url, &load).is_err());
        assert!(run_config("http://10.0.0.1/mcp", &run.load).is_err());
    }

    #[test]
    fn floor_options() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "stdio-floor",
            "--inflight",
            "4",
            "--duration",
            "2s",
            "--",
            "server",
            "--stdio",
        ])
        .unwrap();
        let Command::StdioFloor(a) = cli.command else {
            panic!("not stdio-floor");
        };
        let cfg = floor_config(&a).unwrap();
        assert_eq!(cfg.command, ["server", "--stdio"]);
        assert_eq!(cfg.inflight, 4);
        assert_eq!(cfg.args["message"], "hello ${seq}");
        assert!(Cli::try_parse_from(["loadtest", "stdio-floor"]).is_err());
        let mut a = a;
        a.inflight = 0;
        assert!(floor_config(&a).is_err());
    }
}
