//! The gateway as an OAuth 2.1 resource server, against the real binary: JWT bearer tokens good,
//! expired, not yet valid, for another audience or issuer, badly signed, with an unknown key,
//! unsigned (`alg: none`) or HMAC-forged with the public key — each checked for HTTP status,
//! JSON-RPC code, `WWW-Authenticate` and the audit line; the RFC 9728 metadata; a JWKS fetched by
//! URL (plain and https with a private CA) and refetched for a new `kid`; client credentials never
//! reaching an HTTP upstream.

mod common;
mod httpd;
mod jwt;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ISS: &str = "https://auth.example.test";
const AUD: &str = "https://gw.example.test/mcp";
const META: &str = "https://gw.example.test/.well-known/oauth-protected-resource/mcp";
/// The admin demo key of `config/examples/secured.toml`: keys work alongside tokens.
const ADMIN_KEY: &str = "sy_8jLUckKg_hju1IJWThpRyczRlNRucxPgHgbwTrwdo";

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sy-oauth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A config body: roles, an admin key, `[auth.oauth]` with `source` (its jwks_* lines), strict
/// audit to `audit`, then `servers`.
fn config(source: &str, audit: &Path, servers: &str) -> String {
    format!(
        r#"[audit]
enabled = true
path = "{audit}"
durability = "strict"

[roles.admin]

[roles.reader]
allowed_tools = ["util/echo"]

[roles.nothing]
allowed_tools = []
allowed_prompts = []
allowed_resources = []

[auth.oauth]
issuer = "{ISS}"
resource = "{AUD}"
{source}
jwks_min_refetch_s = 1

[auth.oauth.roles]
"mcp:admin" = "admin"
"mcp:read" = "reader"
"mcp:nothing" = "nothing"

[[auth.keys]]
id = "8jLUckKg"
hash = "$argon2id$v=19$m=19456,t=2,p=1$JidYTluzzzJxVhEwyZaI9g$s3doQ0BZWoPR6nbQgcP9L9eWR90wQ2FhMbzsi0ozfK0"
role = "admin"

{servers}"#,
        audit = audit.display()
    )
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}})
}

