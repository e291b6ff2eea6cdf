//! TLS on the front listener, checked with an independent client (Python's `ssl`, i.e. OpenSSL):
//! a TLS 1.3 handshake and an MCP request over it, audited; a TLS 1.2-only client refused when the
//! minimum is 1.3 and served with `min_version = "1.2"`; plain HTTP refused.

mod common;

use std::process::Command;

use common::*;

const CLIENT: &str = r#"
import http.client, json, ssl, sys
port, ca, maxver = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
if maxver == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tls-test", "version": "1"}}})
    c.request("POST", "/mcp", body, {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    r = c.getresponse()
    print(json.dumps({"status": r.status, "version": c.sock.version(), "body": json.loads(r.read())}))
except ssl.SSLError as e:
    print(json.dumps({"ssl_error": str(e)}))
"#;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn client(port: u16, ca: &std::path::Path, maxver: &str) -> serde_json::Value {
    let out = Command::new(python())
        .args(["-c", CLIENT, &port.to_string()])
        .arg(ca)
        .arg(maxver)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client output")
}

/// A self-signed certificate for `localhost` in `dir`: (cert, key) paths.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

/// A TLS gateway with `extra` lines in `[gateway.tls]` and a strict audit log at `audit`.
fn tls_gateway(
    cert: &std::path::Path,
    key: &std::path::Path,
    extra: &str,
    audit: &std::path::Path,
) -> Gateway {
    start_bare(&format!(
        "[gateway.tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n\n[audit]\nenabled = true\npath = \"{}\"\ndurability = \"strict\"\n",
        cert.display(),
        key.display(),
        audit.display()
    ))
}

/// The audit lines so far.
fn audit_lines(audit: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

/// The call made over TLS has its audit line: initialize, 200, no error.
fn assert_audited(lines: &[serde_json::Value]) {
    assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
    let a = &lines[0];
    assert_eq!(
        (
            a["event"].as_str(),
            a["method"].as_str(),
            a["status"].as_u64()
        ),
        (Some("request"), Some("initialize"), Some(200)),
        "{a}"
    );
    assert!(a.get("code").is_none() && a["session"].is_string(), "{a}");
}

#[test]
fn tls13_handshake_with_a_real_client() {
    let dir = std::env::temp_dir().join(format!("sy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir);
    let audit = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    let gw = tls_gateway(&cert, &key, "", &audit);

    let v = client(gw.addr.port(), &cert, "1.3");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["version"], "TLSv1.3", "{v}");
    assert_eq!(
        v["body"]["result"]["serverInfo"]["name"], "switchyard",
        "{v}"
    );
    assert_audited(&audit_lines(&audit));

    let v = client(gw.addr.port(), &cert, "1.2");
    assert!(
        v["ssl_error"].is_string(),
        "a TLS 1.2-only client must be refused: {v}"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = request(gw.addr, "GET", "/health", &[], None);
    assert!(
        !matches!(plain, Ok((200, _, _))),
        "plain HTTP must not be served on the TLS port"
    );
    assert_eq!(
        audit_lines(&audit).len(),
        1,
        "a refused handshake makes no request"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls12_by_choice() {
    let dir = std::env::temp_dir().join(format!("sy-tls12-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir);
    let audit = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    let gw = tls_gateway(&cert, &key, "min_version = \"1.2\"", &audit);

    let v = client(gw.addr.port(), &cert, "1.2");
    assert_eq!(v["status"], 200, "a TLS 1.2-only client is served: {v}");
    assert_eq!(v["version"], "TLSv1.2", "{v}");
    assert_eq!(
        v["body"]["result"]["serverInfo"]["name"], "switchyard",
        "{v}"
    );
    assert_audited(&audit_lines(&audit));
    // 1.3 is still preferred by a client that can.
    let v = client(gw.addr.port(), &cert, "1.3");
    assert_eq!(
        (v["status"].as_u64(), v["version"].as_str()),
        (Some(200), Some("TLSv1.3")),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
