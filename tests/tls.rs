//! TLS on the front listener, checked with an independent client (Python's `ssl`, i.e. OpenSSL):
//! a TLS 1.3 handshake and an MCP request over it; a TLS 1.2-only client refused when the minimum
//! is 1.3; plain HTTP refused.

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

#[test]
fn tls13_handshake_with_a_real_client() {
    let dir = std::env::temp_dir().join(format!("sy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    let gw = start_bare(&format!(
        "[gateway.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));

    let v = client(gw.addr.port(), &cert, "1.3");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["version"], "TLSv1.3", "{v}");
    assert_eq!(
        v["body"]["result"]["serverInfo"]["name"], "switchyard",
        "{v}"
    );

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
    let _ = std::fs::remove_dir_all(&dir);
}