/// A 2026-07-28 request with `auth` as the Authorization header; (status, headers, body).
fn call(
    gw: &Gateway,
    auth: Option<&str>,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Vec<(String, String)>, Value) {
    params["_meta"] = meta();
    if let Some(n) = name {
        params["name"] = n.into();
    }
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    if let Some(a) = auth {
        h.push(("Authorization", a));
    }
    post(
        gw.addr,
        &h,
        &json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn last_line(audit: &Path) -> Value {
    let text = std::fs::read_to_string(audit).expect("audit file");
    let line = text.lines().last().expect("an audit line");
    serde_json::from_str(line).expect("audit lines are JSON")
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn tool_names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn jwt_bearer_tokens_every_branch() {
    let dir = temp("branches");
    let audit = dir.join("audit.jsonl");
    let rsa = jwt::Signer::rsa("rsa-1");
    let ec = jwt::Signer::ec("ec-1");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, jwt::jwks(&[&rsa, &ec]).to_string()).expect("jwks");
    let gw = start(
        &config(
            &format!("jwks_file = \"{}\"", jwks.display()),
            &audit,
            DEMOS,
        ),
        2,
    );

    // Good tokens, RS256 and ES256: the call works, the audit line names subject and role.
    let alice = jwt::claims(ISS, AUD, "alice", "openid mcp:read");
    for token in [rsa.token(&alice), ec.token(&alice)] {
        let (s, _, v) = call(&gw, Some(&bearer(&token)), "tools/list", None, json!({}));
        assert_eq!(s, 200, "{v}");
        assert_eq!(tool_names(&v), ["util__echo"], "the reader role's view");
        let (s, _, v) = call(
            &gw,
            Some(&bearer(&token)),
            "tools/call",
            Some("util__echo"),
            json!({"arguments":{"text":"hi"}}),
        );
        assert_eq!(s, 200, "{v}");
        let a = last_line(&audit);
        assert_eq!(
            (
                a["event"].as_str(),
                a["subject"].as_str(),
                a["role"].as_str(),
                a["tool"].as_str(),
                a["status"].as_u64()
            ),
            (
                Some("request"),
                Some("alice"),
                Some("reader"),
                Some("echo"),
                Some(200)
            ),
            "{a}"
        );
        assert!(a.get("key").is_none(), "{a}");
    }
    let admin = rsa.token(&jwt::claims(ISS, AUD, "root", "mcp:read mcp:admin"));
    let (s, _, v) = call(&gw, Some(&bearer(&admin)), "tools/list", None, json!({}));
    assert_eq!(s, 200);
    assert!(tool_names(&v).len() > 1, "the admin role sees more: {v}");

    // No token: 401 pointing at the metadata, with the scopes to ask for, no error code.
    let (s, h, v) = call(&gw, None, "tools/list", None, json!({}));
    assert_eq!((s, v["error"]["code"].as_i64()), (401, Some(-31054)), "{v}");
    assert_eq!(
        header(&h, "www-authenticate"),
        format!("Bearer resource_metadata=\"{META}\", scope=\"mcp:admin mcp:read mcp:nothing\"")
    );
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["status"].as_u64(),
            a["code"].as_i64()
        ),
        (Some("denied"), Some(401), Some(-31054)),
        "{a}"
    );

    // Each bad token: 401 invalid_token, the reason in the error, the challenge and the audit.
    let t = jwt::now();
    let with = |k: &str, val: Value| {
        let mut c = alice.clone();
        c[k] = val;
        c
    };
    let impostor = jwt::Signer::rsa("rsa-1");
    let other_ec = jwt::Signer::ec("ec-1");
    let stranger = jwt::Signer::ec("ec-unknown");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            rsa.token(&with("exp", json!(t - 300))),
            "expired",
        ),
        (
            "not yet valid",
            rsa.token(&with("nbf", json!(t + 600))),
            "not valid yet",
        ),
        (
            "wrong audience",
            rsa.token(&with("aud", json!("https://other.example.test/mcp"))),
            "(aud)",
        ),
        (
            "wrong issuer",
            rsa.token(&with("iss", json!("https://evil.example.test"))),
            "(iss)",
        ),
        ("bad signature", other_ec.token(&alice), "signature"),
        (
            "unknown kid",
            stranger.token(&alice),
            "not in the issuer's key set",
        ),
        ("alg none", jwt::unsigned("rsa-1", &alice), "well-formed"),
        (
            "HS256 keyed with the public key",
            jwt::hs256("rsa-1", &impostor.public_bytes(), &alice),
            "HS256",
        ),
    ];
    for (what, token, why) in &cases {
        let (s, h, v) = call(&gw, Some(&bearer(token)), "tools/list", None, json!({}));
        assert_eq!(
            (s, v["error"]["code"].as_i64()),
            (401, Some(-31054)),
            "{what}: {v}"
        );
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("invalid token") && msg.contains(why),
            "{what}: {msg}"
        );
        let w = header(&h, "www-authenticate");
        assert!(
            w.starts_with("Bearer error=\"invalid_token\"")
                && w.contains(&format!("resource_metadata=\"{META}\""))
                && w.contains(why),
            "{what}: {w}"
        );
        let a = last_line(&audit);
        assert_eq!(
            (
                a["event"].as_str(),
                a["status"].as_u64(),
                a["code"].as_i64()
            ),
            (Some("denied"), Some(401), Some(-31054)),
            "{what}: {a}"
        );
        assert!(
            a["reason"].as_str().unwrap_or("").contains(why) && a.get("subject").is_none(),
            "{what}: {a}"
        );
    }

    // Valid tokens that grant nothing here: 403 insufficient_scope.
    for scope in ["profile email", "mcp:nothing"] {
        let token = rsa.token(&jwt::claims(ISS, AUD, "eve", scope));
        let (s, h, v) = call(&gw, Some(&bearer(&token)), "tools/list", None, json!({}));
        assert_eq!(
            (s, v["error"]["code"].as_i64()),
            (403, Some(-31055)),
            "{scope}: {v}"
        );
        let w = header(&h, "www-authenticate");
        assert!(
            w.starts_with("Bearer error=\"insufficient_scope\"")
                && w.contains("scope=\"mcp:admin mcp:read mcp:nothing\"")
                && w.contains(&format!("resource_metadata=\"{META}\"")),
            "{scope}: {w}"
        );
        let a = last_line(&audit);
        assert_eq!(
            (
                a["event"].as_str(),
                a["status"].as_u64(),
                a["code"].as_i64(),
                a["subject"].as_str()
            ),
            (Some("denied"), Some(403), Some(-31055), Some("eve")),
            "{a}"
        );
    }

    // API keys keep working next to tokens.
    let (s, _, v) = call(&gw, Some(&bearer(ADMIN_KEY)), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(last_line(&audit)["key"], "8jLUckKg");

    // A legacy session belongs to the token's subject.
    let alice_auth = bearer(&rsa.token(&alice));
    let sid = initialize_as(gw.addr, &[("Authorization", &alice_auth)]);
    let bob = bearer(&rsa.token(&jwt::claims(ISS, AUD, "bob", "mcp:read")));
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let (s, _, _) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid), ("Authorization", &bob)],
        &list,
    );
    assert_eq!(s, 404, "another subject's session does not exist");
    let (s, _, _) = post(
        gw.addr,
        &[("Mcp-Session-Id", &sid), ("Authorization", &alice_auth)],
        &list,
    );
    assert_eq!(s, 200);

    // RFC 9728 metadata at the root and path-suffixed well-known URIs, without credentials.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (s, _, body) = request(gw.addr, "GET", path, &[], None).expect("metadata");
        let doc: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(s, 200, "{path}");
        assert_eq!(doc["resource"], AUD);
        assert_eq!(doc["authorization_servers"], json!([ISS]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["mcp:admin", "mcp:read", "mcp:nothing"])
        );
    }
    let (s, _, _) = request(
        gw.addr,
        "GET",
        "/.well-known/oauth-protected-resource/elsewhere",
        &[],
        None,
    )
    .expect("metadata");
    assert_eq!(s, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JWKS server whose document can be swapped; counts fetches.
fn jwks_server(doc: Arc<ArcSwap<String>>, fetches: Arc<AtomicUsize>) -> httpd::Handler {
    Arc::new(move |req: &httpd::Req| {
        if req.path != "/jwks" {
            return (404, vec![], b"{}".to_vec());
        }
        fetches.fetch_add(1, Ordering::SeqCst);
        let body = doc.load().as_str().to_owned();
        (200, vec![], body.into_bytes())
    })
}

#[test]
fn jwks_by_url_is_refetched_for_a_new_kid() {
    let dir = temp("url");
    let audit = dir.join("audit.jsonl");
    let first = jwt::Signer::ec("k1");
    let second = jwt::Signer::rsa("k2");
    let doc = Arc::new(ArcSwap::from_pointee(jwt::jwks(&[&first]).to_string()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let addr = httpd::serve(jwks_server(doc.clone(), fetches.clone()));
    let gw = start(
        &config(&format!("jwks_url = \"http://{addr}/jwks\""), &audit, DEMOS),
        1,
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once at start");
    let claims = jwt::claims(ISS, AUD, "alice", "mcp:read");
    let (s, _, v) = call(
        &gw,
        Some(&bearer(&first.token(&claims))),
        "tools/list",
        None,
        json!({}),
    );
    assert_eq!(s, 200, "{v}");

    // The issuer rotates in a new key; the first token naming it makes the gateway refetch (off
    // the shard's loop) and then succeeds.
    doc.store(Arc::new(jwt::jwks(&[&first, &second]).to_string()));
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _, v) = call(
        &gw,
        Some(&bearer(&second.token(&claims))),
        "tools/list",
        None,
        json!({}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A flood of unknown kids fetches at most once per jwks_min_refetch_s.
    let stranger = jwt::Signer::ec("k9");
    for _ in 0..5 {
        let (s, _, _) = call(
            &gw,
            Some(&bearer(&stranger.token(&claims))),
            "tools/list",
            None,
            json!({}),
        );
        assert_eq!(s, 401);
    }
    assert!(
        fetches.load(Ordering::SeqCst) <= 3,
        "rate-limited refetches"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jwks_over_https_with_a_private_ca() {
    let dir = temp("https");
    let audit = dir.join("audit.jsonl");
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).expect("ca");
    let key = jwt::Signer::ec("tls-k");
    let doc = Arc::new(ArcSwap::from_pointee(jwt::jwks(&[&key]).to_string()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let addr = httpd::serve_tls(
        jwks_server(doc, fetches.clone()),
        ck.cert.der().to_vec(),
        ck.signing_key.serialize_der(),
    );
    let gw = start(
        &config(
            &format!(
                "jwks_url = \"https://{addr}/jwks\"\njwks_ca_file = \"{}\"",
                ca.display()
            ),
            &audit,
            DEMOS,
        ),
        1,
    );
    let token = key.token(&jwt::claims(ISS, AUD, "alice", "mcp:read"));
    let (s, _, v) = call(&gw, Some(&bearer(&token)), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(fetches.load(Ordering::SeqCst) >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_credentials_never_reach_an_http_upstream() {
    let dir = temp("upstream");
    let audit = dir.join("audit.jsonl");
    let rsa = jwt::Signer::rsa("rsa-1");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, jwt::jwks(&[&rsa]).to_string()).expect("jwks");
    let (up, seen) = httpd::mcp_upstream();
    // The upstream's own credential comes from the gateway's environment, not the config file.
    let servers = format!(
        "[[servers]]\nname = \"rec\"\nurl = \"http://{up}/mcp\"\nheaders = {{ \"X-Upstream-Token\" = \"${{UP_TOKEN}}\" }}\n"
    );
    let gw = start_env(
        &config(
            &format!("jwks_file = \"{}\"", jwks.display()),
            &audit,
            &servers,
        ),
        1,
        &[("UP_TOKEN", "up-secret-from-env")],
    );
    let token = bearer(&rsa.token(&jwt::claims(ISS, AUD, "alice", "mcp:admin")));
    let (s, _, v) = call(
        &gw,
        Some(&token),
        "tools/call",
        Some("rec__whoami"),
        json!({"arguments":{}}),
    );
    assert_eq!(s, 200, "{v}");
    let key = bearer(ADMIN_KEY);
    let (s, _, v) = call(
        &gw,
        Some(&key),
        "tools/call",
        Some("rec__whoami"),
        json!({"arguments":{}}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = post(
        gw.addr,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "rec__whoami"),
            ("X-API-Key", ADMIN_KEY),
        ],
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec__whoami","arguments":{},"_meta":meta()}}),
    );
    assert_eq!(s, 200, "{v}");

    let seen: Vec<_> = std::iter::from_fn(|| seen.pop()).collect();
    assert!(seen.len() >= 5, "handshake and three calls: {}", seen.len());
    for headers in &seen {
        for (k, v) in headers {
            assert!(
                k != "authorization" && k != "x-api-key",
                "the upstream saw {k}: {v}"
            );
            assert!(!v.contains("sy_8jLUckKg") && !v.contains("eyJ"), "{k}: {v}");
        }
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "x-upstream-token" && v == "up-secret-from-env"),
            "the upstream's own credentials go with every request: {headers:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_role_claim_maps_tokens_to_roles() {
    // role_claim = "realm.groups": the claim's values pick the role (through [auth.oauth.roles],
    // or naming a role directly); the scopes no longer do.
    let dir = temp("claim");
    let audit = dir.join("audit.jsonl");
    let rsa = jwt::Signer::rsa("rsa-1");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, jwt::jwks(&[&rsa]).to_string()).expect("jwks");
    let gw = start(
        &config(
            &format!(
                "jwks_file = \"{}\"\nrole_claim = \"realm.groups\"",
                jwks.display()
            ),
            &audit,
            DEMOS,
        ),
        1,
    );
    let token = |sub: &str, scope: &str, groups: Option<Value>| {
        let mut c = jwt::claims(ISS, AUD, sub, scope);
        if let Some(g) = groups {
            c["realm"] = json!({ "groups": g });
        }
        bearer(&rsa.token(&c))
    };

    // Mapped: the group "mcp:read" is the reader, though the scope asks for admin.
    let carol = token("carol", "mcp:admin", Some(json!(["staff", "mcp:read"])));
    let (s, _, v) = call(&gw, Some(&carol), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(tool_names(&v), ["util__echo"], "the reader role's view");
    let (s, _, v) = call(
        &gw,
        Some(&carol),
        "tools/call",
        Some("util__add"),
        json!({"arguments":{"a":1,"b":2}}),
    );
    assert_eq!((s, v["error"]["code"].as_i64()), (200, Some(-32602)), "{v}");
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["subject"].as_str(),
            a["role"].as_str(),
            a["tool"].as_str(),
            a["status"].as_u64(),
            a["code"].as_i64()
        ),
        (
            Some("blocked"),
            Some("carol"),
            Some("reader"),
            Some("add"),
            Some(200),
            Some(-32602)
        ),
        "{a}"
    );

    // Named directly: a single string value "admin" is the admin role.
    let dave = token("dave", "", Some(json!("admin")));
    let (s, _, v) = call(&gw, Some(&dave), "tools/list", None, json!({}));
    assert_eq!(s, 200, "{v}");
    let names = tool_names(&v);
    assert!(
        names.contains(&"util__add".to_owned()) && names.contains(&"notes__delete_note".to_owned()),
        "the admin's view: {names:?}"
    );
    let a = last_line(&audit);
    assert_eq!(
        (
            a["event"].as_str(),
            a["subject"].as_str(),
            a["role"].as_str(),
            a["status"].as_u64()
        ),
        (Some("request"), Some("dave"), Some("admin"), Some(200)),
        "{a}"
    );

    // No role from the claim: 403, whatever the scopes say.
    for (sub, groups) in [("erin", None), ("frank", Some(json!(["staff"])))] {
        let t = token(sub, "mcp:admin", groups);
        let (s, _, v) = call(&gw, Some(&t), "tools/list", None, json!({}));
        assert_eq!(
            (s, v["error"]["code"].as_i64()),
            (403, Some(-31055)),
            "{sub}: {v}"
        );
        let a = last_line(&audit);
        assert_eq!(
            (
                a["event"].as_str(),
                a["status"].as_u64(),
                a["code"].as_i64(),
                a["subject"].as_str()
            ),
            (Some("denied"), Some(403), Some(-31055), Some(sub)),
            "{a}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
