//! What a JWT bearer token costs a shard: a first sight (signature and claims: RS256 with a
//! 2048-bit key, ES256) against a sight of a token the shard's cache already holds.
//!
//! `cargo bench --bench jwt`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::config::{OAuth, OneOrMany, RoleMap};
use switchyard::policy::oauth::{TokenCache, Verifier};

#[path = "../tests/jwt/mod.rs"]
mod jwt;

const ISS: &str = "https://auth.bench";
const AUD: &str = "https://gw.bench/mcp";

fn jwt(c: &mut Criterion) {
    let rsa = jwt::Signer::rsa("r");
    let ec = jwt::Signer::ec("e");
    let dir = std::env::temp_dir().join(format!("sy-bench-jwt-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("jwks.json");
    if let Err(e) = std::fs::write(&file, jwt::jwks(&[&rsa, &ec]).to_string()) {
        panic!("cannot write the JWKS: {e}");
    }
    let cfg = OAuth {
        issuer: ISS.into(),
        audience: OneOrMany(vec![AUD.into()]),
        resource: Some(AUD.into()),
        authorization_servers: vec![ISS.into()],
        jwks_file: Some(file.to_string_lossy().into_owned()),
        jwks_url: None,
        jwks_ca_file: None,
        jwks_refresh_s: 300,
        jwks_min_refetch_s: 10,
        algorithms: vec!["RS256".into(), "ES256".into()],
        leeway_s: 60,
        role_claim: None,
        roles: RoleMap(vec![("mcp:read".into(), "reader".into())]),
        scopes_supported: Vec::new(),
    };
    let v = match Verifier::new(&cfg, &[("reader".into(), 0)]) {
        Ok(v) => v,
        Err(e) => panic!("verifier: {e}"),
    };
    let mut rt = match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let claims = jwt::claims(ISS, AUD, "alice", "mcp:read");
    for (name, token) in [("RS256", rsa.token(&claims)), ("ES256", ec.token(&claims))] {
        c.bench_function(&format!("jwt/{name}/first sight (verify)"), |b| {
            b.iter(|| {
                let cache = TokenCache::default();
                black_box(rt.block_on(v.verify(&cache, &token)).is_ok())
            })
        });
        let cache = TokenCache::default();
        c.bench_function(&format!("jwt/{name}/cached"), |b| {
            b.iter(|| black_box(rt.block_on(v.verify(&cache, &token)).is_ok()))
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, jwt);
criterion_main!(benches);
