//! Collision-free public names: `<server><sep><name>`, within `[A-Za-z0-9_.-]` and 64 characters,
//! shortened deterministically with a hash of the full name when needed.

use sha2::{Digest, Sha256};

use crate::config::{public_name_byte, Naming, NamingPolicy};

/// Longest public name.
pub const MAX_NAME: usize = 64;

/// Replace bytes outside the allowed set with `_`.
fn sanitize(s: &str) -> String {
    s.bytes()
        .map(|b| if public_name_byte(b) { b as char } else { '_' })
        .collect()
}

fn hash8(server: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(server.as_bytes());
    h.update([0u8]);
    h.update(name.as_bytes());
    let d = h.finalize();
    format!("{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// How a catalog names things: the configured policy, and the names the gateway keeps for its own
/// tools (the meta-tools, in meta-tool mode) so that no upstream tool hides behind one.
#[derive(Debug, Clone, Copy)]
pub struct NameRules<'a> {
    pub naming: &'a Naming,
    pub reserved: &'a [&'a str],
}

/// The public name of `name` on `server`. `bare_ok` says no other server has this name (used by the
/// prefix-on-collision policy); `taken` reports names already handed out or reserved, to break any
/// clash: a bare name that is taken becomes the prefixed one, a prefixed one that is taken gets a
/// hash.
pub fn public_name(
    server: &str,
    name: &str,
    naming: &Naming,
    bare_ok: bool,
    taken: &dyn Fn(&str) -> bool,
) -> String {
    let clean = sanitize(name);
    let bare = naming.policy == NamingPolicy::PrefixOnCollision && bare_ok && !taken(&clean);
    let candidate = if bare {
        clean
    } else {
        format!("{server}{}{clean}", naming.separator)
    };
    if candidate.len() <= MAX_NAME && !taken(&candidate) {
        return candidate;
    }
    // Shorten (or disambiguate) with a hash of the exact original.
    let suffix = hash8(server, name);
    let keep = MAX_NAME - 1 - suffix.len();
    let mut head = candidate;
    head.truncate(keep);
    format!("{head}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(policy: NamingPolicy) -> Naming {
        Naming {
            separator: "__".into(),
            policy,
        }
    }

    #[test]
    fn prefix_sanitize_and_shorten() {
        let n = naming(NamingPolicy::Prefix);
        let none = |_: &str| false;
        assert_eq!(
            public_name("everything", "echo", &n, true, &none),
            "everything__echo"
        );
        assert_eq!(
            public_name("fs", "read file/x", &n, true, &none),
            "fs__read_file_x"
        );
        let long = "a".repeat(100);
        let p = public_name("srv", &long, &n, true, &none);
        assert_eq!(p.len(), MAX_NAME);
        assert_eq!(
            p,
            public_name("srv", &long, &n, true, &none),
            "deterministic"
        );
        assert_ne!(p, public_name("srv", &"a".repeat(101), &n, true, &none));
        assert!(p.bytes().all(public_name_byte));
    }

    #[test]
    fn collisions_get_a_hash() {
        let n = naming(NamingPolicy::Prefix);
        let taken = |s: &str| s == "fs__a_b";
        let p = public_name("fs", "a b", &n, true, &taken);
        assert!(
            p.starts_with("fs__a_b-") && p.len() == "fs__a_b-".len() + 8,
            "{p}"
        );
        let n = naming(NamingPolicy::PrefixOnCollision);
        assert_eq!(public_name("fs", "read", &n, true, &|_| false), "read");
        assert_eq!(public_name("fs", "read", &n, false, &|_| false), "fs__read");
        // A bare name already handed out (or reserved) falls back to the prefixed one.
        let taken = |s: &str| s == "call_tool";
        assert_eq!(
            public_name("fs", "call_tool", &n, true, &taken),
            "fs__call_tool"
        );
        assert_eq!(
            public_name("fs", "call tool", &n, true, &taken),
            "fs__call_tool"
        );
    }
}
