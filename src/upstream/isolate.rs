//! Dedicated upstreams per legacy session (`isolation = "session"`). Over stdio or legacy SSE
//! nothing in a server's `sampling/createMessage`, `elicitation/create` or `roots/list` says which
//! client it is for, so with calls of several sessions in flight the gateway must refuse it. A
//! server entry with `isolation = "session"` gets one connection (child process, event stream) per
//! legacy session that calls it: everything that connection sends is that session's.
//!
//! The control thread starts and stops them (`Keeper`, its bookkeeping); shards find them in a
//! `Registry` snapshot keyed by (session tag, server), published whole on every change. A dedicated
//! upstream has its own index (from `FIRST_INDEX` up, so replies, deaths and answers are routed to
//! it and to no other), and `home` naming the configured server (whose lists, announcements and
//! subscriptions it shares). It is started on the session's first call to the server, stopped when
//! the session ends (DELETE or expiry); if it dies, the session's next call starts another.

use std::sync::Arc;

use hashbrown::HashMap;

use super::{Transport, Upstream};
use crate::error::{Error, ErrorKind};
use crate::shard::{ControlMsg, Shared};

/// Indexes of dedicated upstreams start here (configured servers are numbered from 0).
pub const FIRST_INDEX: u16 = 0x8000;

/// What control answers a shard asking for a session's upstream.
pub type Reply = flume::Sender<Result<Arc<Upstream>, Error>>;

/// The dedicated upstreams that are ready, as the shards see them.
#[derive(Default)]
pub struct Registry {
    by_key: HashMap<(u64, u16), Arc<Upstream>>,
    by_index: HashMap<u16, Arc<Upstream>>,
}

impl Registry {
    /// Session `session`'s upstream for configured server `server`.
    pub fn get(&self, session: u64, server: u16) -> Option<&Arc<Upstream>> {
        self.by_key.get(&(session, server))
    }

    pub fn by_index(&self, index: u16) -> Option<&Arc<Upstream>> {
        self.by_index.get(&index)
    }

    /// The dedicated upstreams of one session.
    pub fn of_session(&self, session: u64) -> impl Iterator<Item = &Arc<Upstream>> {
        self.by_key
            .iter()
            .filter(move |((s, _), _)| *s == session)
            .map(|(_, up)| up)
    }

