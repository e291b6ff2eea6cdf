//! Test-only JWT minting with ring: an RSA key from `tests/fixtures/oauth-test-rsa.pem` (test-only,
//! published) and P-256 keys generated per run; their public JWKs; tokens signed, unsigned
//! (`alg: none`) or forged with HS256 keyed by a public key. Shared by `tests/oauth.rs` and the
//! unit tests of `policy::oauth`.
#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{json, Value};

const RSA_PEM: &str = include_str!("../fixtures/oauth-test-rsa.pem");

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A signing key with its `kid`.
pub struct Signer {
    pair: Pair,
    pub kid: String,
}

impl Signer {
    /// The test-only RSA key (RS256).
    pub fn rsa(kid: &str) -> Signer {
        let b64: String = RSA_PEM
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(b64).expect("fixture PEM");
        Signer {
            pair: Pair::Rsa(RsaKeyPair::from_pkcs8(&der).expect("fixture RSA key")),
            kid: kid.into(),
        }
    }

    /// A fresh P-256 key (ES256).
    pub fn ec(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("P-256 key");
        Signer {
            pair: Pair::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("P-256")),
            kid: kid.into(),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::Ec(_) => "ES256",
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match &self.pair {
            Pair::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty":"RSA","use":"sig","alg":"RS256","kid":self.kid,"n":b64(&c.n),"e":b64(&c.e)})
            }
            Pair::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":self.kid,"x":b64(&p[1..33]),"y":b64(&p[33..65])})
            }
        }
    }

    /// The public key bytes an attacker would use as an HMAC secret.
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(k) => k.public().as_ref().to_vec(),
            Pair::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// A token with this key's `alg` and `kid`.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": self.alg(), "kid": self.kid, "typ": "at+jwt"}),
            claims,
        )
    }

    /// Sign any header and claims with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("RSA sign");
                sig
            }
            Pair::Ec(k) => k
                .sign(&rng, input.as_bytes())
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }
}

/// A JWKS document of these keys.
pub fn jwks(signers: &[&Signer]) -> Value {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()})
}

/// `alg: none`: no signature at all.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(json!({"alg":"none","kid":kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// HS256 keyed by `secret` (the key-confusion attack when the secret is a public key).
pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg":"HS256","kid":kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Claims for `sub` with `scope`, valid for an hour.
pub fn claims(iss: &str, aud: &str, sub: &str, scope: &str) -> Value {
    let t = now();
    json!({"iss": iss, "aud": aud, "sub": sub, "scope": scope, "iat": t, "nbf": t - 5, "exp": t + 3600, "jti": format!("{sub}-{t}")})
}
