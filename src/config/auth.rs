//! The security part of the configuration: API keys (Argon2id PHC hashes, inline or in a keys
//! file), roles with their globs and rate limits, and the per-IP limit for clients without a key.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// API keys; when there is at least one (here or in `keys_file`), every MCP request needs one.
    pub keys: Vec<Spanned<KeyEntry>>,
    /// A TOML file of `[[keys]]` entries (relative to the config's folder).
    pub keys_file: Option<Spanned<String>>,
    /// Serve without keys on a non-loopback listener (refused unless set).
    pub allow_unauthenticated: bool,
    /// The role a `switchyard stdio` client acts as when it presents no key (stdio has no
    /// headers; a key comes from `SWITCHYARD_API_KEY`). Unset: with keys configured, stdio
    /// needs one.
    pub stdio_role: Option<Spanned<String>>,
    /// Sustained requests per second per client IP for requests without a key (0 = no limit).
    pub ip_rate_per_s: f64,
    pub ip_burst: u32,
    /// OAuth 2.1 bearer tokens (JWTs), accepted alongside API keys.
    pub oauth: Option<OAuth>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            keys: Vec::new(),
            keys_file: None,
            allow_unauthenticated: false,
            stdio_role: None,
            ip_rate_per_s: 0.0,
            ip_burst: 50,
            oauth: None,
        }
    }
}

/// The gateway as an OAuth 2.1 resource server: it accepts JWT access tokens that one issuer signed
/// for this gateway's audience and maps their scopes (or a claim) to a role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth {
    /// The `iss` every token must carry: the authorization server's issuer identifier.
    pub issuer: String,
    /// Accepted `aud` values (a string or a list); default: `resource`.
    #[serde(default)]
    pub audience: OneOrMany,
    /// This gateway's canonical resource URI (e.g. `https://mcp.example.com/mcp`), as clients name
    /// it to the authorization server; default: `http(s)://<Host header>/mcp` per request.
    pub resource: Option<String>,
    /// Where clients get tokens, for the protected resource metadata; default: `[issuer]`.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The issuer's keys as a JWKS file (relative to the config's folder) …
    pub jwks_file: Option<String>,
    /// … or fetched from this URL (http or https) on a background thread.
    pub jwks_url: Option<String>,
    /// PEM roots to trust for an https `jwks_url` instead of the public web PKI.
    pub jwks_ca_file: Option<String>,
    /// How often the JWKS is fetched (or the file re-read).
    #[serde(default = "jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// A token naming an unknown `kid` triggers a fetch, at most once per this many seconds.
    #[serde(default = "jwks_min_refetch_s")]
    pub jwks_min_refetch_s: u64,
    /// Accepted signature algorithms; HS* and `none` are refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "leeway_s")]
    pub leeway_s: u64,
    /// A claim whose value (a string or a list) names the role, through `roles` when listed there,
    /// else directly; default: the scopes (`scope`, or `scp`) through `roles`.
    pub role_claim: Option<String>,
    /// Scope (or `role_claim` value) → role name. When a token carries several, the entry listed
    /// first here wins.
    #[serde(default)]
    pub roles: RoleMap,
    /// Scopes advertised in the metadata and in challenges; default: the keys of `roles`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

fn jwks_refresh_s() -> u64 {
    300
}

fn jwks_min_refetch_s() -> u64 {
    10
}

fn leeway_s() -> u64 {
    60
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(s) => OneOrMany(vec![s]),
            Raw::Many(v) => OneOrMany(v),
        })
    }
}

