//! How long to wait before trying a request again: exponential backoff
//! with full jitter (a uniform delay between zero and `initial × 2^attempt`,
//! capped), `Retry-After` honoured, and a cap on the total time spent
//! retrying one request. Shared by the HTTP sinks (InfluxDB, webhook).

use std::time::{Duration, SystemTime};

/// Backoff settings (`'retry.*'` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Upper bound of the first delay.
    pub initial_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
    /// Give up when retrying one batch would take longer than this.
    pub max_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_time: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0 for the first retry):
    /// the server's `Retry-After` when it sent one, else full jitter.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: &mut Jitter,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let ceiling = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.max_delay);
        ceiling.mul_f64(jitter.next_unit())
    }
}

/// A `Retry-After` value: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at =
        SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at.timestamp_millis()).ok()?);
    Some(at.duration_since(now).unwrap_or_default())
}

/// A small random stream for jitter (splitmix64); no need for a
/// cryptographic generator to spread retries.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock and a per-process counter.
    pub(crate) fn from_clock() -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A fixed stream (tests).
    #[cfg(test)]
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_a_doubling_capped_ceiling() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_time: Duration::from_secs(10),
        };
        let mut jitter = Jitter::seeded(7);
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            let delays: Vec<Duration> = (0..200)
                .map(|_| policy.delay(attempt, None, &mut jitter))
                .collect();
            assert!(delays.iter().all(|d| *d < ceiling), "attempt {attempt}");
            // Full jitter: spread over the whole range, not bunched at the top.
            let low = delays.iter().filter(|d| **d < ceiling / 4).count();
            let high = delays.iter().filter(|d| **d > ceiling * 3 / 4).count();
            assert!(
                low > 20 && high > 20,
                "attempt {attempt}: {low} low, {high} high"
            );
        }
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let policy = RetryPolicy::default();
        let mut jitter = Jitter::seeded(1);
        assert_eq!(
            policy.delay(5, Some(Duration::from_secs(7)), &mut jitter),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
