//! Resumable legacy SSE streams (2025-11-25 "Resumability and Redelivery"): every event of a legacy
//! POST stream or GET stream carries an id naming its stream, and each stream's events are kept in a
//! bounded log on the shard that writes it. `GET /mcp` with `Last-Event-ID` replays what came after
//! that id and, while the call still runs, follows it live — from any shard: the id names the shard
//! that holds the log, and another shard asks it over the lane channel. No lock: a log belongs to
//! its shard.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashMap;

use super::session::Session;
use super::sink::Sink;
use crate::config::Resume as Limits;
use crate::shard::{LaneMsg, ShardCtx};

/// One event's id: the shard holding its stream's log, the stream there, the event's place in it
/// (the priming event is 0). Written `lane.key.seq` in hex: unique in the process, so per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub lane: u16,
    pub key: u64,
    pub seq: u64,
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}.{:x}.{:x}", self.lane, self.key, self.seq)
    }
}

impl EventId {
    pub fn parse(s: &str) -> Option<EventId> {
        let mut parts = s.trim().splitn(3, '.');
        let mut hex = || {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 16 {
                return None;
            }
            u64::from_str_radix(p, 16).ok()
        };
        let lane = u16::try_from(hex()?).ok()?;
        let key = hex()?;
        let seq = hex()?;
        Some(EventId { lane, key, seq })
    }
}

/// Where a log sends what it records besides its own connection: resumed streams.
enum Follower {
    /// A resumed stream on this shard.
    Local(Weak<Sink>),
    /// A resumed stream on another shard (its forwarding task ends when the sender goes).
    Remote(flume::Sender<Replay>),
}

/// The events of one stream, bounded in count and bytes (oldest dropped first, the last one kept).
pub struct Log {
    id: EventId,
    session: Box<str>,
    /// A session's GET stream (resumed as a fresh GET stream) rather than one request's answer.
    standing: bool,
    /// The client's revision wants a priming event (2025-11-25 and later).
    pub prime: bool,
    events: RefCell<VecDeque<(u64, Bytes)>>,
    bytes: Cell<usize>,
    next: Cell<u64>,
    ended: Cell<Option<Instant>>,
    followers: RefCell<Vec<Follower>>,
    max_events: usize,
    max_bytes: usize,
    /// The shard's total of kept bytes, which this log adds to.
    total: Rc<Cell<usize>>,
}

impl Drop for Log {
    fn drop(&mut self) {
        self.total
            .set(self.total.get().saturating_sub(self.bytes.get()));
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("id", &self.id)
            .field("events", &self.events.borrow().len())
            .field("ended", &self.ended.get().is_some())
            .finish()
    }
}

impl Log {
    fn new(
        id: EventId,
        session: &Session,
        standing: bool,
        limits: &Limits,
        total: Rc<Cell<usize>>,
    ) -> Log {
        Log {
            id,
            session: session.id.clone(),
            standing,
            prime: &*session.version >= "2025-11-25",
            events: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            next: Cell::new(1),
            ended: Cell::new(None),
            followers: RefCell::new(Vec::new()),
            max_events: limits.replay_events.max(1),
            max_bytes: limits.replay_bytes,
            total,
        }
    }

    fn add_bytes(&self, n: usize) {
        self.bytes.set(self.bytes.get() + n);
        self.total.set(self.total.get() + n);
    }

    fn sub_bytes(&self, n: usize) {
        self.bytes.set(self.bytes.get() - n);
        self.total.set(self.total.get().saturating_sub(n));
    }

    /// The priming event's id (seq 0: "nothing seen yet").
    pub fn priming_id(&self) -> EventId {
        self.id
    }

