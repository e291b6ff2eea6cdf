//! Integrity protection of 2026-07-28 `requestState` crossing the gateway. An upstream's state goes
//! to the client sealed: `sy1.<state, base64url>.<HMAC-SHA256 tag, base64url>`, the tag binding it
//! to the upstream, the method and name it was issued for, and the caller's key. A retry's state is
//! opened and checked before anything reaches the upstream, so a client cannot forge or edit a state,
//! nor replay it against another server, tool or key; a tampered one is refused as invalid params.
//!
//! The key is `gateway.state_key` (so several gateways, or a restarted one, accept each other's
//! states) or 32 random bytes per process.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

pub struct StateKey(hmac::Key);

/// Where a state was issued: what its tag binds.
pub struct Binding<'a> {
    pub upstream: u16,
    pub method: &'a str,
    pub name: &'a str,
    pub key: Option<u32>,
}

impl StateKey {
    /// From the configured secret, or random when there is none.
    pub fn new(secret: Option<&str>) -> Result<StateKey, String> {
        let bytes = match secret {
            Some(s) if s.len() >= 32 => s.as_bytes().to_vec(),
            Some(_) => return Err("gateway.state_key must be at least 32 characters".into()),
            None => {
                let mut b = vec![0u8; 32];
                getrandom::fill(&mut b)
                    .map_err(|e| format!("no randomness for the state key: {e}"))?;
                b
            }
        };
        Ok(StateKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    fn message(b: &Binding<'_>, state: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(64 + b.method.len() + b.name.len() + state.len());
        m.extend_from_slice(b"switchyard-request-state-v1\0");
        m.extend_from_slice(&b.upstream.to_be_bytes());
        m.extend_from_slice(&b.key.map_or(u64::MAX, u64::from).to_be_bytes());
        for part in [b.method, b.name] {
            m.extend_from_slice(&(part.len() as u64).to_be_bytes());
            m.extend_from_slice(part.as_bytes());
        }
        m.extend_from_slice(state);
        m
    }

    /// The HMAC-SHA256 tag of `message` under this key. Other tamper-checked tokens the gateway
    /// hands out (list cursors) use it too, each with its own domain prefix in `message`.
    pub fn tag(&self, message: &[u8]) -> hmac::Tag {
        hmac::sign(&self.0, message)
    }

    /// Whether `tag` is this key's tag of `message` (compared in constant time by ring).
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, message, tag).is_ok()
    }

    pub fn seal(&self, b: &Binding<'_>, state: &str) -> String {
        let tag = self.tag(&Self::message(b, state.as_bytes()));
        format!(
            "sy1.{}.{}",
            URL_SAFE_NO_PAD.encode(state),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The upstream's state, when `sealed` is one of ours for exactly this binding.
    pub fn open(&self, b: &Binding<'_>, sealed: &str) -> Option<String> {
        let rest = sealed.strip_prefix("sy1.")?;
        let (state, tag) = rest.split_once('.')?;
        let state = URL_SAFE_NO_PAD.decode(state).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !self.verify(&Self::message(b, &state), &tag) {
            return None;
        }
        String::from_utf8(state).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_refuse_tampering() {
        let k = StateKey::new(None).unwrap();
        let b = Binding {
            upstream: 2,
            method: "tools/call",
            name: "book",
            key: Some(7),
        };
        let sealed = k.seal(&b, "opaque-upstream-state");
        assert_eq!(
            k.open(&b, &sealed).as_deref(),
            Some("opaque-upstream-state")
        );
        let other_tool = Binding {
            name: "cancel",
            ..b
        };
        assert!(k.open(&other_tool, &sealed).is_none());
        let b = Binding {
            upstream: 2,
            method: "tools/call",
            name: "book",
            key: Some(7),
        };
        let other_key = Binding { key: Some(8), ..b };
        assert!(k.open(&other_key, &sealed).is_none());
        let mut edited = sealed.clone().into_bytes();
        edited[6] ^= 1;
        assert!(k.open(&b, &String::from_utf8_lossy(&edited)).is_none());
        assert!(k.open(&b, "opaque-upstream-state").is_none());
        assert!(StateKey::new(Some("short")).is_err());
        let shared = StateKey::new(Some("0123456789abcdef0123456789abcdef")).unwrap();
        let again = StateKey::new(Some("0123456789abcdef0123456789abcdef")).unwrap();
        assert_eq!(again.open(&b, &shared.seal(&b, "s")).as_deref(), Some("s"));
    }
}
