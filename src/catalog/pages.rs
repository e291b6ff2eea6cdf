//! One role's merged list, serialized once so that any page of it is a copy of bytes, and its
//! 2026-07-28 caching hint (`ttlMs`, `cacheScope`) computed from what the upstreams said about
//! their own lists.
//!
//! The hint of a merged list is only as fresh and as shareable as its least fresh, least shareable
//! part: `ttlMs` is the smallest of the parts' ttls, `cacheScope` is `public` only when every part
//! said `public` and the gateway does not filter by caller (auth off). A legacy upstream says
//! nothing: its part counts as private, with the configured `gateway.list_ttl_ms`. While a
//! configured upstream has not yet listed anything the list is about to change: ttl 0.

use bytes::Bytes;
use serde_json::Value;

/// A caching hint: how long a result may be considered fresh, and whether shared caches may keep
/// it for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub ttl_ms: u64,
    pub public: bool,
}

impl Hint {
    /// The safe hint: stale at once, for this authorization context only.
    pub const NONE: Hint = Hint {
        ttl_ms: 0,
        public: false,
    };

    /// What a 2026-07-28 result says about itself: an absent or negative `ttlMs` is 0, an absent
    /// or unknown `cacheScope` is private (spec, server/utilities/caching).
    pub fn of_result(result: &Value) -> Hint {
        Hint {
            ttl_ms: result.get("ttlMs").and_then(Value::as_u64).unwrap_or(0),
            public: result.get("cacheScope").and_then(Value::as_str) == Some("public"),
        }
    }

    /// The hint of a whole made of `self` and `other`.
    pub fn and(self, other: Hint) -> Hint {
        Hint {
            ttl_ms: self.ttl_ms.min(other.ttl_ms),
            public: self.public && other.public,
        }
    }

    fn scope(self) -> &'static str {
        if self.public {
            "public"
        } else {
            "private"
        }
    }
}

/// What an upstream said about one of its lists when it was fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Said {
    /// It does not offer this list.
    #[default]
    NotOffered,
    /// A legacy server: lists carry no hints.
    Silent,
    /// A 2026-07-28 server's hint (over all pages of the list).
    Hint(Hint),
}

impl Said {
    /// Fold in one more page of the same list.
    pub fn and_page(self, page: Hint) -> Said {
        match self {
            Said::Hint(h) => Said::Hint(h.and(page)),
            _ => Said::Hint(page),
        }
    }
}

/// How the gateway turns what the upstreams said into the hints of its merged lists (the default:
/// legacy parts stale at once, never public).
#[derive(Debug, Clone, Copy, Default)]
pub struct HintRules {
    /// The ttl a legacy upstream's part gets (`gateway.list_ttl_ms`).
    pub legacy_ttl_ms: u64,
    /// No caller-dependent filtering: every caller gets the same lists (auth off). Only then may a
    /// merged list be `public`.
    pub shared: bool,
}

impl HintRules {
    /// The hint of a list merged from parts that said `said` (parts that do not offer it are
    /// skipped); `settled` when every configured upstream has listed at least once.
    pub fn merge(&self, said: impl IntoIterator<Item = Said>, settled: bool) -> Hint {
        let parts = said.into_iter().filter_map(|s| match s {
            Said::NotOffered => None,
            Said::Silent => Some(Hint {
                ttl_ms: self.legacy_ttl_ms,
                public: false,
            }),
            Said::Hint(h) => Some(h),
        });
        // A list nobody offers is empty and stays so: the configured ttl.
        let hint = parts.reduce(Hint::and).unwrap_or(Hint {
            ttl_ms: self.legacy_ttl_ms,
            public: true,
        });
        Hint {
            ttl_ms: if settled { hint.ttl_ms } else { 0 },
            public: hint.public && self.shared,
        }
    }
}

/// One list as one role sees it: its entries serialized once, where each entry ends, its hint,
/// and a digest of its content (what a cursor is bound to).
#[derive(Debug, Clone)]
pub struct ListBody {
    key: &'static str,
    /// The entries, comma-separated, without brackets.
    items: Bytes,
    /// `ends[i]`: the offset in `items` just past entry `i`.
    ends: Vec<u32>,
    pub hint: Hint,
    digest: [u8; 8],
}

impl Default for ListBody {
    fn default() -> Self {
        ListBody::new("tools", &[], Hint::NONE)
    }
}