    /// How many sessions have their own connection to server `server`.
    pub fn count(&self, server: u16) -> usize {
        self.by_key.keys().filter(|(_, s)| *s == server).count()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Should this call of a legacy session go to a dedicated upstream of `up`? Only for a server
/// configured so, and only while it speaks the legacy era (a 2026-07-28 server's questions travel
/// in its answers and need no isolation).
pub fn wanted(up: &Upstream) -> bool {
    up.config.isolation == crate::config::Isolation::Session
        && up
            .ready()
            .is_some_and(|h| h.era == super::handshake::Era::Legacy)
}

/// Session `session`'s own connection to `up` (a configured server): from the published snapshot
/// when it is ready, else asked of control, which starts one (or waits for the start under way).
pub async fn dedicated(
    shared: &Shared,
    session: u64,
    up: &Upstream,
) -> Result<Arc<Upstream>, Error> {
    if let Some(d) = shared.isolated.load().get(session, up.index) {
        if d.ready().is_some() {
            return Ok(d.clone());
        }
    }
    shared
        .ask_control(|reply| ControlMsg::Isolate {
            server: up.index,
            session,
            reply,
        })
        .await
}

/// Session `id` ended (DELETE or expiry): control stops its dedicated upstreams, if any server
/// has them.
pub fn release(shared: &Shared, id: &str) {
    if shared
        .config
        .servers
        .iter()
        .any(|s| s.isolation == crate::config::Isolation::Session)
    {
        let _ = shared.control.send(ControlMsg::Release {
            session: crate::mcp::session::tag_of(id),
        });
    }
}

/// Ask a dedicated upstream's connection to end (its reader then reports the exit).
pub fn stop(up: &Upstream) {
    match &up.transport {
        Transport::Stdio(s) => s.terminate(),
        Transport::Sse(s) => s.terminate(),
        Transport::Http(_) => {}
    }
}

/// Is its connection (child, event stream) still there?
pub fn connected(up: &Upstream) -> bool {
    match &up.transport {
        Transport::Stdio(s) => s.slot.current().is_some(),
        Transport::Sse(s) => s.slot.current().is_some(),
        Transport::Http(_) => true,
    }
}

/// How long a dedicated child has to exit after SIGTERM before it is killed.
const KILL_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// `stop`, then SIGKILL for a child still there after `KILL_AFTER` (a session's end must not
/// leave processes behind). Run as a task of the control thread.
pub async fn stop_for_good(up: Arc<Upstream>) {
    stop(&up);
    let Transport::Stdio(s) = &up.transport else {
        return;
    };
    let until = std::time::Instant::now() + KILL_AFTER;
    while s.pid().is_some() && std::time::Instant::now() < until {
        monoio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if s.pid().is_some() {
        tracing::warn!(server = %up.name, "a session's own child ignored SIGTERM; killed");
        s.kill();
    }
}

enum Entry {
    /// Being started under `index`; `waiters` get the outcome. `released`: the session ended
    /// meanwhile, so the upstream is stopped as soon as it is up.
    Starting {
        index: u16,
        waiters: Vec<Reply>,
        released: bool,
    },
    Ready(Arc<Upstream>),
}

impl Entry {
    fn index(&self) -> u16 {
        match self {
            Entry::Starting { index, .. } => *index,
            Entry::Ready(up) => up.index,
        }
    }
}

/// The control thread's book of dedicated upstreams (single owner; no locks).
#[derive(Default)]
pub struct Keeper {
    entries: HashMap<(u64, u16), Entry>,
    /// The last index handed out; the next is searched from here, so an index comes back into
    /// use only after every other one has (a dead connection's late messages name an index that
    /// nobody has).
    last: u16,
    /// Sessions released lately, oldest first: a call of the session still in flight when it
    /// ended must not start a connection that nothing would stop.
    ended: std::collections::VecDeque<u64>,
}

/// How many ended sessions `Keeper` remembers.
const ENDED_KEPT: usize = 4096;

impl Keeper {
    /// Session `session` wants its upstream for server `server` (at most `limit` sessions may have
    /// one). Answers `reply` at once, or queues it; `Some(index)` when the caller must start a new
    /// upstream under that index (and then call `started`).
    pub fn ask(
        &mut self,
        session: u64,
        server: u16,
        name: &str,
        limit: usize,
        reply: Reply,
    ) -> Option<u16> {
        let key = (session, server);
        if self.ended.contains(&session) {
            let _ = reply.send(Err(Error::downstream(
                ErrorKind::SessionNotFound,
                "the session ended",
            )));
            return None;
        }
        match self.entries.get_mut(&key) {
            Some(Entry::Ready(up)) if up.ready().is_some() => {
                let _ = reply.send(Ok(up.clone()));
                return None;
            }
            Some(Entry::Starting { waiters, .. }) => {
                waiters.push(reply);
                return None;
            }
            // A dead one (its exit not seen yet): replaced.
            Some(Entry::Ready(_)) => {
                self.entries.remove(&key);
            }
            None => {}
        }
        if self.entries.keys().filter(|(_, s)| *s == server).count() >= limit {
            let _ = reply.send(Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!(
                    "server {name:?}: {limit} sessions already have their own connection to it (isolation_limit); try again when one ends"
                ),
            )));
            return None;
        }
        let Some(index) = self.allocate() else {
            let _ = reply.send(Err(Error::upstream(
                ErrorKind::UpstreamUnavailable,
                format!("server {name:?}: no upstream index left for another dedicated connection"),
            )));
            return None;
        };
        self.entries.insert(
            key,
            Entry::Starting {
                index,
                waiters: vec![reply],
                released: false,
            },
        );
        Some(index)
    }

    fn allocate(&mut self) -> Option<u16> {
        let used: hashbrown::HashSet<u16> = self.entries.values().map(Entry::index).collect();
        let span = u32::from(u16::MAX - FIRST_INDEX) + 1;
        let from = u32::from(self.last.saturating_sub(FIRST_INDEX));
        (1..=span)
            .map(|step| FIRST_INDEX + ((from + step) % span) as u16)
            .find(|i| !used.contains(i))
            .inspect(|i| self.last = *i)
    }

    /// The start of session `session`'s upstream for `server` ended: `Ok` with the ready upstream
    /// or the error. Returns an upstream that must be stopped (the session ended meanwhile).
    pub fn started(
        &mut self,
        session: u64,
        server: u16,
        outcome: Result<Arc<Upstream>, Error>,
    ) -> Option<Arc<Upstream>> {
        let key = (session, server);
        let Some(Entry::Starting {
            waiters, released, ..
        }) = self.entries.remove(&key)
        else {
            return outcome.ok();
        };
        match outcome {
            Ok(up) if released => {
                let e = Error::upstream(ErrorKind::UpstreamUnavailable, "the session ended");
                for w in waiters {
                    let _ = w.send(Err(e.clone()));
                }
                Some(up)
            }
            Ok(up) => {
                for w in waiters {
                    let _ = w.send(Ok(up.clone()));
                }
                self.entries.insert(key, Entry::Ready(up));
                None
            }
            Err(e) => {
                for w in waiters {
                    let _ = w.send(Err(e.clone()));
                }
                None
            }
        }
    }

    /// Session `session` ended: its ready upstreams (to stop) leave the book; those starting are
    /// stopped when up.
    pub fn release(&mut self, session: u64) -> Vec<Arc<Upstream>> {
        if self.ended.len() >= ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back(session);
        let mut stop = Vec::new();
        self.entries.retain(|(s, _), entry| {
            if *s != session {
                return true;
            }
            match entry {
                Entry::Starting { released, .. } => {
                    *released = true;
                    true
                }
                Entry::Ready(up) => {
                    stop.push(up.clone());
                    false
                }
            }
        });
        stop
    }

    /// Dedicated upstream `index` died: forget it (the session's next call starts another).
    /// False when it was not a ready one of the book (stopped by a release, or still starting).
    pub fn exited(&mut self, index: u16) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| !matches!(e, Entry::Ready(up) if up.index == index));
        self.entries.len() != before
    }

    /// Every ready upstream, leaving the book (the gateway stops).
    pub fn drain(&mut self) -> Vec<Arc<Upstream>> {
        let all = std::mem::take(&mut self.entries);
        all.into_values()
            .filter_map(|e| match e {
                Entry::Ready(up) => Some(up),
                Entry::Starting { .. } => None,
            })
            .collect()
    }

    /// What the shards should see.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        for (key, e) in &self.entries {
            if let Entry::Ready(up) = e {
                r.by_key.insert(*key, up.clone());
                r.by_index.insert(up.index, up.clone());
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::handshake::{Era, Handshake};

    fn server(isolation: crate::config::Isolation) -> Arc<Upstream> {
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            &format!(
                "[[servers]]\nname = \"s\"\ncommand = \"true\"\nisolation = \"{}\"\n",
                match isolation {
                    crate::config::Isolation::Shared => "shared",
                    crate::config::Isolation::Session => "session",
                }
            ),
        )
        .expect("config");
        Arc::new(Upstream::new(0, &cfg.servers[0], 1000).expect("upstream"))
    }

    fn legacy() -> Handshake {
        Handshake {
            era: Era::Legacy,
            version: "2025-11-25".into(),
            capabilities: serde_json::json!({}),
            server_info: serde_json::json!({}),
            instructions: None,
        }
    }

    fn ready(up: &Upstream) {
        up.set_ready(Arc::new(legacy()));
    }

    fn dedicated(index: u16, of: &Upstream) -> Arc<Upstream> {
        let d = Arc::new(Upstream::dedicated(index, 9, of).expect("dedicated"));
        ready(&d);
        d
    }

    #[test]
    fn one_start_per_session_and_server_and_waiters_share_it() {
        let parent = server(crate::config::Isolation::Session);
        let mut k = Keeper::default();
        let (tx1, rx1) = flume::unbounded();
        let (tx2, rx2) = flume::unbounded();
        let index = k.ask(7, 0, "s", 4, tx1).expect("a start");
        assert!(index >= FIRST_INDEX);
        assert_eq!(
            k.ask(7, 0, "s", 4, tx2),
            None,
            "the second waits for the first"
        );
        assert!(rx1.try_recv().is_err());
        let up = dedicated(index, &parent);
        assert_eq!(up.home, 0);
        assert!(k.started(7, 0, Ok(up.clone())).is_none());
        for rx in [rx1, rx2] {
            let got = rx.try_recv().expect("answered").expect("ok");
            assert!(Arc::ptr_eq(&got, &up));
        }
        let reg = k.registry();
        assert!(reg.get(7, 0).is_some_and(|u| Arc::ptr_eq(u, &up)));
        assert!(reg.by_index(index).is_some());
        assert_eq!(reg.count(0), 1);
        // Ready: answered at once.
        let (tx3, rx3) = flume::unbounded();
        assert_eq!(k.ask(7, 0, "s", 4, tx3), None);
        assert!(rx3.try_recv().expect("answered").is_ok());
    }

    #[test]
    fn the_limit_counts_sessions_per_server() {
        let mut k = Keeper::default();
        let (tx, rx) = flume::unbounded();
        assert!(k.ask(1, 0, "s", 2, tx.clone()).is_some());
        assert!(k.ask(2, 0, "s", 2, tx.clone()).is_some());
        assert!(k.ask(1, 1, "t", 2, tx.clone()).is_some(), "another server");
        assert_eq!(k.ask(3, 0, "s", 2, tx), None);
        let Err(err) = rx.try_recv().expect("refused") else {
            panic!("over the limit")
        };
        assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
        assert!(err.context.contains("isolation_limit"), "{err}");
    }

    #[test]
    fn release_stops_ready_ones_and_those_still_starting() {
        let parent = server(crate::config::Isolation::Session);
        let mut k = Keeper::default();
        let (tx, rx) = flume::unbounded();
        let a = k.ask(1, 0, "s", 8, tx.clone()).expect("start");
        let b = k.ask(2, 0, "s", 8, tx.clone()).expect("start");
        assert_ne!(a, b);
        let ua = dedicated(a, &parent);
        assert!(k.started(1, 0, Ok(ua.clone())).is_none());
        let ub = dedicated(b, &parent);
        // Session 1 ends: its ready one is to stop. Session 2 ends while starting.
        let stopped = k.release(1);
        assert_eq!(stopped.len(), 1);
        assert!(Arc::ptr_eq(&stopped[0], &ua));
        assert!(k.release(2).is_empty());
        let late = k.started(2, 0, Ok(ub.clone())).expect("stopped once up");
        assert!(Arc::ptr_eq(&late, &ub));
        let outcomes: Vec<bool> = rx.try_iter().map(|r| r.is_ok()).collect();
        assert_eq!(
            outcomes,
            [true, false],
            "the session-2 waiter is told it ended"
        );
        assert!(k.registry().is_empty());
        // A late call of an ended session starts nothing.
        let (tx, rx) = flume::unbounded();
        assert_eq!(k.ask(1, 0, "s", 8, tx), None);
        let Err(err) = rx.try_recv().expect("refused") else {
            panic!("ended")
        };
        assert_eq!(err.kind, ErrorKind::SessionNotFound);
    }

    #[test]
    fn a_dead_one_is_forgotten_and_replaced_under_a_new_index() {
        let parent = server(crate::config::Isolation::Session);
        let mut k = Keeper::default();
        let (tx, _rx) = flume::unbounded();
        let a = k.ask(1, 0, "s", 8, tx.clone()).expect("start");
        let ua = dedicated(a, &parent);
        k.started(1, 0, Ok(ua.clone()));
        assert!(k.exited(a));
        assert!(!k.exited(a), "only once");
        let b = k.ask(1, 0, "s", 8, tx.clone()).expect("a new start");
        assert_ne!(a, b, "indexes are not reused at once");
        // Dead but its exit not seen yet: replaced too.
        let ub = dedicated(b, &parent);
        k.started(1, 0, Ok(ub.clone()));
        ub.status.store(Arc::new(crate::upstream::Status::Down {
            reason: "gone".into(),
            since: std::time::Instant::now(),
        }));
        assert!(k.ask(1, 0, "s", 8, tx).is_some());
    }

    #[test]
    fn indexes_wrap_within_their_space() {
        let mut k = Keeper {
            last: u16::MAX - 1,
            ..Keeper::default()
        };
        assert_eq!(k.allocate(), Some(u16::MAX));
        assert_eq!(k.allocate(), Some(FIRST_INDEX));
    }

    #[test]
    fn only_legacy_servers_configured_so_are_isolated() {
        let shared = server(crate::config::Isolation::Shared);
        ready(&shared);
        assert!(!wanted(&shared));
        let iso = server(crate::config::Isolation::Session);
        assert!(!wanted(&iso), "not ready");
        ready(&iso);
        assert!(wanted(&iso));
        let mut modern = legacy();
        modern.era = Era::Modern;
        iso.set_ready(Arc::new(modern));
        assert!(!wanted(&iso));
    }
}
