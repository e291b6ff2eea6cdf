//! The command line (clap): `run` (the default), `check`, `demo-server`; nothing else lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version,
    about = "A thread-per-core MCP gateway: many MCP servers presented as one"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(
        long,
        short,
        env = "SWITCHYARD_CONFIG",
        default_value = "config/switchyard.toml"
    )]
    pub config: PathBuf,
    /// Override `gateway.listen` (host:port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Override `gateway.shards`.
    #[arg(long)]
    pub shards: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (the default).
    Run(RunArgs),
    /// Validate a configuration and print what it sets up.
    Check(RunArgs),
    /// Run a built-in demo MCP server on stdin/stdout.
    DemoServer {
        /// One of the demo servers' names.
        name: String,
    },
}

/// Load the config with command-line overrides applied.
pub fn load(args: &RunArgs) -> Result<Config, String> {
    let mut config = Config::load(&args.config).map_err(|e| e.to_string())?;
    if let Some(l) = &args.listen {
        if l.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("--listen {l:?} is not host:port"));
        }
        config.gateway.listen = toml::Spanned::new(0..0, l.clone());
    }
    if let Some(s) = args.shards {
        config.gateway.shards = s;
    }
    Ok(config)
}