impl ListBody {
    /// `key` is the result's array member (`tools`, `prompts`, `resources`, `resourceTemplates`).
    pub fn new(key: &'static str, entries: &[Value], hint: Hint) -> ListBody {
        let mut items = Vec::new();
        let mut ends = Vec::with_capacity(entries.len());
        for e in entries {
            if !items.is_empty() {
                items.push(b',');
            }
            // Serializing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut items, e);
            ends.push(items.len() as u32);
        }
        let d = ring::digest::digest(&ring::digest::SHA256, &items);
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&d.as_ref()[..8]);
        ListBody {
            key,
            items: Bytes::from(items),
            ends,
            hint,
            digest,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all the entries (to size a response).
    pub fn bytes_hint(&self) -> usize {
        self.items.len()
    }

    /// A digest of the entries (not of the hint): equal digests, equal lists.
    pub fn digest(&self) -> [u8; 8] {
        self.digest
    }

    /// Same entries (what list_changed notifications are about).
    pub fn same_entries(&self, other: &ListBody) -> bool {
        self.items == other.items
    }

    /// The result object holding entries `from..to` (clamped to the list), with `nextCursor` when
    /// given; in the 2026-07-28 shape (`resultType`, hints) when `modern`.
    pub fn page(&self, modern: bool, from: usize, to: usize, next: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_page(&mut out, modern, from, to, next);
        out
    }

    /// `page`, appended to `out` (the response being written: one copy of the entries).
    pub fn write_page(
        &self,
        out: &mut Vec<u8>,
        modern: bool,
        from: usize,
        to: usize,
        next: Option<&str>,
    ) {
        let to = to.min(self.len());
        let from = from.min(to);
        let start = match from {
            0 => 0,
            // Past the comma that follows entry `from - 1`.
            n => self.ends[n - 1] as usize + 1,
        };
        let end = match to {
            0 => 0,
            n => self.ends[n - 1] as usize,
        };
        let entries = self.items.get(start..end).unwrap_or_default();
        out.reserve(entries.len() + self.key.len() + 160);
        out.push(b'{');
        if modern {
            out.extend_from_slice(b"\"resultType\":\"complete\",");
        }
        out.push(b'"');
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(b"\":[");
        out.extend_from_slice(entries);
        out.push(b']');
        if let Some(c) = next {
            out.extend_from_slice(b",\"nextCursor\":");
            // Cursors are base64url and dots; quoting through serde keeps that an invariant of
            // this function rather than of its callers.
            let _ = serde_json::to_writer(&mut *out, c);
        }
        if modern {
            out.extend_from_slice(b",\"ttlMs\":");
            out.extend_from_slice(self.hint.ttl_ms.to_string().as_bytes());
            out.extend_from_slice(b",\"cacheScope\":\"");
            out.extend_from_slice(self.hint.scope().as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }

    /// The whole list as one result.
    pub fn whole(&self, modern: bool) -> Vec<u8> {
        self.page(modern, 0, self.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "name": format!("t{i}"), "d": "a,b]" }))
            .collect()
    }

    #[test]
    fn pages_are_slices_of_the_whole() {
        let body = ListBody::new("tools", &entries(5), Hint::NONE);
        let whole: Value = serde_json::from_slice(&body.whole(false)).unwrap();
        assert_eq!(whole, json!({ "tools": entries(5) }));
        let mut seen = Vec::new();
        for from in (0..5).step_by(2) {
            let next = (from + 2 < 5).then_some("c");
            let p: Value = serde_json::from_slice(&body.page(true, from, from + 2, next)).unwrap();
            assert_eq!(p["resultType"], "complete");
            assert_eq!(p["ttlMs"], 0);
            assert_eq!(p["cacheScope"], "private");
            assert_eq!(p.get("nextCursor").is_some(), next.is_some());
            seen.extend(p["tools"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(seen, entries(5));
        // Out of range is empty, never a panic.
        let p: Value = serde_json::from_slice(&body.page(false, 9, 20, None)).unwrap();
        assert_eq!(p, json!({ "tools": [] }));
        let empty = ListBody::new("prompts", &[], Hint::NONE);
        let p: Value = serde_json::from_slice(&empty.whole(true)).unwrap();
        assert_eq!(p["prompts"], json!([]));
    }

    #[test]
    fn the_digest_follows_the_entries_only() {
        let a = ListBody::new("tools", &entries(3), Hint::NONE);
        let b = ListBody::new(
            "tools",
            &entries(3),
            Hint {
                ttl_ms: 5,
                public: true,
            },
        );
        let c = ListBody::new("tools", &entries(4), Hint::NONE);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert!(a.same_entries(&b) && !a.same_entries(&c));
    }

    #[test]
    fn merged_hints_take_the_least_fresh_and_least_shareable_part() {
        let public = |ttl_ms| {
            Said::Hint(Hint {
                ttl_ms,
                public: true,
            })
        };
        let open = HintRules {
            legacy_ttl_ms: 60_000,
            shared: true,
        };
        // All modern and public, auth off: public, the smaller ttl.
        let h = open.merge([public(300_000), Said::NotOffered, public(5_000)], true);
        assert_eq!((h.ttl_ms, h.public), (5_000, true));
        // A legacy part: private, and the configured ttl counts.
        let h = open.merge([public(300_000), Said::Silent], true);
        assert_eq!((h.ttl_ms, h.public), (60_000, false));
        // A private part.
        let private = Said::Hint(Hint {
            ttl_ms: 900_000,
            public: false,
        });
        let h = open.merge([public(300_000), private], true);
        assert_eq!((h.ttl_ms, h.public), (300_000, false));
        // Auth on: never public.
        let closed = HintRules {
            shared: false,
            ..open
        };
        assert!(!closed.merge([public(1)], true).public);
        // Nobody offers it: the configured ttl.
        assert_eq!(open.merge([Said::NotOffered], true).ttl_ms, 60_000);
        // An upstream still to list: stale at once.
        assert_eq!(open.merge([public(300_000)], false).ttl_ms, 0);
        // Pages of one upstream's list fold the same way.
        let s = Said::NotOffered
            .and_page(Hint {
                ttl_ms: 10,
                public: true,
            })
            .and_page(Hint {
                ttl_ms: 20,
                public: false,
            });
        assert_eq!(
            s,
            Said::Hint(Hint {
                ttl_ms: 10,
                public: false
            })
        );
        assert_eq!(
            Hint::of_result(&json!({"ttlMs": -5, "cacheScope": "weird"})),
            Hint::NONE
        );
    }
}
