//! Token checks without the gateway: each way a token fails, role mapping order, metadata URLs.

use super::*;
use serde_json::json;

#[path = "../../../tests/jwt/mod.rs"]
mod jwt;

const ISS: &str = "https://auth.test";
const AUD: &str = "https://gw.test/mcp";

fn roles() -> Vec<(String, u16)> {
    vec![("admin".into(), 0), ("reader".into(), 1)]
}

fn cfg(dir: &std::path::Path, keys: &[&jwt::Signer]) -> config::OAuth {
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwt::jwks(keys).to_string()).unwrap();
    config::OAuth {
        issuer: ISS.into(),
        audience: config::OneOrMany(vec![AUD.into()]),
        resource: Some(AUD.into()),
        authorization_servers: vec![ISS.into()],
        jwks_file: Some(file.to_string_lossy().into_owned()),
        jwks_url: None,
        jwks_ca_file: None,
        jwks_refresh_s: 300,
        jwks_min_refetch_s: 10,
        algorithms: vec!["RS256".into(), "ES256".into()],
        leeway_s: 30,
        role_claim: None,
        roles: config::RoleMap(vec![
            ("mcp:admin".into(), "admin".into()),
            ("mcp:read".into(), "reader".into()),
        ]),
        scopes_supported: vec!["mcp:read".into(), "mcp:admin".into()],
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sy-oauth-unit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Ok(role, subject) or Err(reason).
fn check(v: &Verifier, token: &str) -> Result<(u16, String), String> {
    match v.check(token, now_unix()) {
        Checked::Ok(g) => Ok((g.role, g.subject.to_string())),
        Checked::Refused(Refusal::Invalid(why)) => Err(why),
        Checked::Refused(Refusal::NoRole { .. }) => Err("no role".into()),
        Checked::UnknownKey(kid) => Err(format!("unknown key {kid}")),
    }
}

fn now_unix() -> u64 {
    super::super::now_unix()
}

#[test]
fn every_way_a_token_fails() {
    let rsa = jwt::Signer::rsa("r1");
    let ec = jwt::Signer::ec("e1");
    let v = Verifier::new(&cfg(&temp("fails"), &[&rsa, &ec]), &roles()).unwrap();
    let good = jwt::claims(ISS, AUD, "alice", "mcp:read");
    assert_eq!(check(&v, &rsa.token(&good)), Ok((1, "alice".into())));
    assert_eq!(check(&v, &ec.token(&good)), Ok((1, "alice".into())));

    let t = jwt::now();
    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        c
    };
    let cases = [
        (with("exp", json!(t - 120)), "expired"),
        (with("nbf", json!(t + 600)), "not valid yet"),
        (with("aud", json!("https://other.test/mcp")), "(aud)"),
        (with("iss", json!("https://evil.test")), "(iss)"),
        (with("scope", json!("other")), "no role"),
    ];
    for (claims, want) in cases {
        let got = check(&v, &rsa.token(&claims));
        assert!(
            got.as_ref().is_err_and(|e| e.contains(want)),
            "{want}: {got:?}"
        );
    }
    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert!(check(&v, &rsa.token(&no_sub)).is_err_and(|e| e.contains("sub")));
    // Within the leeway: still fine.
    assert!(check(&v, &rsa.token(&with("exp", json!(t - 10)))).is_ok());

    // A signature by another key under a known kid.
    let impostor = jwt::Signer::ec("e1");
    let e = check(&v, &impostor.token(&good)).unwrap_err();
    assert!(e.contains("signature"), "{e}");
    // Unknown kid: worth a refetch.
    let stranger = jwt::Signer::ec("e9");
    assert_eq!(
        check(&v, &stranger.token(&good)),
        Err("unknown key e9".into())
    );
    // alg none, and HS256 keyed with the public key (key confusion).
    assert!(check(&v, &jwt::unsigned("r1", &good)).is_err_and(|e| e.contains("well-formed")));
    let forged = jwt::hs256("r1", &rsa.public_bytes(), &good);
    assert!(check(&v, &forged).is_err_and(|e| e.contains("HS256")));
    // An RS256 header on the EC key's kid: the key is for ES256 only.
    let mixed = rsa.sign(&json!({"alg":"RS256","kid":"e1"}), &good);
    assert!(check(&v, &mixed).is_err());
    assert!(check(&v, "not.a.jwt").is_err());
    assert!(check(&v, "").is_err());
}