    /// Keep `msg` as the stream's next event and pass it to resumed streams; its id.
    pub fn record(&self, msg: Bytes) -> EventId {
        let seq = self.next.get();
        self.next.set(seq + 1);
        let id = EventId { seq, ..self.id };
        self.followers.borrow_mut().retain(|f| match f {
            Follower::Local(w) => match w.upgrade() {
                Some(s) if !s.is_closed() => {
                    s.push_event(id, msg.clone());
                    true
                }
                _ => false,
            },
            Follower::Remote(tx) => tx.send(Replay::Event(id, msg.clone())).is_ok(),
        });
        let mut events = self.events.borrow_mut();
        self.add_bytes(msg.len());
        events.push_back((seq, msg));
        while events.len() > 1
            && (events.len() > self.max_events || self.bytes.get() > self.max_bytes)
        {
            if let Some((_, old)) = events.pop_front() {
                self.sub_bytes(old.len());
            }
        }
        id
    }

    /// No more events: resumed streams end after what they have.
    pub fn end(&self) {
        if self.ended.get().is_some() {
            return;
        }
        self.ended.set(Some(Instant::now()));
        for f in self.followers.borrow_mut().drain(..) {
            if let Follower::Local(w) = f {
                if let Some(s) = w.upgrade() {
                    s.finish();
                }
            }
        }
    }

    /// The kept events after `seq`, oldest first.
    fn after(&self, seq: u64) -> Vec<(EventId, Bytes)> {
        self.events
            .borrow()
            .iter()
            .filter(|(s, _)| *s > seq)
            .map(|(s, m)| (EventId { seq: *s, ..self.id }, m.clone()))
            .collect()
    }

    fn is_stale(&self, now: Instant, grace: Duration) -> bool {
        self.ended
            .get()
            .is_some_and(|t| now.duration_since(t) >= grace)
    }
}

/// One shard's logs, by stream key.
#[derive(Default)]
pub struct Streams {
    logs: RefCell<HashMap<u64, Rc<Log>>>,
    next_key: Cell<u64>,
    swept: Cell<Option<Instant>>,
    /// Bytes kept by all logs of the shard.
    total: Rc<Cell<usize>>,
}

impl Streams {
    /// A new log for a stream of `session` written on shard `lane`.
    pub fn open(&self, lane: u16, session: &Session, standing: bool, limits: &Limits) -> Rc<Log> {
        let now = Instant::now();
        if self
            .swept
            .get()
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            self.sweep(Duration::from_millis(limits.replay_grace_ms));
        }
        if self.total.get() > limits.replay_shard_bytes {
            self.evict(limits.replay_shard_bytes);
        }
        let key = self.next_key.get() + 1;
        self.next_key.set(key);
        let id = EventId { lane, key, seq: 0 };
        let log = Rc::new(Log::new(id, session, standing, limits, self.total.clone()));
        self.logs.borrow_mut().insert(key, log.clone());
        log
    }

    fn get(&self, key: u64) -> Option<Rc<Log>> {
        self.logs.borrow().get(&key).cloned()
    }

    /// Drop the logs that ended more than `grace` ago.
    pub fn sweep(&self, grace: Duration) {
        let now = Instant::now();
        self.swept.set(Some(now));
        self.logs
            .borrow_mut()
            .retain(|_, l| !l.is_stale(now, grace));
    }

    /// Over the shard's budget: finished logs go before their grace is up, oldest first, until
    /// the rest fits in `budget` (logs of streams still open are bounded each, and not evicted).
    fn evict(&self, budget: usize) {
        let mut ended: Vec<(Instant, u64)> = self
            .logs
            .borrow()
            .iter()
            .filter_map(|(k, l)| l.ended.get().map(|t| (t, *k)))
            .collect();
        ended.sort_unstable();
        for (_, key) in ended {
            if self.total.get() <= budget {
                break;
            }
            self.logs.borrow_mut().remove(&key);
        }
    }

    /// Bytes kept by the shard's logs.
    pub fn bytes(&self) -> usize {
        self.total.get()
    }

    /// The session ended: its logs go (a call still running keeps recording into its own copy,
    /// which goes when the call ends).
    pub fn forget_session(&self, id: &str) {
        self.logs.borrow_mut().retain(|_, l| &*l.session != id);
    }

    pub fn len(&self) -> usize {
        self.logs.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the shard holding a log sends to the shard resuming it.
pub enum Replay {
    /// The log exists and belongs to the session; a GET stream's log or a request's.
    Found {
        standing: bool,
    },
    Unknown,
    Event(EventId, Bytes),
}

/// Asked of the shard holding a log: replay after `id` to `tx`, and follow while it lasts.
pub struct ReplayAsk {
    pub id: EventId,
    pub session: Box<str>,
    pub tx: flume::Sender<Replay>,
}

/// On the shard holding the log: answer a `ReplayAsk` from another shard.
pub fn replay_for_other(ctx: &ShardCtx, ask: ReplayAsk) {
    let log = match ctx.streams.get(ask.id.key) {
        Some(l) if l.session == ask.session => l,
        _ => {
            let _ = ask.tx.send(Replay::Unknown);
            return;
        }
    };
    let _ = ask.tx.send(Replay::Found {
        standing: log.standing,
    });
    for (id, m) in log.after(ask.id.seq) {
        let _ = ask.tx.send(Replay::Event(id, m));
    }
    if !log.standing && log.ended.get().is_none() {
        log.followers.borrow_mut().push(Follower::Remote(ask.tx));
    }
}

/// Why a `Last-Event-ID` cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// Not an id this gateway writes.
    Malformed,
    /// No such stream of this session (never was, expired, or the shard holding it did not answer).
    Unknown,
}

