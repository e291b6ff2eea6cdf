//! API keys: their format, minting (`switchyard keys new`), and verification.
//!
//! A key reads `sy_<id>_<secret>`: the id names the config entry (so a presented key is checked
//! against one hash, not all of them) and the secret carries 190 random bits. Only the Argon2id PHC
//! hash of the whole key is stored. Argon2 is deliberately slow (tens of ms), so it runs on a
//! verifier thread, never on a shard, and at most once per key per shard: a shard-local cache keyed
//! by the SHA-256 of the presented key remembers the verdict, compared in constant time.
//!
//! Against floods of wrong secrets: the verifier's queue is bounded (a full queue is answered 503,
//! `Busy`), and failures are remembered apart from successes in a small cache of their own, so
//! they can never push a good key out.

use std::cell::RefCell;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use hashbrown::HashMap;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A newly minted key and the hash to store.
pub struct NewKey {
    pub id: String,
    pub key: String,
    pub hash: String,
}

fn random_chars(n: usize) -> Result<String, String> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
        // Rejection sampling keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// Mint a key: 8-character id, 32-character secret (≈190 bits), Argon2id hash with default params.
pub fn mint() -> Result<NewKey, String> {
    let id = random_chars(8)?;
    let key = format!("sy_{id}_{}", random_chars(32)?);
    let hash = Argon2::default()
        .hash_password(key.as_bytes())
        .map_err(|e| format!("hashing failed: {e}"))?
        .to_string();
    Ok(NewKey { id, key, hash })
}

/// The id part of a presented key, when it has the switchyard shape.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("sy_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some(id)
}

/// Check `key` against a PHC hash (slow: run it on the verifier thread).
pub fn verify(key: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(key.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

pub type Digest32 = [u8; 32];

pub fn digest(key: &str) -> Digest32 {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of two digests.
pub fn ct_eq(a: &Digest32, b: &Digest32) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A job for the verifier thread.
pub struct VerifyJob {
    pub key: String,
    pub phc: String,
    pub reply: flume::Sender<bool>,
}

/// Verifications waiting for the verifier thread at most (Argon2 takes tens of ms each, so a
/// full queue is a few seconds of work); more are refused with 503 rather than queued.
pub const VERIFY_QUEUE: usize = 128;

/// The verifier's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Start the verifier thread(s) with room for `queue` waiting jobs; they live as long as the
/// sender.
pub fn start_verifiers(threads: usize, queue: usize) -> std::io::Result<flume::Sender<VerifyJob>> {
    let (tx, rx) = flume::bounded::<VerifyJob>(queue.max(1));
    for i in 0..threads.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("switchyard-argon2-{i}"))
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let _ = job.reply.send(verify(&job.key, &job.phc));
                }
            })?;
    }
    Ok(tx)
}

/// One shard's memory of verified keys: digest → (key index, verdict). Successes and failures are
/// kept apart: a flood of wrong secrets fills (and restarts) only the small failure map.
#[derive(Default)]
pub struct KeyCache {
    good: RefCell<HashMap<u64, (Digest32, usize)>>,
    bad: RefCell<HashMap<u64, (Digest32, usize)>>,
}

/// Good entries kept per shard before that map starts over (only keys that verified get in, so
/// this is reached only with that many keys in use on one shard).
const GOOD_MAX: usize = 16_384;
/// Failed entries kept per shard before that map starts over.
const BAD_MAX: usize = 1_024;

fn slot(d: &Digest32) -> u64 {
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl KeyCache {
    pub fn get(&self, d: &Digest32, index: usize) -> Option<bool> {
        let hit = |map: &RefCell<HashMap<u64, (Digest32, usize)>>| {
            map.borrow()
                .get(&slot(d))
                .is_some_and(|(full, idx)| ct_eq(full, d) && *idx == index)
        };
        if hit(&self.good) {
            Some(true)
        } else if hit(&self.bad) {
            Some(false)
        } else {
            None
        }
    }

    pub fn clear(&self) {
        self.good.borrow_mut().clear();
        self.bad.borrow_mut().clear();
    }

    pub fn put(&self, d: Digest32, index: usize, ok: bool) {
        let (map, max) = if ok {
            (&self.good, GOOD_MAX)
        } else {
            (&self.bad, BAD_MAX)
        };
        let mut map = map.borrow_mut();
        if map.len() >= max {
            map.clear();
        }
        map.insert(slot(&d), (d, index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_and_verify() {
        let k = mint().unwrap();
        assert_eq!(key_id(&k.key), Some(k.id.as_str()));
        assert!(k.hash.starts_with("$argon2id$"));
        assert!(verify(&k.key, &k.hash));
        assert!(!verify(&format!("{}x", k.key), &k.hash));
        assert!(!verify(&k.key, "not a hash"));
        assert_eq!(key_id("Bearer nonsense"), None);
        assert_eq!(key_id("sy__x"), None);
    }

    #[test]
    fn cache_remembers_by_digest_and_index() {
        let c = KeyCache::default();
        let d = digest("sy_a_b");
        assert_eq!(c.get(&d, 0), None);
        c.put(d, 0, true);
        assert_eq!(c.get(&d, 0), Some(true));
        assert_eq!(c.get(&d, 1), None);
        assert_eq!(c.get(&digest("sy_a_c"), 0), None);
        c.put(digest("sy_a_c"), 0, false);
        assert_eq!(c.get(&digest("sy_a_c"), 0), Some(false));
    }

    #[test]
    fn a_flood_of_failures_never_evicts_a_good_key() {
        let c = KeyCache::default();
        let good = digest("sy_a_good");
        c.put(good, 0, true);
        for i in 0..50_000 {
            c.put(digest(&format!("sy_a_wrong{i}")), 0, false);
        }
        assert_eq!(c.get(&good, 0), Some(true));
        assert!(c.bad.borrow().len() <= BAD_MAX);
    }

    #[test]
    fn the_verifier_queue_is_bounded() {
        let k = mint().unwrap();
        let tx = start_verifiers(1, 2).unwrap();
        let mut replies = Vec::new();
        // Each job takes the thread tens of ms: a queue of two is full within a few sends.
        let full = (0..20).any(|_| {
            let (reply, rx) = flume::bounded(1);
            replies.push(rx);
            let job = VerifyJob {
                key: k.key.clone(),
                phc: k.hash.clone(),
                reply,
            };
            matches!(tx.try_send(job), Err(flume::TrySendError::Full(_)))
        });
        assert!(full, "the queue never filled");
        // What was queued is still answered.
        assert_eq!(replies[0].recv(), Ok(true));
    }
}
