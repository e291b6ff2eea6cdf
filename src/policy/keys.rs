//! API keys: their format, minting (`switchyard keys new`), and verification.
//!
//! A key reads `sy_<id>_<secret>`: the id names the config entry (so a presented key is checked
//! against one hash, not all of them) and the secret carries 190 random bits. Only the Argon2id PHC
//! hash of the whole key is stored. Argon2 is deliberately slow (tens of ms), so it runs on a
//! verifier thread, never on a shard, and at most once per key per shard: a shard-local cache keyed
//! by the SHA-256 of the presented key remembers the verdict, compared in constant time.

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

/// Start the verifier thread(s); they live as long as the sender.
pub fn start_verifiers(threads: usize) -> std::io::Result<flume::Sender<VerifyJob>> {
    let (tx, rx) = flume::unbounded::<VerifyJob>();
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

/// One shard's memory of verified keys: digest → (key index, verdict).
#[derive(Default)]
pub struct KeyCache {
    map: RefCell<HashMap<u64, (Digest32, usize, bool)>>,
}

/// Entries kept per shard before the cache starts over (bounds memory under a flood of bad keys).
const CACHE_MAX: usize = 16_384;

impl KeyCache {
    pub fn get(&self, d: &Digest32, index: usize) -> Option<bool> {
        let slot = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let map = self.map.borrow();
        let (full, idx, ok) = map.get(&slot)?;
        (ct_eq(full, d) && *idx == index).then_some(*ok)
    }

    pub fn clear(&self) {
        self.map.borrow_mut().clear();
    }

    pub fn put(&self, d: Digest32, index: usize, ok: bool) {
        let slot = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let mut map = self.map.borrow_mut();
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(slot, (d, index, ok));
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
    }
}
