//! Legacy sessions (`initialize` … `DELETE`): created on the shard that served `initialize` (their
//! home, written into the id), reachable from every shard.
//!
//! Each shard keeps its own table; the home's entry is the truth. A shard that meets an id it does
//! not hold asks the home over the lane channel and caches the answer; a deletion (or expiry) at the
//! home is broadcast so other shards drop their copies. No lock anywhere: the activity clock is an
//! atomic in the shared session record.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use serde_json::Value;

/// One legacy session; immutable but for its activity clock.
#[derive(Debug)]
pub struct Session {
    pub id: Box<str>,
    /// The negotiated legacy revision.
    pub version: Box<str>,
    pub client_capabilities: Value,
    /// `client_capabilities` as JSON, told to 2026-07-28 upstreams on every call ("" when null).
    pub client_capabilities_json: Box<str>,
    pub client_info: Value,
    /// The API key (index) that opened it; `None` without keys.
    pub owner: u64,
    created: Instant,
    /// Milliseconds since `created` at the last request.
    last_seen_ms: AtomicU64,
    /// Resources it subscribed to (swapped whole on change; read by GET streams on any shard).
    pub subscriptions: super::listen::Subscriptions,
    /// Set by `ended`: what is held upstream for it has been let go.
    ended: std::sync::atomic::AtomicBool,
}

impl Session {
    pub fn touch(&self) {
        self.last_seen_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// A number naming this session among clients (from its random id; never 0).
    pub fn tag(&self) -> u64 {
        tag_of(&self.id)
    }

    /// Has it ended (`ended` ran)?
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Does the client declare capability `name` (`sampling`, `elicitation`, `roots`)?
    pub fn has_capability(&self, name: &str) -> bool {
        self.client_capabilities
            .get(name)
            .is_some_and(|v| !v.is_null())
    }
}

/// Session traffic between shards.
pub enum SessionMsg {
    /// Asked of the home shard.
    Lookup {
        id: Box<str>,
        reply: flume::Sender<Option<Arc<Session>>>,
    },
    /// Asked of the home shard, which drops its copy; answers whether it existed. The shard that
    /// took the DELETE tells the others itself (and waits for them: see `front::delete`).
    Delete {
        id: Box<str>,
        reply: flume::Sender<bool>,
    },
    /// Told to every shard after a deletion or expiry; `ack` is answered once it is forgotten.
    Forget {
        id: Box<str>,
        ack: Option<flume::Sender<()>>,
    },
}

/// Session `s` ended (DELETE or expiry; called once, on one shard): what the gateway holds upstream
/// for it goes — its dedicated connections, its resource subscriptions on shared ones.
pub fn ended(shared: &crate::shard::Shared, s: &Session) {
    use crate::upstream::{isolate, subs};
    // First: a subscribe in flight sees it after holding and lets go itself.
    s.ended.store(true, Ordering::Release);
    isolate::release(shared, &s.id);
    // Swapped out whole: a DELETE racing the expiry lets go once.
    let held = s.subscriptions.swap(Arc::new(Vec::new()));
    for sub in held.iter().filter(|sub| sub.counted) {
        subs::let_go(shared, sub.upstream, &sub.original);
    }
}

/// The tag (`Session::tag`) of the session with id `id`.
pub fn tag_of(id: &str) -> u64 {
    id.get(5..21)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(1)
        | 1
}

/// The home shard index written at the front of an id (`"0003-…"`).
pub fn home_of(id: &str) -> Option<u16> {
    let (home, rest) = id.split_once('-')?;
    if home.len() != 4 || rest.len() != 32 {
        return None;
    }
    u16::from_str_radix(home, 16).ok()
}

/// A fresh session id homed at `lane`: 128 random bits, visible ASCII only.
pub fn new_id(lane: u16) -> Box<str> {
    let mut r = [0u8; 16];
    if getrandom::fill(&mut r).is_err() {
        // No OS randomness: fall back to time and address entropy, still unique per process.
        let t = Instant::now().elapsed().as_nanos()
            ^ (std::process::id() as u128) << 64
            ^ (&r as *const _ as u128);
        r = t.to_le_bytes();
    }
    let mut s = format!("{lane:04x}-");
    for b in r {
        s.push_str(&format!("{b:02x}"));
    }
    s.into_boxed_str()
}

/// One shard's session table.
#[derive(Default)]
pub struct Sessions {
    table: RefCell<HashMap<Box<str>, Arc<Session>>>,
}

impl Sessions {
    pub fn create(
        &self,
        lane: u16,
        owner: u64,
        version: &str,
        client_capabilities: Value,
        client_info: Value,
    ) -> Arc<Session> {
        let s = Arc::new(Session {
            id: new_id(lane),
            version: version.into(),
            client_capabilities_json: match &client_capabilities {
                Value::Null => "".into(),
                v => v.to_string().into(),
            },
            client_capabilities,
            client_info,
            owner,
            created: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            subscriptions: Default::default(),
            ended: Default::default(),
        });
        self.table.borrow_mut().insert(s.id.clone(), s.clone());
        s
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.table.borrow().get(id).cloned()
    }

    pub fn insert(&self, s: Arc<Session>) {
        self.table.borrow_mut().insert(s.id.clone(), s);
    }

    pub fn remove(&self, id: &str) -> bool {
        self.table.borrow_mut().remove(id).is_some()
    }

    /// Sessions homed here that have been idle longer than `idle`; removed from the table.
    pub fn expire(&self, lane: u16, idle: Duration) -> Vec<Arc<Session>> {
        let mut t = self.table.borrow_mut();
        let gone: Vec<Arc<Session>> = t
            .iter()
            .filter(|(id, s)| home_of(id) == Some(lane) && s.idle_for() > idle)
            .map(|(_, s)| s.clone())
            .collect();
        for s in &gone {
            t.remove(&s.id);
        }
        gone
    }

    pub fn len(&self) -> usize {
        self.table.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_home() {
        let id = new_id(7);
        assert_eq!(home_of(&id), Some(7));
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_ne!(new_id(7), id);
        assert_eq!(home_of("nonsense"), None);
        assert_eq!(home_of("0001-abc"), None);
    }

    #[test]
    fn table_and_expiry() {
        let s = Sessions::default();
        let a = s.create(1, 0, "2025-11-25", Value::Null, Value::Null);
        assert!(s.get(&a.id).is_some());
        a.touch();
        assert!(s.expire(1, Duration::from_secs(60)).is_empty());
        assert_eq!(s.expire(1, Duration::ZERO).len(), 1);
        assert!(s.get(&a.id).is_none());
    }
}
