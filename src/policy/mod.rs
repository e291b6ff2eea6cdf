//! Who may call what, and how often: API keys (stored hashed, verified once per shard), OAuth
//! bearer tokens (JWTs, `oauth`), roles and their globs, per-server allow/block rules, the
//! lock-free rate limiter, CORS.
//!
//! Globs are evaluated when the catalog is built (`visible`), producing per-role visibility sets;
//! a request checks a bit. Requests without a key belong to the anonymous role, which exists only
//! when no key or token issuer is configured (auth off), and sees everything the servers allow.
//!
//! The compiled policy is a snapshot behind [`PolicyHandle`]: a reload (SIGHUP) compiles the new
//! `[auth]` and `[roles]` and swaps it in whole. The set of role names is fixed for the process
//! (catalog views are indexed by role), so a reload that adds or removes roles is refused; keys,
//! key files, token settings, role globs and rates may change. Rate buckets follow a key across
//! reloads by its id; shard caches start over when the generation changes.

pub mod cidr;
pub mod cors;
pub mod glob;
mod handle;
mod jwks;
mod jws;
pub mod keys;
pub mod limiter;
pub mod oauth;

use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;

use crate::config::{self, Config};
use crate::error::{Error, ErrorKind};
pub use handle::{PolicyHandle, Reloaded};
use keys::{KeyCache, VerifyJob};
use limiter::{Bucket, Epoch, IpBuckets, Rate, Verdict};

/// What kind of thing a visibility question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Tool,
    Prompt,
    Resource,
}

/// One key, as configured.
pub struct KeyRecord {
    pub id: String,
    phc: String,
    pub role: u16,
    pub expires_at: Option<u64>,
    pub revoked: bool,
    /// The key's own rate when it sets `rate_per_s` or `burst` (the rest from its role);
    /// `None` = its role's.
    rate: Option<Option<Rate>>,
}

/// One role's rules.
pub struct RoleRules {
    pub name: String,
    rules: config::Role,
    rate: Option<Rate>,
}

/// The caller of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Index into `Policy::keys` of the snapshot that admitted the request; `None` for a bearer
    /// token or an anonymous caller.
    pub key: Option<u32>,
    /// Index into the roles; `Policy::anonymous_role()` for an anonymous caller.
    pub role: u16,
    /// Who this is, stable across reloads: derived from the key id or from the token's issuer and
    /// subject; 0 for an anonymous caller. Sessions belong to it.
    pub owner: u64,
}

/// The credentials a request presented.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The token of `Authorization: Bearer <token>` (an API key or a JWT).
    pub bearer: Option<&'a str>,
    /// `X-API-Key`.
    pub api_key: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    pub fn from_headers(authorization: Option<&'a str>, api_key: Option<&'a str>) -> Self {
        let bearer = authorization.and_then(|a| {
            let (scheme, rest) = a.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
        Credentials {
            bearer: bearer.filter(|b| !b.is_empty()),
            api_key: api_key.map(str::trim).filter(|k| !k.is_empty()),
        }
    }
}

/// An admitted caller, and the token subject to audit when it came with a token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub who: Principal,
    pub subject: Option<Rc<str>>,
}

/// What a `WWW-Authenticate` challenge says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No credentials.
    Missing,
    /// Credentials presented and refused (`error="invalid_token"`), with the reason.
    Invalid(String),
    /// A valid token that grants no role here (`error="insufficient_scope"`, 403).
    InsufficientScope,
}

/// A refused caller: the error to answer, the challenge to send, and what to audit.
#[derive(Debug)]
pub struct Denial {
    pub error: Error,
    pub challenge: Challenge,
    pub key: Option<String>,
    /// The subject of a valid token that was refused (403).
    pub subject: Option<String>,
}

/// One shard's memory of verified credentials, valid for one policy generation.
#[derive(Default)]
pub struct AuthCache {
    generation: Cell<u64>,
    pub keys: KeyCache,
    pub tokens: oauth::TokenCache,
}

impl AuthCache {
    /// Forget everything learned under another policy generation (a reload happened).
    fn sync(&self, generation: u64) {
        if self.generation.get() != generation {
            self.keys.clear();
            self.tokens.clear();
            self.generation.set(generation);
        }
    }
}

/// Generations of compiled policies in this process.
static GENERATION: AtomicU64 = AtomicU64::new(1);

