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
        }
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
        }
    }
}