/// `GET /mcp` with `Last-Event-ID` for `session`: a stream that replays the events after that id;
/// a request's stream then follows the request live until its answer, a GET stream continues as
/// the session's fresh GET stream (`fresh` makes it).
pub async fn resume(
    ctx: &ShardCtx,
    session: &Arc<Session>,
    last: &str,
    fresh: impl FnOnce() -> Rc<Sink>,
) -> Result<Rc<Sink>, ResumeError> {
    let id = EventId::parse(last).ok_or(ResumeError::Malformed)?;
    if id.lane == ctx.index() {
        let log = match ctx.streams.get(id.key) {
            Some(l) if l.session == session.id => l,
            _ => return Err(ResumeError::Unknown),
        };
        let sink = if log.standing {
            fresh()
        } else {
            Rc::new(Sink::default())
        };
        for (eid, m) in log.after(id.seq) {
            sink.push_event(eid, m);
        }
        if !log.standing {
            if log.ended.get().is_some() {
                sink.finish();
            } else {
                log.followers
                    .borrow_mut()
                    .push(Follower::Local(Rc::downgrade(&sink)));
            }
        }
        return Ok(sink);
    }
    let lane = ctx
        .shared
        .lanes
        .get(id.lane as usize)
        .filter(|_| id.lane != 0)
        .ok_or(ResumeError::Unknown)?;
    let (tx, rx) = flume::unbounded();
    lane.send(LaneMsg::Replay(ReplayAsk {
        id,
        session: session.id.clone(),
        tx,
    }))
    .map_err(|_| ResumeError::Unknown)?;
    let first = monoio::time::timeout(Duration::from_secs(2), rx.recv_async()).await;
    let standing = match first {
        Ok(Ok(Replay::Found { standing })) => standing,
        _ => return Err(ResumeError::Unknown),
    };
    let sink = if standing {
        fresh()
    } else {
        Rc::new(Sink::default())
    };
    // Forward what the other shard sends until it is done (or this client goes).
    let weak = Rc::downgrade(&sink);
    monoio::spawn(async move {
        while let Ok(Replay::Event(id, m)) = rx.recv_async().await {
            match weak.upgrade() {
                Some(s) if !s.is_closed() => s.push_event(id, m),
                _ => return,
            }
        }
        if !standing {
            if let Some(s) = weak.upgrade() {
                s.finish();
            }
        }
    });
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn limits(events: usize, bytes: usize) -> Limits {
        Limits {
            replay_events: events,
            replay_bytes: bytes,
            ..Limits::default()
        }
    }

    fn session(version: &str) -> Arc<Session> {
        super::super::session::Sessions::default().create(1, 0, version, Value::Null, Value::Null)
    }

    #[test]
    fn ids_round_trip() {
        let id = EventId {
            lane: 3,
            key: 0x1f,
            seq: 7,
        };
        assert_eq!(id.to_string(), "3.1f.7");
        assert_eq!(EventId::parse("3.1f.7"), Some(id));
        for bad in [
            "",
            "3.1f",
            "x.1.2",
            "10000.1.1",
            "1..2",
            "1.2.3.4",
            "1.2.12345678901234567",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bounded_by_count_and_bytes_keeping_the_last() {
        let s = session("2025-11-25");
        let log = Log::new(
            EventId {
                lane: 1,
                key: 1,
                seq: 0,
            },
            &s,
            false,
            &limits(3, 10),
            Default::default(),
        );
        assert!(log.prime);
        for m in ["aa", "bb", "cc", "dd"] {
            log.record(Bytes::from(m));
        }
        // Count bound: the oldest went.
        let kept: Vec<u64> = log.after(0).iter().map(|(id, _)| id.seq).collect();
        assert_eq!(kept, vec![2, 3, 4]);
        // Byte bound: a big event pushes out the others but stays itself.
        log.record(Bytes::from(vec![b'x'; 25]));
        let kept: Vec<u64> = log.after(0).iter().map(|(id, _)| id.seq).collect();
        assert_eq!(kept, vec![5]);
        assert_eq!(log.bytes.get(), 25);
        assert!(log.after(5).is_empty());
    }

    #[test]
    fn followers_get_live_events_and_the_end() {
        let s = session("2025-06-18");
        let log = Log::new(
            EventId {
                lane: 1,
                key: 2,
                seq: 0,
            },
            &s,
            false,
            &limits(8, 1 << 20),
            Default::default(),
        );
        assert!(!log.prime);
        log.record(Bytes::from_static(b"1"));
        let follower = Rc::new(Sink::default());
        log.followers
            .borrow_mut()
            .push(Follower::Local(Rc::downgrade(&follower)));
        log.record(Bytes::from_static(b"2"));
        log.end();
        let (id, m) = follower.try_next_event().expect("live event");
        assert_eq!((id.map(|i| i.seq), &m[..]), (Some(2), &b"2"[..]));
        assert!(follower.try_next_event().is_none());
        assert!(follower.is_finished());
    }

    #[test]
    fn sweep_drops_ended_logs_after_grace_and_sessions_forget() {
        let streams = Streams::default();
        let s = session("2025-11-25");
        let a = streams.open(1, &s, false, &Limits::default());
        let _b = streams.open(1, &s, true, &Limits::default());
        assert_eq!(streams.len(), 2);
        a.end();
        streams.sweep(Duration::from_secs(60));
        assert_eq!(streams.len(), 2);
        streams.sweep(Duration::ZERO);
        assert_eq!(streams.len(), 1);
        streams.forget_session(&s.id);
        assert!(streams.is_empty());
    }

    #[test]
    fn the_shard_budget_evicts_finished_logs_oldest_first() {
        let streams = Streams::default();
        let s = session("2025-11-25");
        let limits = Limits {
            replay_shard_bytes: 10,
            ..Limits::default()
        };
        let old = streams.open(1, &s, false, &limits);
        old.record(Bytes::from(vec![b'a'; 8]));
        old.end();
        let newer = streams.open(1, &s, false, &limits);
        newer.record(Bytes::from(vec![b'b'; 8]));
        newer.end();
        let running = streams.open(1, &s, false, &limits);
        running.record(Bytes::from(vec![b'c'; 8]));
        assert_eq!(streams.bytes(), 24);
        drop((old, newer));
        // Over budget at the next open: finished logs go oldest first; the running one stays.
        let _next = streams.open(1, &s, false, &limits);
        assert_eq!(streams.bytes(), 8);
        assert!(streams.get(3).is_some() && streams.get(1).is_none() && streams.get(2).is_none());
    }
}