pub struct Policy {
    /// Changes on every compile; shard caches are valid for one generation.
    pub generation: u64,
    pub keys: Vec<KeyRecord>,
    by_id: HashMap<String, usize>,
    pub roles: Vec<RoleRules>,
    pub auth_required: bool,
    epoch: Epoch,
    key_buckets: Vec<Arc<Bucket>>,
    ip_rate: Option<Rate>,
    ip_buckets: Arc<IpBuckets>,
    /// Bearer-token callers, bucketed by `Principal::owner`.
    owner_buckets: Arc<IpBuckets>,
    verifier: Option<flume::Sender<VerifyJob>>,
    pub oauth: Option<Arc<oauth::Verifier>>,
    /// `auth.stdio_role`: the role of a stdio client that presents no credentials.
    pub stdio_role: Option<u16>,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Policy {
    /// Compile the security part of a config. Refuses to serve without keys on a non-loopback
    /// listener unless `auth.allow_unauthenticated` says so.
    pub fn compile(config: &Config) -> Result<Policy, String> {
        Policy::compile_after(config, None)
    }

    /// Compile, carrying over from `prev` (a reload) what must outlive it: rate buckets, the
    /// limiter's clock, the Argon2 verifier, and the token verifier when its settings are unchanged.
    fn compile_after(config: &Config, prev: Option<&Policy>) -> Result<Policy, String> {
        let roles: Vec<RoleRules> = config
            .roles
            .iter()
            .map(|(name, r)| RoleRules {
                name: name.clone(),
                rules: r.clone(),
                rate: Rate::new(r.rate_per_s, r.burst),
            })
            .chain(std::iter::once(RoleRules {
                name: "anonymous".into(),
                rules: config::Role::default(),
                rate: None,
            }))
            .collect();
        let role_of = |name: &str| roles.iter().position(|r| r.name == name).map(|i| i as u16);
        let mut keys = Vec::new();
        for k in &config.auth.keys {
            let k = k.get_ref();
            let role = role_of(&k.role)
                .ok_or_else(|| format!("key {:?}: unknown role {:?}", k.id, k.role))?;
            let of_role = &roles[role as usize].rules;
            let rate = (k.rate_per_s.is_some() || k.burst.is_some()).then(|| {
                Rate::new(
                    k.rate_per_s.unwrap_or(of_role.rate_per_s),
                    k.burst.unwrap_or(of_role.burst),
                )
            });
            keys.push(KeyRecord {
                id: k.id.clone(),
                phc: k.hash.clone(),
                role,
                expires_at: k.expires.as_deref().and_then(config::parse_utc),
                revoked: k.revoked,
                rate,
            });
        }
        let oauth = match (&config.auth.oauth, prev.and_then(|p| p.oauth.as_ref())) {
            (None, _) => None,
            (Some(cfg), Some(old)) if old.config_is(cfg) => {
                old.refresh_soon();
                Some(old.clone())
            }
            (Some(cfg), _) => {
                let named: Vec<(String, u16)> = roles[..roles.len() - 1]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.name.clone(), i as u16))
                    .collect();
                Some(Arc::new(oauth::Verifier::new(cfg, &named)?))
            }
        };
        let stdio_role = match &config.auth.stdio_role {
            Some(r) => Some(
                role_of(r.get_ref())
                    .ok_or_else(|| format!("auth.stdio_role: unknown role {:?}", r.get_ref()))?,
            ),
            None => None,
        };
        let auth_required = !keys.is_empty() || oauth.is_some();
        let listen = config.gateway.listen_addr();
        if !auth_required && !listen.ip().is_loopback() && !config.auth.allow_unauthenticated {
            return Err(format!(
                "{}: no API keys are configured and the gateway listens on {listen}, which is not loopback; add [[auth.keys]] or set auth.allow_unauthenticated = true",
                config.path.display()
            ));
        }
        let verifier = match prev.and_then(|p| p.verifier.clone()) {
            Some(v) => Some(v),
            None if !keys.is_empty() => Some(
                keys::start_verifiers(1, keys::VERIFY_QUEUE)
                    .map_err(|e| format!("cannot start the key verifier: {e}"))?,
            ),
            None => None,
        };
        // A key keeps its bucket across reloads (by id), so a reload never refills it.
        let key_buckets = keys
            .iter()
            .map(|k| prev.and_then(|p| p.bucket_of(&k.id)).unwrap_or_default())
            .collect();
        Ok(Policy {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            by_id: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.id.clone(), i))
                .collect(),
            key_buckets,
            keys,
            roles,
            auth_required,
            epoch: prev.map_or_else(Epoch::default, |p| p.epoch),
            ip_rate: Rate::new(config.auth.ip_rate_per_s, config.auth.ip_burst),
            ip_buckets: prev
                .map_or_else(|| Arc::new(IpBuckets::new(4096)), |p| p.ip_buckets.clone()),
            owner_buckets: prev.map_or_else(
                || Arc::new(IpBuckets::new(4096)),
                |p| p.owner_buckets.clone(),
            ),
            verifier,
            oauth,
            stdio_role,
        })
    }

    fn bucket_of(&self, id: &str) -> Option<Arc<Bucket>> {
        self.by_id
            .get(id)
            .and_then(|&i| self.key_buckets.get(i))
            .cloned()
    }

    /// The role index of callers without a key.
    pub fn anonymous_role(&self) -> u16 {
        (self.roles.len() - 1) as u16
    }

    /// Number of roles including the anonymous one (visibility sets are built for each).
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// Who is calling. 401 for missing credentials, an unknown, wrong, expired or revoked key, or
    /// a token that fails validation; 403 for a valid token that grants no role. A key's message
    /// never tells a wrong secret from an unknown id.
    pub async fn authenticate(
        &self,
        cache: &AuthCache,
        creds: Credentials<'_>,
    ) -> Result<Authenticated, Denial> {
        cache.sync(self.generation);
        if !self.auth_required {
            return Ok(Authenticated {
                who: Principal {
                    key: None,
                    role: self.anonymous_role(),
                    owner: 0,
                },
                subject: None,
            });
        }
        match (creds.bearer, creds.api_key, &self.oauth) {
            (Some(token), _, Some(oauth)) if keys::key_id(token).is_none() => {
                self.authenticate_token(cache, oauth, token).await
            }
            (Some(key), _, _) | (None, Some(key), _) => self.authenticate_key(cache, key).await,
            (None, None, _) => {
                let how = match (self.keys.is_empty(), self.oauth.is_some()) {
                    (true, _) => "a bearer token is required (Authorization: Bearer <token>)",
                    (false, true) => "a bearer token or an API key is required (Authorization: Bearer <token>, or X-API-Key)",
                    (false, false) => "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                };
                Err(Denial {
                    error: Error::downstream(
                        ErrorKind::Unauthorized,
                        format!("Unauthorized: {how}"),
                    ),
                    challenge: Challenge::Missing,
                    key: None,
                    subject: None,
                })
            }
        }
    }

    async fn authenticate_token(
        &self,
        cache: &AuthCache,
        oauth: &oauth::Verifier,
        token: &str,
    ) -> Result<Authenticated, Denial> {
        match oauth.verify(&cache.tokens, token).await {
            Ok(g) => Ok(Authenticated {
                who: Principal {
                    key: None,
                    role: g.role,
                    owner: g.owner,
                },
                subject: Some(g.subject),
            }),
            Err(oauth::Refusal::Invalid(why)) => Err(Denial {
                error: Error::downstream(
                    ErrorKind::Unauthorized,
                    format!("Unauthorized: invalid token: {why}"),
                ),
                challenge: Challenge::Invalid(why),
                key: None,
                subject: None,
            }),
            Err(oauth::Refusal::NoRole { subject }) => Err(Denial {
                error: Error::downstream(
                    ErrorKind::NoAccess,
                    "Forbidden: the token's scopes grant no role on this gateway",
                ),
                challenge: Challenge::InsufficientScope,
                key: None,
                subject: Some(subject),
            }),
        }
    }

    async fn authenticate_key(
        &self,
        cache: &AuthCache,
        key: &str,
    ) -> Result<Authenticated, Denial> {
        let id = keys::key_id(key).map(str::to_owned);
        let refuse = |why: &'static str| Denial {
            error: Error::downstream(ErrorKind::Unauthorized, format!("Unauthorized: {why}")),
            challenge: Challenge::Invalid(why.into()),
            key: id.clone(),
            subject: None,
        };
        let Some(index) = id.as_deref().and_then(|id| self.by_id.get(id).copied()) else {
            return Err(refuse("invalid API key"));
        };
        let record = &self.keys[index];
        let digest = keys::digest(key);
        let ok = match cache.keys.get(&digest, index) {
            Some(ok) => ok,
            None => {
                let Ok(ok) = self.verify_off_shard(key, &record.phc).await else {
                    return Err(Denial {
                        error: Error::downstream(
                            ErrorKind::Overloaded,
                            "Service busy: too many API keys waiting to be verified; retry shortly",
                        ),
                        challenge: Challenge::Missing,
                        key: id.clone(),
                        subject: None,
                    });
                };
                // A reload may have started another generation meanwhile: then the index means
                // nothing to the cache.
                if cache.generation.get() == self.generation {
                    cache.keys.put(digest, index, ok);
                }
                ok
            }
        };
        if !ok {
            return Err(refuse("invalid API key"));
        }
        if record.revoked {
            return Err(refuse("this API key was revoked"));
        }
        if record.expires_at.is_some_and(|t| now_unix() >= t) {
            return Err(refuse("this API key has expired"));
        }
        Ok(Authenticated {
            who: Principal {
                key: Some(index as u32),
                role: record.role,
                owner: oauth::owner_of("key", &record.id),
            },
            subject: None,
        })
    }

    /// The `WWW-Authenticate` value for a refusal, for a request that came to `host`. With OAuth
    /// on it points at the protected resource metadata (MCP authorization, RFC 9728 §5.1).
    pub fn www_authenticate(&self, c: &Challenge, host: Option<&str>, https: bool) -> String {
        let Some(o) = &self.oauth else {
            return match c {
                Challenge::Invalid(why) => format!(
                    "Bearer realm=\"switchyard\", error=\"invalid_token\", error_description=\"{}\"",
                    oauth::quoted(why)
                ),
                _ => "Bearer realm=\"switchyard\"".into(),
            };
        };
        let meta = oauth::quoted(&o.metadata_url(host, https));
        let scope = oauth::quoted(&o.scopes());
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!(", scope=\"{scope}\"")
        };
        match c {
            Challenge::Missing => format!("Bearer resource_metadata=\"{meta}\"{scope}"),
            Challenge::Invalid(why) => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{meta}\"",
                oauth::quoted(why)
            ),
            Challenge::InsufficientScope => format!(
                "Bearer error=\"insufficient_scope\"{scope}, resource_metadata=\"{meta}\", error_description=\"the token grants no role on this gateway\""
            ),
        }
    }

    /// The verifier's verdict on `key`; `Err(Busy)` when its queue is full (never waits for room:
    /// a flood of wrong secrets must not queue without bound).
    async fn verify_off_shard(&self, key: &str, phc: &str) -> Result<bool, keys::Busy> {
        let Some(v) = &self.verifier else {
            return Ok(false);
        };
        let (tx, rx) = flume::bounded(1);
        match v.try_send(VerifyJob {
            key: key.to_owned(),
            phc: phc.to_owned(),
            reply: tx,
        }) {
            // A verifier that is gone gives no verdict: "busy" (503, nothing cached), never
            // "wrong" (which the failure cache would keep until a reload).
            Ok(()) => rx.recv_async().await.map_err(|_| keys::Busy),
            Err(flume::TrySendError::Full(_) | flume::TrySendError::Disconnected(_)) => {
                Err(keys::Busy)
            }
        }
    }

    /// A failed authentication from `ip` costs a token of that address's bucket (with
    /// `auth.ip_rate_per_s` set): `Err(wait)` when it had none left.
    pub fn charge_failure(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.ip_rate {
            Some(rate) => match self.ip_buckets.bucket(ip).charge(rate, self.epoch.now_ns()) {
                Verdict::Allow => Ok(()),
                Verdict::Deny { retry_after } => Err(retry_after),
            },
            None => Ok(()),
        }
    }

    /// Whether checking `creds` would cost an Argon2 verification: an API key of a known id that
    /// this shard has not yet seen verified good. Only such credentials wait behind an address's
    /// spent failure bucket: a key already verified here (a client behind the same NAT as a
    /// guesser), a token (a signature check, no oracle worth guessing at) or no credentials cost
    /// nothing to check.
    pub fn would_verify(&self, cache: &AuthCache, creds: Credentials<'_>) -> bool {
        if !self.auth_required {
            return false;
        }
        cache.sync(self.generation);
        let key = match (creds.bearer, creds.api_key, &self.oauth) {
            (Some(token), _, Some(_)) if keys::key_id(token).is_none() => return false,
            (Some(key), _, _) | (None, Some(key), _) => key,
            (None, None, _) => return false,
        };
        let Some(index) = keys::key_id(key).and_then(|id| self.by_id.get(id).copied()) else {
            return false;
        };
        cache.keys.get(&keys::digest(key), index) != Some(true)
    }

    /// Has `ip` spent its bucket (on failed authentications, with auth on)? Then its next
    /// credentials are not even verified: `Some(wait)`. Charges nothing.
    pub fn ip_exhausted(&self, ip: IpAddr) -> Option<Duration> {
        let rate = self.ip_rate.as_ref()?;
        match self.ip_buckets.bucket(ip).peek(rate, self.epoch.now_ns()) {
            Verdict::Allow => None,
            Verdict::Deny { retry_after } => Some(retry_after),
        }
    }

    /// Charge the caller's bucket: its key's (at the key's own rate, else its role's), its token
    /// subject's (rate from its role) or, anonymous, its IP's.
    pub fn charge(&self, p: &Principal, ip: IpAddr) -> Result<(), Duration> {
        let now = self.epoch.now_ns();
        let role_rate = self
            .roles
            .get(p.role as usize)
            .and_then(|r| r.rate.as_ref());
        let verdict = match (p.key, p.owner) {
            (Some(k), _) => {
                let rate = match self.keys.get(k as usize).and_then(|r| r.rate.as_ref()) {
                    Some(own) => own.as_ref(),
                    None => role_rate,
                };
                match (rate, self.key_buckets.get(k as usize)) {
                    (Some(rate), Some(bucket)) => bucket.charge(rate, now),
                    _ => Verdict::Allow,
                }
            }
            // A bearer token: its subject's bucket, at its role's rate.
            (None, owner) if owner != 0 => match role_rate {
                Some(rate) => self.owner_buckets.bucket(owner).charge(rate, now),
                None => Verdict::Allow,
            },
            (None, _) => match &self.ip_rate {
                Some(rate) => self.ip_buckets.bucket(ip).charge(rate, now),
                None => Verdict::Allow,
            },
        };
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Deny { retry_after } => Err(retry_after),
        }
    }

    /// May `role` use `name` (a tool or prompt name, or a resource URI) on `server`?
    pub fn visible(&self, role: u16, server: &config::Server, item: Item, name: &str) -> bool {
        self.refusal(role, server, item, name).is_none()
    }

    /// The rule that keeps `name` from `role` on `server`, for the audit line (never for the
    /// caller, to whom a hidden thing does not exist); `None` when the role may use it.
    pub fn refusal(
        &self,
        role: u16,
        server: &config::Server,
        item: Item,
        name: &str,
    ) -> Option<String> {
        let Some(r) = self.roles.get(role as usize) else {
            return Some(format!("unknown role #{role}"));
        };
        let anonymous = role == self.anonymous_role();
        if !anonymous
            && server
                .allowed_roles
                .as_ref()
                .is_some_and(|allowed| !allowed.contains(&r.name))
        {
            return Some(format!(
                "role {:?} is not in server {:?}'s allowed_roles",
                r.name, server.name
            ));
        }
        if item == Item::Tool {
            if !server.allowed_tools.is_empty() && !glob::any(&server.allowed_tools, name) {
                return Some(format!(
                    "tool {name:?} matches none of server {:?}'s allowed_tools",
                    server.name
                ));
            }
            if let Some(g) = glob::first(&server.blocked_tools, name) {
                return Some(format!(
                    "server {:?}'s blocked_tools glob {g:?}",
                    server.name
                ));
            }
        }
        let (allowed, blocked, kind) = match item {
            Item::Tool => (&r.rules.allowed_tools, &r.rules.blocked_tools, "tools"),
            Item::Prompt => (
                &r.rules.allowed_prompts,
                &r.rules.blocked_prompts,
                "prompts",
            ),
            Item::Resource => (
                &r.rules.allowed_resources,
                &r.rules.blocked_resources,
                "resources",
            ),
        };
        let path = format!("{}/{name}", server.name);
        if !glob::any(allowed, &path) {
            return Some(format!(
                "{path:?} matches none of role {:?}'s allowed_{kind}",
                r.name
            ));
        }
        glob::first(blocked, &path)
            .map(|g| format!("role {:?}'s blocked_{kind} glob {g:?}", r.name))
    }

    pub fn role_name(&self, role: u16) -> &str {
        self.roles
            .get(role as usize)
            .map_or("?", |r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests;
