//! Who may call what, and how often: API keys (stored hashed, verified once per shard), roles and
//! their globs, per-server allow/block rules, and the lock-free rate limiter.
//!
//! Globs are evaluated when the catalog is built (`visible`), producing per-role visibility sets;
//! a request checks a bit. Requests without a key belong to the anonymous role, which exists only
//! when no key is configured (auth off), and sees everything the servers allow.

pub mod cidr;
pub mod glob;
pub mod keys;
pub mod limiter;

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;

use crate::config::{self, Config};
use crate::error::{Error, ErrorKind};
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
    /// Index into `Policy::keys`; `None` for an anonymous caller.
    pub key: Option<u32>,
    /// Index into the roles; `Policy::anonymous_role()` for an anonymous caller.
    pub role: u16,
}

pub struct Policy {
    pub keys: Vec<KeyRecord>,
    by_id: HashMap<String, usize>,
    pub roles: Vec<RoleRules>,
    pub auth_required: bool,
    epoch: Epoch,
    key_buckets: Vec<Bucket>,
    ip_rate: Option<Rate>,
    ip_buckets: IpBuckets,
    verifier: Option<flume::Sender<VerifyJob>>,
    /// Client networks allowed to connect; empty = any.
    pub networks: Vec<cidr::Cidr>,
    /// `auth.stdio_role`: the role of a stdio client that presents no key.
    pub stdio_role: Option<u16>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Policy {
    /// Compile the security part of a config. Refuses to serve without keys on a non-loopback
    /// listener unless `auth.allow_unauthenticated` says so.
    pub fn compile(config: &Config) -> Result<Policy, String> {
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
            keys.push(KeyRecord {
                id: k.id.clone(),
                phc: k.hash.clone(),
                role,
                expires_at: k.expires.as_deref().and_then(config::parse_utc),
                revoked: k.revoked,
            });
        }
        let stdio_role = match &config.auth.stdio_role {
            Some(r) => Some(
                role_of(r.get_ref())
                    .ok_or_else(|| format!("auth.stdio_role: unknown role {:?}", r.get_ref()))?,
            ),
            None => None,
        };
        let auth_required = !keys.is_empty();
        let listen = config.gateway.listen_addr();
        if !auth_required && !listen.ip().is_loopback() && !config.auth.allow_unauthenticated {
            return Err(format!(
                "{}: no API keys are configured and the gateway listens on {listen}, which is not loopback; add [[auth.keys]] or set auth.allow_unauthenticated = true",
                config.path.display()
            ));
        }
        let verifier = if auth_required {
            Some(
                keys::start_verifiers(1)
                    .map_err(|e| format!("cannot start the key verifier: {e}"))?,
            )
        } else {
            None
        };
        Ok(Policy {
            by_id: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.id.clone(), i))
                .collect(),
            key_buckets: keys.iter().map(|_| Bucket::default()).collect(),
            keys,
            roles,
            auth_required,
            epoch: Epoch::default(),
            ip_rate: Rate::new(config.auth.ip_rate_per_s, config.auth.ip_burst),
            ip_buckets: IpBuckets::new(4096),
            verifier,
            networks: config
                .gateway
                .allowed_networks
                .iter()
                .filter_map(|n| cidr::Cidr::parse(n))
                .collect(),
            stdio_role,
        })
    }

    /// The role index of callers without a key.
    pub fn anonymous_role(&self) -> u16 {
        (self.roles.len() - 1) as u16
    }

    /// Number of roles including the anonymous one (visibility sets are built for each).
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// Who is calling. 401 for a missing, unknown, wrong, expired or revoked key; the message says
    /// which, except that it never tells a wrong secret from an unknown id.
    pub async fn authenticate(
        &self,
        cache: &KeyCache,
        presented: Option<&str>,
    ) -> Result<Principal, Error> {
        let unauthorized = |why: &'static str| Error::downstream(ErrorKind::Unauthorized, why);
        if !self.auth_required {
            return Ok(Principal {
                key: None,
                role: self.anonymous_role(),
            });
        }
        let Some(key) = presented else {
            return Err(unauthorized(
                "Unauthorized: an API key is required (Authorization: Bearer <key> or X-API-Key)",
            ));
        };
        let Some(index) = keys::key_id(key).and_then(|id| self.by_id.get(id).copied()) else {
            return Err(unauthorized("Unauthorized: invalid API key"));
        };
        let record = &self.keys[index];
        let digest = keys::digest(key);
        let ok = match cache.get(&digest, index) {
            Some(ok) => ok,
            None => {
                let ok = self.verify_off_shard(key, &record.phc).await;
                cache.put(digest, index, ok);
                ok
            }
        };
        if !ok {
            return Err(unauthorized("Unauthorized: invalid API key"));
        }
        if record.revoked {
            return Err(unauthorized("Unauthorized: this API key was revoked"));
        }
        if record.expires_at.is_some_and(|t| now_unix() >= t) {
            return Err(unauthorized("Unauthorized: this API key has expired"));
        }
        Ok(Principal {
            key: Some(index as u32),
            role: record.role,
        })
    }

    async fn verify_off_shard(&self, key: &str, phc: &str) -> bool {
        let Some(v) = &self.verifier else {
            return false;
        };
        let (tx, rx) = flume::bounded(1);
        if v.send(VerifyJob {
            key: key.to_owned(),
            phc: phc.to_owned(),
            reply: tx,
        })
        .is_err()
        {
            return false;
        }
        rx.recv_async().await.unwrap_or(false)
    }

    /// Charge the caller's bucket: its key's (rate from its role) or, without a key, its IP's.
    pub fn charge(&self, p: &Principal, ip: IpAddr) -> Result<(), Duration> {
        let now = self.epoch.now_ns();
        let verdict = match p.key {
            Some(k) => match (
                self.roles
                    .get(p.role as usize)
                    .and_then(|r| r.rate.as_ref()),
                self.key_buckets.get(k as usize),
            ) {
                (Some(rate), Some(bucket)) => bucket.charge(rate, now),
                _ => Verdict::Allow,
            },
            None => match &self.ip_rate {
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
        let Some(r) = self.roles.get(role as usize) else {
            return false;
        };
        let anonymous = role == self.anonymous_role();
        if !anonymous
            && server
                .allowed_roles
                .as_ref()
                .is_some_and(|allowed| !allowed.contains(&r.name))
        {
            return false;
        }
        if item == Item::Tool {
            if !server.allowed_tools.is_empty() && !glob::any(&server.allowed_tools, name) {
                return false;
            }
            if glob::any(&server.blocked_tools, name) {
                return false;
            }
        }
        let (allowed, blocked) = match item {
            Item::Tool => (&r.rules.allowed_tools, &r.rules.blocked_tools),
            Item::Prompt => (&r.rules.allowed_prompts, &r.rules.blocked_prompts),
            Item::Resource => (&r.rules.allowed_resources, &r.rules.blocked_resources),
        };
        let path = format!("{}/{name}", server.name);
        glob::any(allowed, &path) && !glob::any(blocked, &path)
    }

    pub fn role_name(&self, role: u16) -> &str {
        self.roles
            .get(role as usize)
            .map_or("?", |r| r.name.as_str())
    }
}

#[cfg(test)]
mod tests;
