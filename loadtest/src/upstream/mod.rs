//! `loadtest upstream`: a fast native MCP server (Streamable HTTP or stdio) to put behind a gateway.
//!
//! Thread-per-core like the gateway: each thread runs a current-thread runtime with its own
//! `SO_REUSEPORT` listener on the same port, so the kernel spreads connections and no thread
//! waits on another. Answers are JSON with `Content-Length` on keep-alive connections; the tools
//! (see `handler`) have known costs, so what a gateway adds can be told apart from the upstream.

mod handler;
mod serve;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::LocalSet;

use handler::Upstream;

/// Options of `loadtest upstream`.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub threads: usize,
    pub max_concurrent: Option<usize>,
    pub stdio: bool,
}

/// Serves until the process is stopped (HTTP) or stdin closes (stdio).
pub fn serve(opts: Options) -> Result<(), String> {
    let up = Arc::new(Upstream::new(opts.max_concurrent));
    if opts.stdio {
        let rt = runtime()?;
        LocalSet::new().block_on(&rt, serve::stdio(up));
        return Ok(());
    }
    if !opts.listen.ip().is_loopback() {
        return Err(format!(
            "{}: the upstream listens on loopback addresses only",
            opts.listen
        ));
    }
    let (addr_tx, addr_rx) = mpsc::channel();
    let mut handles = vec![spawn_listener(0, opts.listen, up.clone(), Some(addr_tx))?];
    let addr = addr_rx
        .recv()
        .map_err(|_| "the listener thread stopped".to_string())??;
    for i in 1..opts.threads.max(1) {
        // The same port (learned from the first bind when port 0 was asked for).
        handles.push(spawn_listener(i, addr, up.clone(), None)?);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "loadtest upstream listening on http://{addr}/mcp ({} thread(s))",
        opts.threads.max(1)
    );
    let _ = stdout.flush();
    drop(stdout);
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

type AddrReport = mpsc::Sender<Result<SocketAddr, String>>;

fn spawn_listener(
    index: usize,
    addr: SocketAddr,
    up: Arc<Upstream>,
    report: Option<AddrReport>,
) -> Result<std::thread::JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(format!("upstream-{index}"))
        .spawn(move || {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    if let Some(r) = &report {
                        let _ = r.send(Err(e));
                    }
                    return;
                }
            };
            LocalSet::new().block_on(&rt, async move {
                let listener = match bind(addr) {
                    Ok(l) => l,
                    Err(e) => {
                        let msg = format!("cannot listen on {addr}: {e}");
                        match &report {
                            Some(r) => {
                                let _ = r.send(Err(msg));
                            }
                            None => eprintln!("loadtest upstream: {msg}"),
                        }
                        return;
                    }
                };
                if let Some(r) = report {
                    let _ = r.send(listener.local_addr().map_err(|e| e.to_string()));
                }
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            tokio::task::spawn_local(serve::http_connection(stream, up.clone()));
                        }
                        Err(e) => {
                            // Out of file descriptors, usually: wait rather than spin.
                            eprintln!("loadtest upstream: accept: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .map_err(|e| format!("cannot start a thread: {e}"))
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
