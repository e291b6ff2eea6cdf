//! Lock-free rate limiting: GCRA (the generic cell rate algorithm) on one atomic per bucket.
//!
//! A bucket is the "theoretical arrival time" (TAT) of the next request, in nanoseconds since the
//! limiter's epoch. A request at `now` is admitted when `TAT - burst_window <= now`, and moves TAT to
//! `max(TAT, now) + interval`; one compare-and-swap does it, so every shard charges the same bucket
//! with no lock and the configured rate holds across shards. Unauthenticated clients are bucketed
//! by IP in a fixed table of atomics (collisions share a bucket: stricter, never looser).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A rate: `per_second` sustained, `burst` requests at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Nanoseconds between requests at the sustained rate.
    interval_ns: u64,
    /// How far ahead of now the TAT may run: (burst - 1) intervals.
    tolerance_ns: u64,
}

impl Rate {
    /// `None` when the rate is not positive (no limit).
    pub fn new(per_second: f64, burst: u32) -> Option<Rate> {
        if per_second.is_nan() || per_second <= 0.0 || !per_second.is_finite() {
            return None;
        }
        let interval_ns = (1e9 / per_second).max(1.0) as u64;
        let burst = burst.max(1) as u64;
        Some(Rate {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst - 1),
        })
    }
}

/// The outcome of charging a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the earliest time a retry can succeed.
    Deny {
        retry_after: Duration,
    },
}

/// One bucket.
#[derive(Debug, Default)]
pub struct Bucket {
    tat: AtomicU64,
}

impl Bucket {
    /// Would a charge at `now_ns` be refused? Looks, charges nothing.
    pub fn peek(&self, rate: &Rate, now_ns: u64) -> Verdict {
        let base = self.tat.load(Ordering::Relaxed).max(now_ns);
        match base.saturating_sub(now_ns).checked_sub(rate.tolerance_ns) {
            Some(wait) if wait > 0 => Verdict::Deny {
                retry_after: Duration::from_nanos(wait),
            },
            _ => Verdict::Allow,
        }
    }

    /// Charge one request at `now_ns` (nanoseconds since the limiter's epoch).
    pub fn charge(&self, rate: &Rate, now_ns: u64) -> Verdict {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now_ns);
            if base.saturating_sub(now_ns) > rate.tolerance_ns {
                let wait = base - now_ns - rate.tolerance_ns;
                return Verdict::Deny {
                    retry_after: Duration::from_nanos(wait),
                };
            }
            let next = base + rate.interval_ns;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Verdict::Allow,
                Err(current) => tat = current,
            }
        }
    }
}

/// The clock every bucket is measured against.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(Instant);

impl Default for Epoch {
    fn default() -> Self {
        Epoch(Instant::now())
    }
}

impl Epoch {
    pub fn now_ns(&self) -> u64 {
        // Offset by one second so that a bucket at 0 starts full.
        self.0.elapsed().as_nanos() as u64 + 1_000_000_000
    }
}

/// Buckets by a hashed key (the IP of a client without credentials, a token's subject): a fixed
/// table; keys that collide share a bucket (stricter, never looser).
pub struct IpBuckets {
    slots: Box<[Bucket]>,
    hasher: ahash::RandomState,
}

impl IpBuckets {
    pub fn new(slots: usize) -> IpBuckets {
        let n = slots.max(1).next_power_of_two();
        IpBuckets {
            slots: (0..n).map(|_| Bucket::default()).collect(),
            hasher: ahash::RandomState::new(),
        }
    }

    pub fn bucket(&self, key: impl std::hash::Hash) -> &Bucket {
        let h = self.hasher.hash_one(key) as usize;
        &self.slots[h & (self.slots.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_rate() {
        let rate = Rate::new(10.0, 5).unwrap();
        let b = Bucket::default();
        let t0 = 10 * S;
        for _ in 0..5 {
            assert_eq!(b.charge(&rate, t0), Verdict::Allow);
        }
        match b.charge(&rate, t0) {
            Verdict::Deny { retry_after } => assert_eq!(retry_after, Duration::from_millis(100)),
            v => panic!("{v:?}"),
        }
        // 100 ms later exactly one more.
        assert_eq!(b.charge(&rate, t0 + S / 10), Verdict::Allow);
        assert!(matches!(b.charge(&rate, t0 + S / 10), Verdict::Deny { .. }));
        // Over a long run the admitted count is rate × time + burst.
        let mut admitted = 0;
        for ms in 0..10_000u64 {
            if b.charge(&rate, t0 + S + ms * 1_000_000) == Verdict::Allow {
                admitted += 1;
            }
        }
        assert!((100..=105).contains(&admitted), "{admitted}");
    }

    #[test]
    fn no_rate_means_no_limit() {
        assert!(Rate::new(0.0, 10).is_none());
        assert!(Rate::new(f64::NAN, 10).is_none());
    }

    #[test]
    fn shared_across_threads_without_a_lock() {
        let rate = Rate::new(1000.0, 1).unwrap();
        let b = std::sync::Arc::new(Bucket::default());
        let t = 5 * S;
        let admitted: usize = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|i| b.charge(&rate, t + i * 1_000_000) == Verdict::Allow)
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum();
        // 1 s of simulated time at 1000/s, whatever the interleaving: about 1000, never 4000.
        assert!((990..=1010).contains(&admitted), "{admitted}");
    }
}