/// A table of string → string kept in the order it was written (first listed wins).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoleMap(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for RoleMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RoleMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of scope = \"role\"")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RoleMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(RoleMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One API key, stored only as a hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The key's public id: the part of the key between `sy_` and the second `_`.
    pub id: String,
    /// Argon2id PHC string of the whole key.
    pub hash: String,
    pub role: String,
    #[serde(default)]
    pub description: String,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`; the key stops working then.
    pub expires: Option<String>,
    /// Revoked keys stay listed (for the audit trail) and never authenticate.
    #[serde(default)]
    pub revoked: bool,
    /// This key's sustained requests per second, instead of its role's (0 = no limit).
    pub rate_per_s: Option<f64>,
    /// This key's burst, instead of its role's.
    pub burst: Option<u32>,
}

/// A keys file: `[[keys]]` entries only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeysFile {
    #[serde(default)]
    pub keys: Vec<Spanned<KeyEntry>>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

/// What a role may use and how fast. Globs match `server/name` (tools, prompts) or `server/uri`
/// (resources); `*` is any run of characters, `?` one character.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Role {
    pub allowed_tools: Vec<String>,
    pub blocked_tools: Vec<String>,
    pub allowed_prompts: Vec<String>,
    pub blocked_prompts: Vec<String>,
    pub allowed_resources: Vec<String>,
    pub blocked_resources: Vec<String>,
    /// Sustained requests per second per key of this role (0 = no limit).
    pub rate_per_s: f64,
    pub burst: u32,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            allowed_tools: everything(),
            blocked_tools: Vec::new(),
            allowed_prompts: everything(),
            blocked_prompts: Vec::new(),
            allowed_resources: everything(),
            blocked_resources: Vec::new(),
            rate_per_s: 0.0,
            burst: 20,
        }
    }
}

impl Role {
    /// Same globs (what the role sees), whatever the rates.
    pub fn same_globs(&self, o: &Role) -> bool {
        self.allowed_tools == o.allowed_tools
            && self.blocked_tools == o.blocked_tools
            && self.allowed_prompts == o.allowed_prompts
            && self.blocked_prompts == o.blocked_prompts
            && self.allowed_resources == o.allowed_resources
            && self.blocked_resources == o.blocked_resources
    }
}

pub type Roles = BTreeMap<String, Role>;

/// Seconds since the Unix epoch for `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_utc(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = match time {
        Some(t) => {
            let mut p = t.split(':').map(|p| p.parse::<i64>().ok());
            let (h, mi, se) = (p.next()??, p.next()??, p.next()??);
            if p.next().is_some() || h > 23 || mi > 59 || se > 60 {
                return None;
            }
            h * 3600 + mi * 60 + se
        }
        None => 0,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(parse_utc("2026-11-24"), Some(1_795_478_400));
        assert_eq!(parse_utc("2000-03-01T01:02:03Z"), Some(951_872_523));
        assert_eq!(parse_utc("2026-13-01"), None);
        assert_eq!(parse_utc("2026-11-24T10:00:00"), None);
        assert_eq!(parse_utc("tomorrow"), None);
    }

    #[test]
    fn role_map_keeps_the_written_order() {
        #[derive(Deserialize)]
        struct T {
            roles: RoleMap,
            aud: OneOrMany,
        }
        let t: T = toml::from_str(
            "aud = \"x\"\n[roles]\n\"mcp:write\" = \"writer\"\n\"mcp:admin\" = \"admin\"\n\"a\" = \"reader\"\n",
        )
        .unwrap();
        let keys: Vec<&str> = t.roles.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["mcp:write", "mcp:admin", "a"]);
        assert_eq!(t.aud.0, ["x"]);
    }
}

/// When an audit line is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// fsync every `fsync_interval_ms`: a crash may lose the last interval's lines.
    #[default]
    Batched,
    /// The line is written and fsynced before the response leaves.
    Strict,
}

/// The audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    pub enabled: bool,
    /// JSON Lines file (relative to the config's folder); rotated files get `.1`, `.2`, …
    pub path: String,
    pub durability: Durability,
    pub fsync_interval_ms: u64,
    /// Rotate when the file reaches this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// Events each shard may have queued before its requests wait (back pressure, never loss).
    pub queue: usize,
    /// Put each tools/call's `arguments` in its line (the first 4 KB; off by default: arguments
    /// may carry secrets and personal data).
    pub include_arguments: bool,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: false,
            path: "switchyard-audit.jsonl".into(),
            durability: Durability::Batched,
            fsync_interval_ms: 100,
            max_bytes: 100 << 20,
            keep: 5,
            queue: 16_384,
            include_arguments: false,
        }
    }
}
