//! The command line (clap): `run` (the default), `check`, `stdio`, `keys`, `route-eval`,
//! `demo-server`; nothing else lives here.

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
    #[command(flatten)]
    pub file: ConfigFile,
    /// Override `gateway.listen` (host:port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Override `gateway.shards`.
    #[arg(long)]
    pub shards: Option<usize>,
}

/// `--config`, shared by the commands that load one.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigFile {
    /// Configuration file.
    #[arg(
        long,
        short,
        env = "SWITCHYARD_CONFIG",
        default_value = "config/switchyard.toml"
    )]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (the default).
    Run(RunArgs),
    /// Validate a configuration and print what it sets up.
    Check(RunArgs),
    /// Serve one MCP client on stdin/stdout (how desktop clients run a local server), with no
    /// listener. With API keys configured, the key comes from SWITCHYARD_API_KEY.
    Stdio(ConfigFile),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Evaluate tool routing: recall, MRR, nDCG, latency, token saving over a query set.
    RouteEval(Box<crate::router::command::RouteEvalArgs>),
    /// Run a built-in demo MCP server on stdin/stdout.
    DemoServer {
        /// One of the demo servers' names.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Mint a key: prints it once, and the entry (with only its hash) to paste into the config.
    New {
        /// The role the key acts as (a `[roles.NAME]` of the config).
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Expiry, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
        #[arg(long)]
        expires: Option<String>,
    },
}

/// `switchyard keys new`: the key and the TOML entry to paste.
pub fn keys_new(role: &str, description: &str, expires: Option<&str>) -> Result<String, String> {
    if role.is_empty() {
        return Err("--role must not be empty".into());
    }
    if let Some(e) = expires {
        if crate::config::parse_utc(e).is_none() {
            return Err(format!(
                "--expires {e:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
            ));
        }
    }
    let k = crate::policy::keys::mint()?;
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut entry = format!(
        "id = {}\nhash = {}\nrole = {}\n",
        q(&k.id),
        q(&k.hash),
        q(role)
    );
    if !description.is_empty() {
        entry.push_str(&format!("description = {}\n", q(description)));
    }
    if let Some(e) = expires {
        entry.push_str(&format!("expires = {}\n", q(e)));
    }
    Ok(format!(
        "API key (shown once; only its hash is stored):\n\n    {}\n\nPaste into the config (or use [[keys]] in a keys_file):\n\n[[auth.keys]]\n{entry}",
        k.key
    ))
}

/// Load the config with command-line overrides applied.
pub fn load(args: &RunArgs) -> Result<Config, String> {
    let mut config = Config::load(&args.file.config).map_err(|e| e.to_string())?;
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
