//! A tiny threaded HTTP/1.1 server for tests (plain or TLS via rustls): serves a JWKS, or plays an
//! MCP upstream that records the headers it was sent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use serde_json::{json, Value};

pub struct Req {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// (status, extra headers, JSON body)
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);
pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// Serve on a free loopback port until the test process ends.
pub fn serve(handler: Handler) -> SocketAddr {
    serve_with(handler, None)
}

/// Serve HTTPS with this certificate chain and PKCS#8 key (DER).
pub fn serve_tls(handler: Handler, cert: Vec<u8>, key: Vec<u8>) -> SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .expect("TLS config");
    serve_with(handler, Some(Arc::new(cfg)))
}

fn serve_with(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (h, tls) = (handler.clone(), tls.clone());
            std::thread::spawn(move || match tls {
                None => connection(stream, &h),
                Some(cfg) => {
                    if let Ok(conn) = rustls::ServerConnection::new(cfg) {
                        connection(rustls::StreamOwned::new(conn, stream), &h)
                    }
                }
            });
        }
    });
    addr
}

fn connection<S: Read + Write>(stream: S, handler: &Handler) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0usize);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Req {
            method,
            path,
            headers,
            body,
        };
        let (status, extra, body) = handler(&req);
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
            body.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let s = r.get_mut();
        if s.write_all(out.as_bytes()).is_err() || s.write_all(&body).is_err() {
            return;
        }
        let _ = s.flush();
    }
}

/// Headers of every request an upstream received.
pub type Seen = Arc<crossbeam_queue::SegQueue<Vec<(String, String)>>>;

/// A minimal legacy (2025-11-25) MCP server over Streamable HTTP with one tool, `whoami`, that
/// records the headers of every request.
pub fn mcp_upstream() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let addr = serve(Arc::new(move |req: &Req| {
        log.push(req.headers.clone());
        let msg: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let id = msg["id"].clone();
        let ok = |result: Value| {
            json!({"jsonrpc":"2.0","id":id,"result":result})
                .to_string()
                .into_bytes()
        };
        match msg["method"].as_str().unwrap_or("") {
            "initialize" => (
                200,
                vec![("Mcp-Session-Id".into(), "up-1".into())],
                ok(json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"recorder","version":"1"}})),
            ),
            m if m.starts_with("notifications/") => (202, vec![], Vec::new()),
            "tools/list" => (
                200,
                vec![],
                ok(json!({"tools":[{"name":"whoami","description":"says hello","inputSchema":{"type":"object"}}]})),
            ),
            "tools/call" => (
                200,
                vec![],
                ok(json!({"content":[{"type":"text","text":"hello"}]})),
            ),
            _ => (
                404,
                vec![],
                json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"Method not found"}})
                    .to_string()
                    .into_bytes(),
            ),
        }
    }));
    (addr, seen)
}
