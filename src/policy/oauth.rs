//! The gateway as an OAuth 2.1 resource server: JWT access tokens checked against the issuer's JWKS
//! (`iss`, `aud`, `exp`, `nbf`, an allowed asymmetric algorithm), their scopes or a claim mapped to
//! a role; the RFC 9728 protected resource metadata; the `WWW-Authenticate` challenges.
//!
//! The JWKS comes from a file or a URL and is refreshed by a background thread (`jwks`); shards
//! only read the published key set. The signature is checked inline on the shard, once per token
//! per shard: RS256 (2048-bit) ≈ 27 µs, ES256 ≈ 58 µs; then a cache keyed by the token's SHA-256
//! answers (≈ 0.6 µs) until the token expires (`cargo bench --bench jwt`).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hashbrown::HashMap;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::jwks::{agent, spawn_fetcher, Key, KeySet, Refetch, Source};
use super::keys::{ct_eq, Digest32};
use crate::config;

/// Parse an accepted algorithm name; symmetric algorithms and `none` are refused.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match Algorithm::from_str(name) {
        Ok(a) if a.family() == AlgorithmFamily::Hmac => Err(format!(
            "algorithm {name} is symmetric: a resource server holding public keys must not accept it"
        )),
        Ok(a) => Ok(a),
        Err(_) => Err(format!(
            "algorithm {name:?} is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        )),
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401 `invalid_token`, with the reason.
    Invalid(String),
    /// 403 `insufficient_scope`: a valid token (of this subject) that maps to no role.
    NoRole { subject: String },
}

/// A token that passed: who it names and what it may do, until when.
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: u16,
    /// `iss` and `sub` hashed: stable for the token's subject, distinct from any API key's.
    pub owner: u64,
    pub subject: Rc<str>,
    /// Seconds since the epoch; leeway included.
    not_before: u64,
    expires: u64,
}

/// What `check` found.
enum Checked {
    Ok(Grant),
    Refused(Refusal),
    /// No key in the set matches the token's `kid`: worth a refetch.
    UnknownKey(String),
}

/// One shard's memory of verified tokens: digest → grant, until the token expires.
#[derive(Default)]
pub struct TokenCache {
    map: RefCell<HashMap<u64, (Digest32, Grant)>>,
}

/// Tokens kept per shard before the cache starts over.
const CACHE_MAX: usize = 16_384;

