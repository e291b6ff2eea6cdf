//! Latency histograms: HdrHistogram in microseconds, 3 significant digits, and the summary we print.
//!
//! Values are recorded rounded *up* to the next microsecond and percentiles are reported as the
//! highest value of their bucket, so every figure errs on the slow side (by at most 0.1% plus 1 µs).
//! The range is 1 µs to 1 hour; a slower value is recorded as 1 hour rather than dropped.

use std::time::Duration;

use hdrhistogram::Histogram;

const HIGHEST_US: u64 = 3_600_000_000;

/// A mergeable latency histogram.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    h: Histogram<u64>,
}

/// Percentiles in microseconds (0 everywhere when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        // Constant, valid bounds: creation cannot fail.
        let h = Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("constant histogram bounds");
        LatencyHistogram { h }
    }

    /// Records one latency, rounded up to the microsecond.
    pub fn record(&mut self, d: Duration) {
        let nanos = d.as_nanos();
        let us = nanos.div_ceil(1000).clamp(1, u128::from(HIGHEST_US));
        self.record_us(us as u64);
    }

    /// Records one latency given in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.h.saturating_record(us.clamp(1, HIGHEST_US));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.h.add(&other.h).is_err() {
            // Same bounds on both sides, so this does not happen; copy value by value if it does.
            for v in other.h.iter_recorded() {
                self.h
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// How many values were recorded.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// p50, p90, p99, p99.9, max and mean.
    pub fn summary(&self) -> Summary {
        if self.h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.h.len(),
            p50: self.h.value_at_quantile(0.50),
            p90: self.h.value_at_quantile(0.90),
            p99: self.h.value_at_quantile(0.99),
            p999: self.h.value_at_quantile(0.999),
            max: self.h.max(),
            mean: self.h.mean(),
        }
    }
}

/// Renders microseconds for people: `850µs`, `12.3ms`, `1.25s`.
pub fn human_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_range() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000u64 {
            h.record_us(us);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        // Within HdrHistogram's 3-digit precision, never below the true value.
        let close = |got: u64, want: u64| got >= want && got <= want + want / 500 + 1;
        assert!(close(s.p50, 5_000), "{s:?}");
        assert!(close(s.p90, 9_000), "{s:?}");
        assert!(close(s.p99, 9_900), "{s:?}");
        assert!(close(s.p999, 9_990), "{s:?}");
        assert!(close(s.max, 10_000), "{s:?}");
        assert!((s.mean - 5_000.5).abs() < 10.0, "{s:?}");
    }

    #[test]
    fn rounds_up_and_clamps() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(1));
        assert_eq!(h.summary().max, 1);
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(1_001));
        assert_eq!(h.summary().max, 2);
        let mut h = LatencyHistogram::new();
        h.record(Duration::ZERO);
        assert_eq!(h.summary().max, 1);
        h.record(Duration::from_secs(7200));
        assert!(h.summary().max >= HIGHEST_US);
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_tail() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for _ in 0..990 {
            a.record_us(100);
        }
        for _ in 0..10 {
            b.record_us(50_000);
        }
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 1000);
        assert!(s.p50 >= 100 && s.p50 < 101);
        assert!(s.p99 >= 100 && s.p99 < 101, "{s:?}");
        assert!(s.p999 >= 50_000, "{s:?}");
    }

    #[test]
    fn empty_summary_is_zero() {
        let h = LatencyHistogram::new();
        assert_eq!(h.summary(), Summary::default());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(850), "850µs");
        assert_eq!(human_us(1_234), "1.23ms");
        assert_eq!(human_us(12_345), "12.3ms");
        assert_eq!(human_us(1_250_000), "1.25s");
    }
}
