//! When a failed delivery is tried again.

use std::time::Duration;

use casewire_events::Priority;

/// The retry schedule: a base delay per priority, doubled per counted attempt, with jitter, capped.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The first delay of each priority, indexed by [`Priority::rank`].
    pub base: [Duration; 4],
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// Relative jitter: 0.2 spreads each delay uniformly over ±20 %.
    pub jitter: f64,
    /// Counted attempts an event may fail before it is dead-lettered (`MAX_RETRIES`).
    pub max_retries: u32,
}

/// The guide's `RETRY_INTERVAL` default: 10 s.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// The guide's `MAX_RETRIES` default.
pub const DEFAULT_MAX_RETRIES: u32 = 10;

impl RetryPolicy {
    /// The schedule derived from the guide's `RETRY_INTERVAL` (the medium base): high retries at
    /// half of it, low at three times it, critical at a hundredth (≈ immediate). With the default
    /// 10 s that is the guide's table: critical 100 ms, high 5 s, medium 10 s, low 30 s.
    pub fn from_interval(retry_interval: Duration, max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            base: [
                retry_interval / 100,
                retry_interval / 2,
                retry_interval,
                retry_interval * 3,
            ],
            max_delay: Duration::from_secs(300).max(retry_interval),
            jitter: 0.2,
            max_retries,
        }
    }

    /// The medium base, reported as the guide's `retryInterval`.
    pub fn retry_interval(&self) -> Duration {
        self.base[usize::from(Priority::Medium.rank())]
    }

    /// The delay before the next try of an event of `priority` that has now failed `attempts`
    /// counted times (1 or more). `unit` is a random number in [-1, 1] scaled by the jitter.
    pub fn delay(&self, priority: Priority, attempts: u32, unit: f64) -> Duration {
        let base = self.base[usize::from(priority.rank())];
        let doublings = attempts.saturating_sub(1).min(30);
        let raw = base.saturating_mul(1 << doublings).min(self.max_delay);
        let factor = 1.0 + self.jitter * unit.clamp(-1.0, 1.0);
        raw.mul_f64(factor.max(0.0)).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::from_interval(DEFAULT_RETRY_INTERVAL, DEFAULT_MAX_RETRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn default_bases_follow_the_guides_priority_table() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(Priority::Critical, 1, 0.0), secs(0.1));
        assert_eq!(policy.delay(Priority::High, 1, 0.0), secs(5.0));
        assert_eq!(policy.delay(Priority::Medium, 1, 0.0), secs(10.0));
        assert_eq!(policy.delay(Priority::Low, 1, 0.0), secs(30.0));
        assert_eq!(policy.retry_interval(), secs(10.0));
    }

    #[test]
    fn delays_double_per_attempt_until_the_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (1..=7)
            .map(|n| policy.delay(Priority::Medium, n, 0.0))
            .collect();
        assert_eq!(
            delays,
            [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0].map(secs)
        );
        assert_eq!(policy.delay(Priority::Low, 1000, 0.0), secs(300.0));
    }

    #[test]
    fn jitter_spreads_twenty_percent_either_way_but_never_past_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(Priority::High, 1, -1.0), secs(4.0));
        assert_eq!(policy.delay(Priority::High, 1, 1.0), secs(6.0));
        assert_eq!(policy.delay(Priority::High, 20, 1.0), secs(300.0));
        assert_eq!(policy.delay(Priority::High, 1, 7.0), secs(6.0));
    }

    #[test]
    fn a_short_interval_scales_every_priority() {
        let policy = RetryPolicy::from_interval(Duration::from_millis(20), 3);
        assert_eq!(
            policy.delay(Priority::High, 1, 0.0),
            Duration::from_millis(10)
        );
        assert_eq!(
            policy.delay(Priority::Low, 2, 0.0),
            Duration::from_millis(120)
        );
        assert_eq!(policy.max_retries, 3);
    }
}