fn slot(d: &Digest32) -> u64 {
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl TokenCache {
    fn get(&self, d: &Digest32) -> Option<Grant> {
        let map = self.map.borrow();
        let (full, grant) = map.get(&slot(d))?;
        ct_eq(full, d).then(|| grant.clone())
    }

    fn put(&self, d: Digest32, grant: Grant) {
        let mut map = self.map.borrow_mut();
        if map.len() >= CACHE_MAX {
            // Drop what has expired first; start over only if that frees nothing.
            let now = super::now_unix();
            map.retain(|_, (_, g)| g.expires > now);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(slot(&d), (d, grant));
    }

    fn forget(&self, d: &Digest32) {
        self.map.borrow_mut().remove(&slot(d));
    }

    pub fn clear(&self) {
        self.map.borrow_mut().clear();
    }
}

/// A compiled `[auth.oauth]`: the key set, the validation rules and the role mapping.
pub struct Verifier {
    cfg: config::OAuth,
    algorithms: Vec<Algorithm>,
    /// Mapping value → role index, in the order written (first match wins).
    roles: Vec<(String, u16)>,
    /// `role_claim` values may also name a role directly.
    direct: Vec<(String, u16)>,
    keys: Arc<ArcSwap<KeySet>>,
    refetch: flume::Sender<Refetch>,
    source: String,
}

impl Verifier {
    /// Compile `cfg` against the configured roles (name, index). A JWKS file must load now; a JWKS
    /// URL that cannot be fetched now is retried in the background (tokens are refused until then).
    pub fn new(cfg: &config::OAuth, named_roles: &[(String, u16)]) -> Result<Verifier, String> {
        let role_of = |name: &str| named_roles.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
        super::jws::install();
        let algorithms = cfg
            .algorithms
            .iter()
            .map(|a| parse_algorithm(a))
            .collect::<Result<Vec<_>, _>>()?;
        let roles = cfg
            .roles
            .0
            .iter()
            .map(|(scope, role)| {
                role_of(role)
                    .map(|r| (scope.clone(), r))
                    .ok_or_else(|| format!("auth.oauth.roles: unknown role {role:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(f), _) => Source::File(PathBuf::from(f)),
            (None, Some(u)) => Source::Url {
                url: u.clone(),
                agent: agent(cfg)?,
            },
            (None, None) => return Err("auth.oauth needs jwks_file or jwks_url".into()),
        };
        let initial = match (&source, source.load()) {
            (_, Ok(set)) => set,
            (Source::File(_), Err(e)) => return Err(format!("auth.oauth: {e}")),
            (Source::Url { .. }, Err(e)) => {
                tracing::error!("auth.oauth: cannot fetch the JWKS yet (retrying): {e}");
                KeySet::default()
            }
        };
        if initial.keys.is_empty() {
            tracing::warn!(source = %source.describe(), "the JWKS holds no usable signing key");
        }
        let keys = Arc::new(ArcSwap::from_pointee(initial));
        let (refetch, asks) = flume::unbounded();
        let described = source.describe();
        spawn_fetcher(
            source,
            keys.clone(),
            Duration::from_secs(cfg.jwks_refresh_s),
            Duration::from_secs(cfg.jwks_min_refetch_s),
            asks,
        )
        .map_err(|e| format!("cannot start the JWKS fetcher: {e}"))?;
        // A `role_claim` value may also name a role itself.
        let direct = match &cfg.role_claim {
            Some(_) => named_roles.to_vec(),
            None => Vec::new(),
        };
        Ok(Verifier {
            cfg: cfg.clone(),
            algorithms,
            roles,
            direct,
            keys,
            refetch,
            source: described,
        })
    }

    /// The same configuration (a reload can keep this verifier, its key set and its fetcher).
    pub fn config_is(&self, cfg: &config::OAuth) -> bool {
        self.cfg == *cfg
    }

    /// Ask for a fresh key set without waiting (after a reload).
    pub fn refresh_soon(&self) {
        let (tx, _rx) = flume::bounded(1);
        let _ = self.refetch.send(tx);
    }

    /// Check a bearer token: from the shard's cache, else by signature and claims. A token naming
    /// an unknown key waits (without blocking the shard) for one refetch of the key set.
    pub async fn verify(&self, cache: &TokenCache, token: &str) -> Result<Grant, Refusal> {
        let digest: Digest32 = Sha256::digest(token.as_bytes()).into();
        let now = super::now_unix();
        if let Some(g) = cache.get(&digest) {
            if now < g.expires && now >= g.not_before {
                return Ok(g);
            }
            cache.forget(&digest);
        }
        let mut refetched = false;
        loop {
            match self.check(token, now) {
                Checked::Ok(g) => {
                    cache.put(digest, g.clone());
                    return Ok(g);
                }
                Checked::Refused(r) => return Err(r),
                Checked::UnknownKey(kid) if !refetched => {
                    refetched = true;
                    tracing::info!(%kid, source = %self.source, "token names an unknown key: refetching the JWKS");
                    let (tx, rx) = flume::bounded(1);
                    if self.refetch.send(tx).is_ok() {
                        let _ =
                            monoio::time::timeout(Duration::from_secs(5), rx.recv_async()).await;
                    }
                }
                Checked::UnknownKey(kid) => {
                    return Err(Refusal::Invalid(format!(
                        "the token's key id {kid:?} is not in the issuer's key set"
                    )))
                }
            }
        }
    }

    /// Signature, algorithm and claims; no cache, no waiting.
    fn check(&self, token: &str, now: u64) -> Checked {
        let invalid = |why: String| Checked::Refused(Refusal::Invalid(why));
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            // `alg: none` (and anything else outside the asymmetric algorithms) fails here.
            Err(_) => {
                return invalid(
                    "the token is not a well-formed JWT signed with a known algorithm".into(),
                )
            }
        };
        if !self.algorithms.contains(&header.alg) {
            return invalid(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            ));
        }
        let set = self.keys.load();
        let fits =
            |k: &Key| k.family == header.alg.family() && k.alg.is_none_or(|a| a == header.alg);
        let candidates: Vec<&Key> = match &header.kid {
            Some(kid) => set
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            None => set.keys.iter().filter(|k| fits(k)).collect(),
        };
        if candidates.is_empty() {
            return Checked::UnknownKey(header.kid.unwrap_or_else(|| "(none)".into()));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.cfg.leeway_s;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.cfg.issuer.as_str()]);
        validation.set_audience(&self.cfg.audience.0);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = None;
        for key in candidates.iter().filter(|k| fits(k)) {
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return self.grant(&data.claims, now),
                Err(e) => last = Some(e),
            }
        }
        use jsonwebtoken::errors::ErrorKind as K;
        let why = match last.as_ref().map(|e| e.kind()) {
            None => format!(
                "the key {:?} is not for {:?}",
                header.kid.as_deref().unwrap_or(""),
                header.alg
            ),
            Some(K::InvalidSignature) => "the token's signature does not verify".into(),
            Some(K::ExpiredSignature) => "the token has expired".into(),
            Some(K::ImmatureSignature) => "the token is not valid yet (nbf)".into(),
            Some(K::InvalidAudience) => "the token was not issued for this gateway (aud)".into(),
            Some(K::InvalidIssuer) => {
                format!("the token was not issued by {} (iss)", self.cfg.issuer)
            }
            Some(K::MissingRequiredClaim(c)) => format!("the token lacks the {c} claim"),
            Some(K::InvalidClaimFormat(c)) => format!("the token's {c} claim is malformed"),
            Some(_) => "the token is not a well-formed JWT".into(),
        };
        invalid(why)
    }

    /// Map valid claims to a grant (or to "no role").
    fn grant(&self, claims: &Value, now: u64) -> Checked {
        let values = self.role_values(claims);
        let from_map = self
            .roles
            .iter()
            .find(|(v, _)| values.iter().any(|t| t == v))
            .map(|(_, r)| *r);
        let role = from_map.or_else(|| {
            values
                .iter()
                .find_map(|t| self.direct.iter().find(|(n, _)| n == t).map(|(_, r)| *r))
        });
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        let Some(role) = role else {
            return Checked::Refused(Refusal::NoRole {
                subject: sub.to_owned(),
            });
        };
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        let leeway = self.cfg.leeway_s;
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
        let nbf = claims.get("nbf").and_then(Value::as_u64).unwrap_or(0);
        Checked::Ok(Grant {
            role,
            owner: owner_of("oauth", &format!("{iss}\0{sub}")),
            subject: Rc::from(sub),
            not_before: nbf.saturating_sub(leeway),
            expires: exp.saturating_add(leeway),
        })
    }

    /// The strings a token's role is looked up by: `role_claim`'s value(s), else its scopes.
    fn role_values(&self, claims: &Value) -> Vec<String> {
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        match &self.cfg.role_claim {
            Some(c) => strings(claims.pointer(&format!("/{}", c.replace('.', "/")))),
            None => {
                let mut v = strings(claims.get("scope"));
                v.extend(strings(claims.get("scp")));
                v
            }
        }
    }

    /// This gateway's resource URI for a request that came to `host`.
    pub fn resource(&self, host: Option<&str>, https: bool) -> String {
        match &self.cfg.resource {
            Some(r) => r.clone(),
            None => format!(
                "{}://{}/mcp",
                if https { "https" } else { "http" },
                clean_host(host)
            ),
        }
    }

    /// Where the protected resource metadata of `resource` lives (RFC 9728 §3.1: the well-known
    /// segment goes between the authority and the path).
    pub fn metadata_url(&self, host: Option<&str>, https: bool) -> String {
        let resource = self.resource(host, https);
        let (scheme, rest) = resource.split_once("://").unwrap_or(("https", &resource));
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
        format!("{scheme}://{authority}/.well-known/oauth-protected-resource{path}")
    }

    /// The RFC 9728 metadata document.
    pub fn metadata(&self, host: Option<&str>, https: bool) -> Vec<u8> {
        let mut doc = json!({
            "resource": self.resource(host, https),
            "authorization_servers": self.cfg.authorization_servers,
            "bearer_methods_supported": ["header"],
            "resource_signing_alg_values_supported": self.cfg.algorithms,
        });
        if !self.cfg.scopes_supported.is_empty() {
            doc["scopes_supported"] = json!(self.cfg.scopes_supported);
        }
        doc.to_string().into_bytes()
    }

    /// Whether `path` is one this gateway serves its metadata at: the root form and the form
    /// suffixed with the resource's path (`/mcp` unless `resource` says otherwise).
    pub fn serves_metadata_at(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix("/.well-known/oauth-protected-resource") else {
            return false;
        };
        let own = self
            .cfg
            .resource
            .as_deref()
            .and_then(|r| r.split_once("://"))
            .map(|(_, r)| r.find('/').map_or("", |i| &r[i..]))
            .unwrap_or("/mcp")
            .trim_end_matches('/');
        rest.is_empty() || rest == "/" || rest == own || rest == "/mcp"
    }

    /// The `scope` to name in challenges.
    pub fn scopes(&self) -> String {
        self.cfg.scopes_supported.join(" ")
    }
}

/// A Host header fit to be put in a URL and a quoted header parameter.
fn clean_host(host: Option<&str>) -> &str {
    match host {
        Some(h)
            if !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)) =>
        {
            h
        }
        _ => "localhost",
    }
}

/// A stable, non-zero identity for sessions and buckets: `kind` keeps key ids and token subjects
/// apart.
pub fn owner_of(kind: &str, id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let d: Digest32 = h.finalize().into();
    slot(&d).max(1)
}

/// A value fit for a quoted `WWW-Authenticate` parameter.
pub fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
