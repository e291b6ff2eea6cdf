//! loadtest: switchyard's bundled MCP load generator (`run`, `compare`) and native upstream.
//!
//! # Layout
//! - `cli`: the command line and its validation into a [`run::RunConfig`].
//! - `target`: the endpoint URL (loopback only).
//! - `mix`: the request mix and its smooth weighted round-robin.
//! - `request`: MCP requests of both eras as byte templates.
//! - `wire`: HTTP/1.1 framing (responses for the client, requests for the upstream).
//! - `answer`: JSON or SSE answers checked (id, echoed `${seq}`, `isError`) and classified.
//! - `client`: one keep-alive connection: write a request, read one whole response.
//! - `schedule`: open-loop intended send times and the microsecond timerfd timer.
//! - `histogram`: HdrHistogram wrapper and percentile summary.
//! - `stats`: per-worker recording (the measurement window, unsent requests, 1 s intervals).
//! - `worker`: one thread, one current-thread tokio runtime: setup, load, cleanup.
//! - `run`: worker threads started together, the live line, the merged [`report::Report`].
//! - `report`: JSON, table, progress line. `compare`: interleaved rounds, medians, ratios.
//! - `upstream`: the native MCP server (HTTP with SO_REUSEPORT per thread, or stdio).
//! - `floor`: `stdio-floor`, a stdio server driven directly: the ceiling for any gateway.
//!
//! # Design
//! Threads share nothing while the load runs (each worker has its own runtime, connections,
//! histograms); results are merged at the end, as the gateway does per shard. tokio's
//! current-thread runtime is used rather than monoio: the load client must not depend on the
//! thing it measures, tokio's `AsyncFd` lets the open-loop scheduler wait on a timerfd with
//! microsecond precision, and it is the runtime most readers already know. The HTTP client is
//! hand-written (httparse for heads) so that a request costs one buffer fill and one write, and
//! so that what is measured is the server, not a client library's pooling policy.

mod answer;
mod cli;
mod client;
mod compare;
mod floor;
mod histogram;
mod mix;
mod report;
mod request;
mod run;
mod schedule;
mod stats;
mod target;
mod upstream;
mod wire;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, CompareArgs, RunArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(&args),
        Command::Compare(args) => compare_command(&args),
        Command::Upstream(args) => upstream::serve(upstream::Options {
            listen: args.listen,
            threads: args.threads,
            max_concurrent: args.max_concurrent,
            stdio: args.stdio,
        }),
        Command::StdioFloor(args) => floor_command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(args: &RunArgs) -> Result<(), String> {
    let cfg = cli::run_config(&args.url, &args.load)?;
    let progress = run::Progress {
        enabled: !args.load.quiet,
        label: String::new(),
    };
    let report = run::execute(&cfg, &progress)?;
    if args.load.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn floor_command(args: &cli::FloorArgs) -> Result<(), String> {
    let report = floor::execute(&cli::floor_config(args)?)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn compare_command(args: &CompareArgs) -> Result<(), String> {
    if args.targets.len() < 2 {
        return Err("compare needs at least two --target".into());
    }
    if args.rounds == 0 || args.rounds > 1000 {
        return Err("--rounds must be 1 to 1000".into());
    }
    let targets = args
        .targets
        .iter()
        .map(|t| compare::parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    let base = cli::run_config(&targets[0].target.url, &args.load)?;
    let results = compare::compare(
        &base,
        &targets,
        args.rounds,
        args.load.api_key.as_deref(),
        &args.load.headers,
        !args.load.quiet,
    )?;
    if args.load.json {
        println!("{}", compare::to_json(&results));
    } else {
        print!("{}", compare::table(&results));
    }
    Ok(())
}
