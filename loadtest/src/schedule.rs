//! Open-loop arrivals: the fixed-rate schedule of intended send times, and a microsecond timer.
//!
//! # Coordinated omission
//! A closed-loop generator waits for an answer before it sends again, so when the server stalls
//! it also stops *asking*, and the stall shows up as one slow request instead of the hundreds that
//! real clients would have queued behind it (Gil Tene's "coordinated omission"). Here, as in wrk2,
//! the schedule is fixed in advance: arrival `k` of worker `w` (of `n`) is *intended* at
//! `start + (k·n + w) / rate`, whether or not anything is free to send it. Latency is measured
//! from that intended time, so time spent waiting for a connection — because the server is slow
//! to answer the previous requests — counts, as it would for a real caller.
//!
//! When the scheduler itself wakes late (a busy CPU), it hands out every arrival that is due at
//! once, each with its own intended time: lateness is charged to latency, never skipped, and the
//! scheduler's own lag is reported separately so a starved generator is visible.
//!
//! # Timer
//! tokio's timer wheel ticks in milliseconds, which would add up to a millisecond of error to
//! sub-millisecond latencies. [`PreciseTimer`] arms a `timerfd` (CLOCK_MONOTONIC, the clock of
//! `std::time::Instant` on Linux) and waits for it through the runtime's epoll, so a wake-up is
//! as precise as the kernel's hrtimers; [`reduce_timer_slack`] removes the default 50 µs slack.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The intended send times of one worker's share of a fixed total rate.
#[derive(Debug, Clone)]
pub struct RateSchedule {
    start: Instant,
    /// Nanoseconds between two arrivals of the whole run (all workers).
    gap_ns: f64,
    workers: u64,
    worker: u64,
    next: u64,
}

impl RateSchedule {
    /// Worker `worker` of `workers` sharing `rate` arrivals per second from `start`.
    pub fn new(start: Instant, rate: f64, workers: usize, worker: usize) -> Self {
        RateSchedule {
            start,
            gap_ns: 1e9 / rate.max(1e-9),
            workers: workers.max(1) as u64,
            worker: worker as u64,
            next: 0,
        }
    }

    /// The intended time of this worker's arrival number `k`.
    pub fn at(&self, k: u64) -> Instant {
        let global = k * self.workers + self.worker;
        self.start + Duration::from_nanos((global as f64 * self.gap_ns) as u64)
    }

    /// The intended time of the next arrival, without taking it.
    pub fn peek(&self) -> Instant {
        self.at(self.next)
    }

    /// Takes the next arrival: its run-wide sequence number and intended time.
    pub fn take(&mut self) -> (u64, Instant) {
        let seq = self.next * self.workers + self.worker;
        let at = self.at(self.next);
        self.next += 1;
        (seq, at)
    }

    /// Takes every arrival intended at or before `now` and before `end`.
    pub fn take_due(&mut self, now: Instant, end: Instant, out: &mut Vec<(u64, Instant)>) {
        while self.peek() <= now && self.peek() < end {
            out.push(self.take());
        }
    }
}

/// A one-shot timer on a `timerfd`, awaited through the tokio reactor.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// A disarmed timer. Needs a tokio runtime with IO enabled.
    pub fn new() -> io::Result<Self> {
        // Safety: timerfd_create takes no pointers; a non-negative result is a new fd we own.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // Safety: `raw` is a valid, open fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Safety: the OwnedFd moves into the AsyncFd, which alone owns it until dropped, so the
        // fd stays open and the same for the registration's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(PreciseTimer { fd })
    }

    /// Waits until `deadline` (returns at once if it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        let fd = self.fd.get_ref().as_raw_fd();
        // Safety: `fd` is our open timerfd; `spec` is a valid itimerspec; old value not wanted.
        if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = 0u64;
            // Safety: reads at most 8 bytes into a u64 we own.
            let n = unsafe {
                libc::read(
                    fd,
                    (&mut expirations as *mut u64).cast::<libc::c_void>(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(err);
        }
    }
}

/// Asks the kernel for 1 ns timer slack on this thread (best effort; the default is 50 µs).
pub fn reduce_timer_slack() {
    // Safety: PR_SET_TIMERSLACK takes an integer argument and touches only this thread's settings.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_evenly_spaced_and_interleaved_across_workers() {
        let start = Instant::now();
        // 1000/s over 4 workers: the whole run has one arrival per ms, worker w takes every 4th.
        let mut all = Vec::new();
        for w in 0..4 {
            let mut s = RateSchedule::new(start, 1000.0, 4, w);
            for _ in 0..250 {
                all.push(s.take());
            }
        }
        all.sort();
        for (i, (seq, at)) in all.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(at.duration_since(start), Duration::from_millis(i as u64));
        }
    }

    #[test]
    fn a_late_wakeup_gets_every_due_arrival_with_its_own_time() {
        let start = Instant::now();
        let mut s = RateSchedule::new(start, 100.0, 1, 0);
        let end = start + Duration::from_secs(1);
        let mut due = Vec::new();
        // Woken 55 ms late: arrivals 0..=5 are due (0, 10, ..., 50 ms), none are dropped or merged.
        s.take_due(start + Duration::from_millis(55), end, &mut due);
        let offsets: Vec<u128> = due
            .iter()
            .map(|(_, at)| at.duration_since(start).as_millis())
            .collect();
        assert_eq!(offsets, [0, 10, 20, 30, 40, 50]);
        assert_eq!(s.peek().duration_since(start), Duration::from_millis(60));
        // Nothing at or after the end is handed out.
        due.clear();
        s.take_due(start + Duration::from_secs(5), end, &mut due);
        assert_eq!(due.len(), 94);
        assert_eq!(
            due.last().map(|(seq, _)| *seq),
            Some(99),
            "the last arrival is the one at 990 ms"
        );
    }

    #[test]
    fn fractional_rates_do_not_drift() {
        let start = Instant::now();
        let s = RateSchedule::new(start, 3.0, 1, 0);
        // 3/s: arrival 3000 is at exactly 1000 s (no accumulated rounding).
        let d = s.at(3000).duration_since(start);
        assert!(d >= Duration::from_millis(999_999) && d <= Duration::from_secs(1000));
    }

    #[test]
    fn precise_timer_wakes_close_to_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reduce_timer_slack();
            let mut t = PreciseTimer::new().unwrap();
            let mut worst = Duration::ZERO;
            for _ in 0..20 {
                let deadline = Instant::now() + Duration::from_micros(300);
                t.sleep_until(deadline).await.unwrap();
                let now = Instant::now();
                assert!(now >= deadline);
                worst = worst.max(now - deadline);
            }
            // Generous for a loaded 2-core CI box; tokio's ms timer would be ~1 ms late here.
            assert!(
                worst < Duration::from_millis(20),
                "worst lateness {worst:?}"
            );
            // A deadline in the past returns at once.
            t.sleep_until(Instant::now() - Duration::from_millis(1))
                .await
                .unwrap();
        });
    }
}
