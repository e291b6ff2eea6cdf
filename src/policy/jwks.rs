//! The issuer's signing keys (JWKS) for OAuth token checks: parsed from a file or fetched from a URL
//! (ureq on rustls, optionally trusting a private CA), and kept fresh by a background thread —
//! periodically, and when a token names an unknown `kid` (at most once per `min_gap`). Shards only
//! read the published set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::oauth::parse_algorithm;
use crate::config;

/// One verification key of the issuer.
pub(super) struct Key {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the key is then used for that algorithm only.
    pub alg: Option<Algorithm>,
    pub family: AlgorithmFamily,
    pub key: DecodingKey,
}

/// The issuer's key set as last fetched.
#[derive(Default)]
pub(super) struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// Parse a JWKS document; keys that are not for signatures or not understood are skipped.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, String> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
            return Err("the JWKS has no \"keys\" array".into());
        };
        let mut keys = Vec::new();
        for entry in entries {
            if entry.get("use").and_then(Value::as_str) == Some("enc") {
                continue;
            }
            let alg = match entry.get("alg").and_then(Value::as_str) {
                Some(a) => match parse_algorithm(a) {
                    Ok(a) => Some(a),
                    Err(_) => continue,
                },
                None => None,
            };
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            if key.family() == AlgorithmFamily::Hmac {
                continue;
            }
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                family: key.family(),
                key,
            });
        }
        Ok(KeySet { keys })
    }
}

/// Where the key set comes from.
pub(super) enum Source {
    File(PathBuf),
    Url { url: String, agent: ureq::Agent },
}

/// Largest JWKS accepted.
const MAX_JWKS: u64 = 1 << 20;

impl Source {
    pub fn load(&self) -> Result<KeySet, String> {
        let bytes = match self {
            Source::File(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
            Source::Url { url, agent } => agent
                .get(url.as_str())
                .header("Accept", "application/json")
                .call()
                .and_then(|mut r| r.body_mut().with_config().limit(MAX_JWKS).read_to_vec())
                .map_err(|e| format!("{url}: {e}"))?,
        };
        KeySet::parse(&bytes)
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Url { url, .. } => url.clone(),
        }
    }
}

pub(super) fn agent(cfg: &config::OAuth) -> Result<ureq::Agent, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if let Some(ca) = &cfg.jwks_ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("jwks_ca_file {ca}: {e}"))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect::<Vec<Certificate<'static>>>();
        if certs.is_empty() {
            return Err(format!("jwks_ca_file {ca}: no PEM certificate in it"));
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(tls.build())
        .build()
        .new_agent())
}

/// Ask the fetcher for a fresh key set; it answers once done (or at once when it fetched recently).
pub(super) type Refetch = flume::Sender<()>;

/// The fetcher thread: refresh every `every`, or when asked (at most once per `min_gap`). It ends
/// when the verifier that owns the other end of `asks` is dropped (a reload replaced it).
pub(super) fn spawn_fetcher(
    source: Source,
    set: Arc<ArcSwap<KeySet>>,
    every: Duration,
    min_gap: Duration,
    asks: flume::Receiver<Refetch>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("switchyard-jwks".into())
        .spawn(move || {
            let mut last = Instant::now();
            let mut next = last + every;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                let mut replies = Vec::new();
                match asks.recv_timeout(wait) {
                    Ok(reply) => {
                        replies.push(reply);
                        replies.extend(asks.try_iter());
                        if last.elapsed() < min_gap {
                            continue;
                        }
                    }
                    Err(flume::RecvTimeoutError::Timeout) => {}
                    Err(flume::RecvTimeoutError::Disconnected) => return,
                }
                last = Instant::now();
                match source.load() {
                    Ok(keys) => {
                        tracing::debug!(source = %source.describe(), keys = keys.keys.len(), "JWKS refreshed");
                        set.store(Arc::new(keys));
                        next = last + every;
                    }
                    Err(e) => {
                        tracing::warn!("cannot refresh the JWKS: {e}");
                        next = last + min_gap.clamp(Duration::from_secs(1), every);
                    }
                }
                drop(replies);
            }
        })
        .map(|_| ())
}
