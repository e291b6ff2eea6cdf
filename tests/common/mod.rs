//! Shared by the binary-level tests: start the gateway on a free port with a config, and speak raw
//! HTTP to it (to control connections and to send what no SDK would).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: Option<TempDir>,
}

pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// A free loopback port *below* the kernel's ephemeral range: a port taken by `bind(0)` is given
/// back at once and can be picked as the source port of any test's next connection before the
/// gateway binds it (then the gateway exits with EADDRINUSE). Below the range only explicit binds
/// compete.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let top = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let bottom: u16 = 20000;
    if top > bottom + 1000 {
        let seed = std::collections::hash_map::RandomState::new();
        for attempt in 0..200u32 {
            let mut h = seed.build_hasher();
            h.write_u32(attempt);
            h.write_u32(std::process::id());
            let port = bottom + (h.finish() % u64::from(top - bottom)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A temp folder for one gateway's files (its log at least).
fn temp_dir(port: u16) -> (TempDir, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("switchyard-test-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    (TempDir(dir.clone()), dir)
}

/// A config file in a fresh temp folder, listening on a free port: (port, folder, path).
fn write_config(shards: usize, body: &str) -> (u16, TempDir, std::path::PathBuf) {
    let port = free_port();
    let (tmp, dir) = temp_dir(port);
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\nshards = {shards}\n\n{body}"),
    )
    .expect("config");
    (port, tmp, cfg)
}

pub fn start(servers: &str, shards: usize) -> Gateway {
    start_env(servers, shards, &[])
}

/// `start` with extra environment variables for the gateway.
pub fn start_env(servers: &str, shards: usize, env: &[(&str, &str)]) -> Gateway {
    let (port, dir, cfg) = write_config(shards, servers);
    launch(&cfg, port, shards, Some(dir), env)
}

/// Start the gateway on a config file of the repository (listening on a free port instead).
pub fn start_file(config: &str, shards: usize) -> Gateway {
    start_file_env(config, shards, &[])
}

/// `start_file` with extra environment variables for the gateway.
pub fn start_file_env(config: &str, shards: usize, env: &[(&str, &str)]) -> Gateway {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(config);
    launch(&path, free_port(), shards, None, env)
}

/// Start the gateway with a config body (no upstreams needed) and return once its port accepts
/// connections — for listeners the plain-HTTP health probe cannot speak to (TLS).
pub fn start_bare(config: &str) -> Gateway {
    let (port, dir, cfg) = write_config(1, config);
    spawn_until(&cfg, port, 1, Some(dir), &[], |addr| {
        TcpStream::connect(addr).is_ok()
    })
}

fn launch(
    cfg: &std::path::Path,
    port: u16,
    shards: usize,
    dir: Option<TempDir>,
    env: &[(&str, &str)],
) -> Gateway {
    spawn_until(cfg, port, shards, dir, env, |addr| {
        let Ok((200, _, body)) = request(addr, "GET", "/health", &[], None) else {
            return false;
        };
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        v["upstreams"]
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["state"] != "starting"))
    })
}

/// Run the gateway on `cfg` listening on `port` until `ready`; a gateway that exits first (the
/// port was taken after all) is started again on another port. Its log goes to a file that a
/// failure prints.
fn spawn_until(
    cfg: &std::path::Path,
    mut port: u16,
    shards: usize,
    dir: Option<TempDir>,
    env: &[(&str, &str)],
    ready: impl Fn(SocketAddr) -> bool,
) -> Gateway {
    let dir = dir.unwrap_or_else(|| temp_dir(port).0);
    let log = dir.0.join("gateway.log");
    for attempt in 1..=3 {
        let child = Command::new(BIN)
            .envs(env.iter().copied())
            .args(["run", "--config"])
            .arg(cfg)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--shards",
                &shards.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("gateway log"))
            .spawn()
            .expect("start the gateway");
        let mut gw = Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: None,
        };
        // Generous: CI runs these on 2 cores beside other tests' gateways and upstreams.
        let deadline = Instant::now() + Duration::from_secs(45);
        while Instant::now() < deadline {
            if ready(gw.addr) {
                gw._dir = Some(dir);
                return gw;
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    attempt < 3 && text.contains("Address already in use"),
                    "the gateway exited ({status}) on attempt {attempt}; its log:\n{text}"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if gw.child.try_wait().ok().flatten().is_none() {
            break;
        }
        port = free_port();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    panic!("gateway did not become ready; its log:\n{text}");
}

pub const DEMOS: &str = "[[servers]]\nname = \"util\"\ncommand = \"${SWITCHYARD_BIN}\"\nargs = [\"demo-server\", \"util\"]\n\n[[servers]]\nname = \"notes\"\ncommand = \"${SWITCHYARD_BIN}\"\nargs = [\"demo-server\", \"notes\"]\n";

/// Status, headers (names lowercased) and body of one answer.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One request on a new connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut hs = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            hs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok((status, hs, body))
}

pub const JSON: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

pub fn post(
    addr: SocketAddr,
    extra: &[(&str, &str)],
    body: &Value,
) -> (u16, Vec<(String, String)>, Value) {
    let mut h: Vec<(&str, &str)> = JSON.to_vec();
    h.extend_from_slice(extra);
    let (s, hs, b) =
        request(addr, "POST", "/mcp", &h, Some(body.to_string().as_bytes())).expect("request");
    (s, hs, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

pub fn initialize(addr: SocketAddr) -> String {
    initialize_as(addr, &[])
}

/// `initialize` with extra headers (a key); the session id.
pub fn initialize_as(addr: SocketAddr, extra: &[(&str, &str)]) -> String {
    let (s, hs, v) = post(
        addr,
        extra,
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
    hs.into_iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v)
        .expect("a session id")
}

/// Read one HTTP/1.1 message framed by Content-Length (or bodiless): its first line and its body;
/// `None` when the connection ends before it starts.
pub fn read_message(r: &mut impl BufRead) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((first.trim_end().to_owned(), body)))
}

/// A kept-alive client connection, for load: one request at a time.
pub struct KeepAlive {
    stream: std::io::BufReader<TcpStream>,
    addr: SocketAddr,
}

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> std::io::Result<KeepAlive> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(KeepAlive {
            stream: std::io::BufReader::new(s),
            addr,
        })
    }

    /// POST `body` to /mcp with `headers`; (status, body).
    pub fn post(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut req = format!("POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n", self.addr, body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let (line, body) = read_message(&mut self.stream)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        Ok((status, body))
    }
}
