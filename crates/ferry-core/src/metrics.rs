//! Per-workflow metrics as the engine keeps them: one [`Rollup`] of counts
//! per workflow and minute (and, summed, per hour), with a fixed-bucket
//! latency histogram good enough for p50 and p95. Pure arithmetic; the
//! engine accumulates, the store adds rollups together, alerts and charts
//! read them.

use chrono::{DateTime, Duration, DurationRound, Utc};

/// Upper bounds of the latency buckets, in milliseconds; the last bucket
/// takes everything above the one before it.
pub const LATENCY_BOUNDS_MS: [u64; BUCKETS] = [
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    15_000,
    60_000,
    300_000,
    1_800_000,
    7_200_000,
    86_400_000,
    u64::MAX,
];

/// How many latency buckets a rollup has.
pub const BUCKETS: usize = 16;

/// The counts of one workflow over one minute or one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Events that reached the workflow (accepted, not echoes).
    pub events: u64,
    /// Runs started.
    pub started: u64,
    /// Runs that ended well.
    pub succeeded: u64,
    /// Runs that failed for good (validation, a refused call).
    pub failed: u64,
    /// Runs dead-lettered after their last retry.
    pub dead: u64,
    /// Destination writes attempted (each attempt of a call with effects).
    pub writes: u64,
    /// Of those, failed or not confirmed by what came back.
    pub writes_failed: u64,
    /// Waits that reached their outcome deadline without the outcome.
    pub deadlines_missed: u64,
    /// Runs that ended, per latency bucket (creation to end).
    pub latency: [u64; BUCKETS],
    /// Sum of those latencies, milliseconds (for the mean).
    pub latency_sum_ms: u64,
}

impl Rollup {
    /// Adds `other` into this one.
    pub fn add(&mut self, other: &Self) {
        self.events += other.events;
        self.started += other.started;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.dead += other.dead;
        self.writes += other.writes;
        self.writes_failed += other.writes_failed;
        self.deadlines_missed += other.deadlines_missed;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        self.latency_sum_ms += other.latency_sum_ms;
    }

    /// Runs that ended (succeeded, failed or dead).
    pub fn ended(&self) -> u64 {
        self.succeeded + self.failed + self.dead
    }

    /// Runs that ended badly (failed or dead).
    pub fn failures(&self) -> u64 {
        self.failed + self.dead
    }

    /// Notes one run's latency.
    pub fn observe_latency(&mut self, ms: u64) {
        self.latency[bucket(ms)] += 1;
        self.latency_sum_ms = self.latency_sum_ms.saturating_add(ms);
    }

    /// The `q` quantile (0–1) of latency in milliseconds, interpolated
    /// within its bucket; none without runs.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        quantile(&self.latency, q)
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The bucket a latency falls in.
pub fn bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(BUCKETS - 1)
}

/// The `q` quantile of a bucketed histogram, interpolated linearly within
/// the bucket it falls in (the open last bucket reports its lower bound).
pub fn quantile(counts: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (i, c) in counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let (before, here) = (seen as f64, *c as f64);
        seen += c;
        #[allow(clippy::cast_precision_loss)]
        if seen as f64 >= rank {
            let low = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
            if i == BUCKETS - 1 {
                return Some(low as f64);
            }
            let high = LATENCY_BOUNDS_MS[i];
            let within = ((rank - before) / here).clamp(0.0, 1.0);
            return Some(low as f64 + (high - low) as f64 * within);
        }
    }
    None
}

/// The granularity of a stored rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// Kept 48 hours.
    Minute,
    /// Kept 90 days.
    Hour,
}

impl Span {
    /// Its length in minutes (what the store keeps in the row).
    pub fn minutes(self) -> i32 {
        match self {
            Self::Minute => 1,
            Self::Hour => 60,
        }
    }

    /// How long rollups of this span are kept.
    pub fn retention(self) -> Duration {
        match self {
            Self::Minute => Duration::hours(48),
            Self::Hour => Duration::days(90),
        }
    }

    /// The start of the span `at` falls in.
    pub fn start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let step = Duration::minutes(i64::from(self.minutes()));
        at.duration_trunc(step).unwrap_or(at)
    }
}

/// The median of some values (none when empty).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut r = Rollup::default();
        assert_eq!(r.quantile_ms(0.95), None);
        for _ in 0..95 {
            r.observe_latency(80); // 50–100 ms bucket
        }
        for _ in 0..5 {
            r.observe_latency(4_000); // 2.5–5 s bucket
        }
        let p50 = r.quantile_ms(0.5).unwrap_or_default();
        assert!((50.0..=100.0).contains(&p50), "{p50}");
        let p95 = r.quantile_ms(0.95).unwrap_or_default();
        assert!((50.0..=100.0).contains(&p95), "{p95}");
        let p99 = r.quantile_ms(0.99).unwrap_or_default();
        assert!((2_500.0..=5_000.0).contains(&p99), "{p99}");
        assert_eq!(r.latency_sum_ms, 95 * 80 + 5 * 4_000);
    }

    #[test]
    fn rollups_add_up_and_spans_align() {
        let mut a = Rollup {
            events: 2,
            failed: 1,
            ..Rollup::default()
        };
        a.observe_latency(5);
        let mut b = a;
        b.add(&a);
        assert_eq!((b.events, b.failed, b.latency[0]), (4, 2, 2));
        assert_eq!(b.failures(), 2);
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 41, 17).unwrap();
        assert_eq!(
            Span::Hour.start(at),
            Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()
        );
        assert_eq!(
            Span::Minute.start(at),
            Utc.with_ymd_and_hms(2026, 12, 4, 9, 41, 0).unwrap()
        );
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
