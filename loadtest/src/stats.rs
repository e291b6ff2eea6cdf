//! Per-worker accounting: what is measured (the window), into which histogram, and the 1 s intervals.
//!
//! Each worker thread keeps its own [`Recorder`] (no sharing on the request path) and the run
//! merges them at the end; once a second each worker hands over an [`Interval`] for the live line.
//!
//! A request belongs to the measurement when its *reference time* — the intended send time in
//! open loop, the actual send time in closed loop — falls in `[warm-up end, end)`. Of those:
//! - `latency` holds response time − reference time for every request that got an HTTP answer
//!   (errors included: a fast 502 is still an answer), plus, for requests still queued at the end
//!   (never sent), the time they had already waited: a lower bound, never an omission;
//! - `service` holds response time − actual send time (what a closed-loop tool would report);
//! - timeouts and broken connections are counted as errors, not as latencies.
//!
//! Throughput counts successful answers *completed* inside the window, per second of window.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::answer::ErrorKind;
use crate::histogram::LatencyHistogram;

/// Counts and histograms of one worker, or of a whole run once merged.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub latency: LatencyHistogram,
    pub service: LatencyHistogram,
    pub sched_lag: LatencyHistogram,
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub unsent: u64,
    pub ok_in_window: u64,
    pub reconnects: u64,
}

impl Totals {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Totals) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.sched_lag.merge(&other.sched_lag);
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.unsent += other.unsent;
        self.ok_in_window += other.ok_in_window;
        self.reconnects += other.reconnects;
    }

    /// All errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One second of one worker, by completion time (warm-up included).
#[derive(Debug, Clone, Default)]
pub struct Interval {
    pub ok: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
    pub inflight: u64,
    pub queued: u64,
}

impl Interval {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Interval) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
        self.inflight += other.inflight;
        self.queued += other.queued;
    }
}

/// A worker's recorder.
#[derive(Debug)]
pub struct Recorder {
    measure_from: Instant,
    end: Instant,
    pub totals: Totals,
    interval: Interval,
}

/// The outcome of one request, for [`Recorder::complete`].
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    /// Intended send time (open loop) or actual send time (closed loop).
    pub reference: Instant,
    pub sent: Instant,
    pub done: Instant,
    /// An HTTP answer came back (even an error status).
    pub answered: bool,
    pub result: Result<(), ErrorKind>,
}

impl Recorder {
    /// A recorder measuring `[measure_from, end)`.
    pub fn new(measure_from: Instant, end: Instant) -> Self {
        Recorder {
            measure_from,
            end,
            totals: Totals::default(),
            interval: Interval::default(),
        }
    }

    fn measured(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }

    /// Records one finished request.
    pub fn complete(&mut self, c: Completion) {
        let latency = c.done.saturating_duration_since(c.reference);
        match c.result {
            Ok(()) => self.interval.ok += 1,
            Err(_) => self.interval.errors += 1,
        }
        if c.answered {
            self.interval.latency.record(latency);
        }
        if c.result.is_ok() && self.measured(c.done) {
            self.totals.ok_in_window += 1;
        }
        if !self.measured(c.reference) {
            return;
        }
        match c.result {
            Ok(()) => self.totals.ok += 1,
            Err(kind) => *self.totals.errors.entry(kind).or_default() += 1,
        }
        if c.answered {
            self.totals.latency.record(latency);
            self.totals
                .service
                .record(c.done.saturating_duration_since(c.sent));
        }
    }

    /// Records an arrival that was still queued at `now`, when the run ended.
    pub fn unsent(&mut self, intended: Instant, now: Instant) {
        if self.measured(intended) {
            self.totals.unsent += 1;
            self.totals
                .latency
                .record(now.saturating_duration_since(intended));
        }
    }

    /// Records how late the scheduler handed out an arrival.
    pub fn scheduled(&mut self, intended: Instant, now: Instant) {
        if self.measured(intended) {
            self.totals
                .sched_lag
                .record(now.saturating_duration_since(intended));
        }
    }

    /// Takes this second's interval (and starts the next).
    pub fn take_interval(&mut self, inflight: u64, queued: u64) -> Interval {
        let mut out = std::mem::take(&mut self.interval);
        out.inflight = inflight;
        out.queued = queued;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn only_the_window_is_measured_and_latency_starts_at_the_reference() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0 + ms(1000), t0 + ms(3000));
        // Warm-up: counted in the live interval only.
        r.complete(Completion {
            reference: t0 + ms(10),
            sent: t0 + ms(10),
            done: t0 + ms(20),
            answered: true,
            result: Ok(()),
        });
        // Intended at 1.5 s, sent at 2.0 s (queued), answered at 2.1 s.
        r.complete(Completion {
            reference: t0 + ms(1500),
            sent: t0 + ms(2000),
            done: t0 + ms(2100),
            answered: true,
            result: Ok(()),
        });
        r.complete(Completion {
            reference: t0 + ms(1600),
            sent: t0 + ms(1600),
            done: t0 + ms(1700),
            answered: true,
            result: Err(ErrorKind::Rpc(-32602)),
        });
        r.complete(Completion {
            reference: t0 + ms(1700),
            sent: t0 + ms(1700),
            done: t0 + ms(2700),
            answered: false,
            result: Err(ErrorKind::Timeout),
        });
        r.unsent(t0 + ms(2900), t0 + ms(3000));
        r.unsent(t0 + ms(500), t0 + ms(3000));
        let t = &r.totals;
        assert_eq!(t.ok, 1);
        assert_eq!(t.ok_in_window, 1);
        assert_eq!(t.error_count(), 2);
        assert_eq!(t.errors.get(&ErrorKind::Timeout), Some(&1));
        assert_eq!(t.unsent, 1);
        // 600 ms (queued + served), 100 ms (the error answer), 100 ms (unsent lower bound).
        assert_eq!(t.latency.count(), 3);
        assert!(t.latency.summary().max >= 600_000 && t.latency.summary().max < 601_000);
        // Service time leaves the queueing out.
        assert_eq!(t.service.count(), 2);
        assert!(t.service.summary().max < 101_000);
        let iv = r.take_interval(2, 5);
        assert_eq!((iv.ok, iv.errors, iv.inflight, iv.queued), (2, 2, 2, 5));
        assert_eq!(iv.latency.count(), 3);
        assert_eq!(r.take_interval(0, 0).ok, 0);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Totals {
            ok: 2,
            ..Totals::default()
        };
        a.errors.insert(ErrorKind::Io, 1);
        let mut b = Totals {
            ok: 3,
            ..Totals::default()
        };
        b.errors.insert(ErrorKind::Io, 2);
        b.errors.insert(ErrorKind::Connect, 1);
        b.latency.record_us(5);
        a.merge(&b);
        assert_eq!(a.ok, 5);
        assert_eq!(a.error_count(), 4);
        assert_eq!(a.errors[&ErrorKind::Io], 3);
        assert_eq!(a.latency.count(), 1);
    }
}