#[test]
fn the_first_listed_scope_wins_and_claims_can_name_roles() {
    let rsa = jwt::Signer::rsa("r1");
    let v = Verifier::new(&cfg(&temp("order"), &[&rsa]), &roles()).unwrap();
    let both = jwt::claims(ISS, AUD, "bob", "mcp:read mcp:admin");
    assert_eq!(check(&v, &rsa.token(&both)), Ok((0, "bob".into())));
    let mut c = cfg(&temp("claim"), &[&rsa]);
    c.role_claim = Some("realm.roles".into());
    c.roles = config::RoleMap(vec![("gw-admins".into(), "admin".into())]);
    let v = Verifier::new(&c, &roles()).unwrap();
    let mut claims = jwt::claims(ISS, AUD, "carol", "");
    claims["realm"] = json!({"roles": ["reader"]});
    assert_eq!(check(&v, &rsa.token(&claims)), Ok((1, "carol".into())));
    claims["realm"] = json!({"roles": ["reader", "gw-admins"]});
    assert_eq!(check(&v, &rsa.token(&claims)), Ok((0, "carol".into())));
    claims["realm"] = json!({"roles": ["nobody"]});
    assert_eq!(check(&v, &rsa.token(&claims)), Err("no role".into()));
}

#[test]
fn cached_grants_expire_with_the_token() {
    let rsa = jwt::Signer::rsa("r1");
    let v = Verifier::new(&cfg(&temp("cache"), &[&rsa]), &roles()).unwrap();
    let cache = TokenCache::default();
    let token = rsa.token(&jwt::claims(ISS, AUD, "dave", "mcp:read"));
    let d: Digest32 = Sha256::digest(token.as_bytes()).into();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let g = rt.block_on(v.verify(&cache, &token)).unwrap();
    assert_eq!(cache.get(&d).map(|c| c.owner), Some(g.owner));
    assert!(g.expires > now_unix() + 3000, "exp + leeway");
    // A cached grant past its end is not used: the token is checked again (and, still valid,
    // cached afresh).
    cache.put(
        d,
        Grant {
            role: 0,
            expires: now_unix() - 1,
            ..g.clone()
        },
    );
    let again = rt.block_on(v.verify(&cache, &token)).unwrap();
    assert_eq!(again.role, 1, "re-verified, not the stale admin entry");
    assert!(cache.get(&d).is_some_and(|c| c.expires > now_unix()));
    // An expired token is refused and never cached.
    let mut expired = jwt::claims(ISS, AUD, "dave", "mcp:read");
    expired["exp"] = json!(jwt::now() - 3600);
    let stale = rsa.token(&expired);
    assert!(rt.block_on(v.verify(&cache, &stale)).is_err());
    let sd: Digest32 = Sha256::digest(stale.as_bytes()).into();
    assert!(cache.get(&sd).is_none());
    assert_ne!(owner_of("key", "x"), owner_of("oauth", "x"));
}

#[test]
fn metadata_lives_under_the_resource_path() {
    let rsa = jwt::Signer::rsa("r1");
    let mut c = cfg(&temp("meta"), &[&rsa]);
    let v = Verifier::new(&c, &roles()).unwrap();
    assert_eq!(
        v.metadata_url(None, false),
        "https://gw.test/.well-known/oauth-protected-resource/mcp"
    );
    assert!(v.serves_metadata_at("/.well-known/oauth-protected-resource"));
    assert!(v.serves_metadata_at("/.well-known/oauth-protected-resource/mcp"));
    assert!(!v.serves_metadata_at("/.well-known/oauth-protected-resource/other"));
    let doc: serde_json::Value = serde_json::from_slice(&v.metadata(None, false)).unwrap();
    assert_eq!(doc["resource"], AUD);
    assert_eq!(doc["authorization_servers"], json!([ISS]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:read", "mcp:admin"]));
    c.resource = None;
    let v = Verifier::new(&c, &roles()).unwrap();
    assert_eq!(
        v.metadata_url(Some("127.0.0.1:3100"), false),
        "http://127.0.0.1:3100/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(v.resource(Some("bad\"host"), true), "https://localhost/mcp");
    assert!(parse_algorithm("HS256").is_err());
    assert!(parse_algorithm("none").is_err());
    assert!(parse_algorithm("ES256").is_ok());
}
