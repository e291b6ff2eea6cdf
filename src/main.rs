//! The switchyard binary: parse the command line, then run the gateway, check a config, or serve a
//! demo server.

use std::process::ExitCode;

use clap::Parser;
use switchyard::cli::{self, Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Some(Command::DemoServer { name }) => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            match switchyard::demo::run(&name, stdin, stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("switchyard demo-server: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Check(args)) => match cli::load(&args) {
            Ok(c) => {
                println!(
                    "{}: ok — listen {}, {} shard(s), {} server(s)",
                    c.path.display(),
                    c.gateway.listen_addr(),
                    c.gateway.shard_count(),
                    c.servers.len()
                );
                for s in &c.servers {
                    let what = match &s.transport {
                        switchyard::config::Transport::Stdio { command, args, .. } => {
                            format!("stdio: {command} {}", args.join(" "))
                        }
                        switchyard::config::Transport::Http { url, .. } => format!("http: {url}"),
                        switchyard::config::Transport::Sse { url, .. } => {
                            format!("legacy sse: {url}")
                        }
                    };
                    println!(
                        "  {}{} — {what}",
                        s.name,
                        if s.enabled { "" } else { " (disabled)" }
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Some(Command::Keys(cli::KeysCommand::New {
            role,
            description,
            expires,
        })) => match cli::keys_new(&role, &description, expires.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchyard keys new: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::RouteEval(args)) => switchyard::router::command::run(&args),
        Some(Command::Stdio(args)) => stdio(&args),
        Some(Command::Run(args)) => run(&args),
        None => run(&cli.run),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

/// SIGINT, SIGTERM (stop) and SIGHUP (reload `[auth]` and `[roles]`), caught from here on:
/// installed before any thread starts so only the waiting thread sees them.
fn signals() -> Result<signal_hook::iterator::Signals, ExitCode> {
    signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| {
        eprintln!("cannot install signal handlers: {e}");
        ExitCode::FAILURE
    })
}

/// `switchyard stdio`: one client on stdin/stdout; ends when stdin closes or at SIGINT/SIGTERM.
fn stdio(args: &cli::ConfigFile) -> ExitCode {
    use switchyard::mcp::stdio_front::{self, Control};
    let config = match switchyard::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (control_tx, control_rx) = flume::unbounded();
    let path = args.config.clone();
    let waiter = std::thread::Builder::new()
        .name("switchyard-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let msg = if sig == signal_hook::consts::SIGHUP {
                    match switchyard::config::Config::load(&path) {
                        Ok(c) => Control::Reload(Box::new(c)),
                        Err(e) => {
                            tracing::error!("reload refused, the previous policy stays: {e}");
                            continue;
                        }
                    }
                } else {
                    tracing::info!(signal = sig, "stopping");
                    Control::Stop
                };
                if control_tx.send(msg).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = waiter {
        eprintln!("cannot start the signal thread: {e}");
        return ExitCode::FAILURE;
    }
    let key = std::env::var(stdio_front::KEY_VAR)
        .ok()
        .filter(|k| !k.trim().is_empty());
    match stdio_front::serve(config, key, control_rx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("switchyard stdio: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &cli::RunArgs) -> ExitCode {
    let config = match cli::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let gateway = match switchyard::shard::Gateway::start(config) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            // Keys (and keys_file), tokens and roles are read again; a bad file keeps the old ones.
            match cli::load(args).and_then(|c| gateway.reload_auth(&c)) {
                Ok(r) => tracing::info!(
                    keys = r.keys,
                    rules_changed = r.rules_changed,
                    "reloaded [auth] and [roles]"
                ),
                Err(e) => tracing::error!("reload refused, the previous policy stays: {e}"),
            }
            continue;
        }
        tracing::info!(signal = sig, "stopping: draining in-flight requests");
        break;
    }
    gateway.stop();
    ExitCode::SUCCESS
}
