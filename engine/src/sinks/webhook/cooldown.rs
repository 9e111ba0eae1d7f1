//! The per-key cool-down: after a message for a key is sent, further rows
//! of that key within `'cooldown'` of it are suppressed (and counted), so
//! a machine that keeps failing sends one alert per period, not one per
//! window. Time is the row's event time (`'time.column'`) or, without one,
//! the wall clock when the row reaches the sink.

use std::collections::HashMap;

/// Entries are pruned once the map grows past this many keys (or twice
/// what the last pruning kept, so pruning stays linear in rows).
const PRUNE_ABOVE: usize = 10_000;

/// Last sent time per key (milliseconds).
#[derive(Debug, Default)]
pub(crate) struct CoolDown {
    period_ms: i64,
    last_sent: HashMap<String, i64>,
    latest: i64,
    prune_above: usize,
    /// Rows suppressed so far.
    pub(crate) suppressed: u64,
}

impl CoolDown {
    /// A cool-down of `period_ms` (0: every row is sent).
    pub(crate) fn new(period_ms: i64) -> Self {
        Self {
            period_ms,
            latest: i64::MIN,
            prune_above: PRUNE_ABOVE,
            ..Self::default()
        }
    }

    /// Whether a row of `key` at `at_ms` is sent (and, if so, remembered);
    /// a suppressed row is counted.
    pub(crate) fn admit(&mut self, key: &str, at_ms: i64) -> bool {
        if self.period_ms <= 0 {
            return true;
        }
        if let Some(&last) = self.last_sent.get(key)
            && at_ms.abs_diff(last) < self.period_ms.unsigned_abs()
        {
            self.suppressed += 1;
            return false;
        }
        let last = self.last_sent.entry(key.to_string()).or_insert(at_ms);
        *last = (*last).max(at_ms);
        self.latest = self.latest.max(at_ms);
        if self.last_sent.len() > self.prune_above {
            let horizon = self.latest.saturating_sub(self.period_ms);
            self.last_sent.retain(|_, last| *last > horizon);
            self.prune_above = PRUNE_ABOVE.max(2 * self.last_sent.len());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn one_message_per_key_and_period() {
        let mut c = CoolDown::new(5 * MINUTE);
        let sent: Vec<bool> = [
            ("m-1", 0),
            ("m-2", 0),
            ("m-1", MINUTE),
            ("m-1", 5 * MINUTE - 1),
            ("m-2", 2 * MINUTE),
            ("m-1", 5 * MINUTE),
            ("m-1", 7 * MINUTE),
            ("m-1", 4 * MINUTE), // late: within the period of the last sent
            ("m-2", 6 * MINUTE),
        ]
        .into_iter()
        .map(|(key, at)| c.admit(key, at))
        .collect();
        assert_eq!(
            sent,
            [true, true, false, false, false, true, false, false, true]
        );
        assert_eq!(c.suppressed, 5);
    }

    #[test]
    fn zero_period_sends_everything() {
        let mut c = CoolDown::new(0);
        assert!((0..5).all(|_| c.admit("m-1", 0)));
        assert_eq!(c.suppressed, 0);
    }

    #[test]
    fn pruning_forgets_only_expired_keys() {
        let mut c = CoolDown::new(MINUTE);
        for i in 0..PRUNE_ABOVE as i64 {
            assert!(c.admit(&format!("old-{i}"), 0));
        }
        assert_eq!(c.last_sent.len(), PRUNE_ABOVE);
        assert!(c.admit("new", 2 * MINUTE));
        assert_eq!(c.last_sent.len(), 1, "only the live key kept");
        assert!(!c.admit("new", 2 * MINUTE + 1));
    }
}
