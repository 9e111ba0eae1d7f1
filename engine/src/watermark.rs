//! Event-time progress. Each source partition's watermark is the largest
//! event time it has delivered minus the declared delay; the job watermark is
//! the minimum over active partitions. A partition that has delivered nothing
//! for the idle timeout stops holding the job back; when every partition is
//! idle, the job watermark is the largest partition watermark, so a factory
//! that goes quiet still gets its windows closed. At the end of input the
//! watermark jumps to +∞ and every window closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Per-partition watermarks and the job watermark derived from them.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    delay: i64,
    idle_timeout: Duration,
    partitions: BTreeMap<i32, PartitionProgress>,
    /// Partitions the source knows have unread records: never idle, however
    /// long their records take to arrive (a slow job, a full queue).
    backlogged: std::collections::BTreeSet<i32>,
    finished: bool,
    /// Never moves backwards.
    current: i64,
}

#[derive(Debug, Clone)]
struct PartitionProgress {
    max_event_time: i64,
    last_data: Instant,
}

impl WatermarkTracker {
    /// A tracker whose watermark trails event time by `delay` (in the event
    /// time's unit).
    pub fn new(delay: i64, idle_timeout: Duration) -> Self {
        Self {
            delay,
            idle_timeout,
            partitions: BTreeMap::new(),
            backlogged: std::collections::BTreeSet::new(),
            finished: false,
            current: i64::MIN,
        }
    }

    /// Records that `partition` delivered rows up to `max_event_time`.
    pub fn observe(&mut self, partition: i32, max_event_time: i64, now: Instant) {
        let p = self
            .partitions
            .entry(partition)
            .or_insert(PartitionProgress {
                max_event_time: i64::MIN,
                last_data: now,
            });
        p.max_event_time = p.max_event_time.max(max_event_time);
        p.last_data = now;
    }

    /// Registers a partition that has delivered nothing yet (it holds the
    /// watermark back until it delivers or goes idle).
    pub fn assign(&mut self, partition: i32, now: Instant) {
        self.partitions
            .entry(partition)
            .or_insert(PartitionProgress {
                max_event_time: i64::MIN,
                last_data: now,
            });
    }

    /// The largest event time `partition` has delivered, if any.
    pub fn partition_max(&self, partition: i32) -> Option<i64> {
        self.partitions
            .get(&partition)
            .map(|p| p.max_event_time)
            .filter(|t| *t != i64::MIN)
    }

    /// Takes over a checkpointed partition's progress.
    pub fn restore(&mut self, partition: i32, max_event_time: Option<i64>, now: Instant) {
        self.assign(partition, now);
        if let Some(t) = max_event_time {
            self.observe(partition, t, now);
        }
    }

    /// Forgets a partition that moved to another worker.
    pub fn remove(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// The partitions with unread records, as the source last saw them.
    pub fn set_backlogged(&mut self, partitions: &[i32]) {
        self.backlogged = partitions.iter().copied().collect();
    }

    /// Marks the end of input: every window may close.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The job watermark at `now`: every row with an event time at or below
    /// it is considered late.
    pub fn watermark(&mut self, now: Instant) -> i64 {
        if self.finished {
            self.current = i64::MAX;
            return i64::MAX;
        }
        let mark = |p: &PartitionProgress| p.max_event_time.saturating_sub(self.delay);
        let active: Vec<i64> = self
            .partitions
            .iter()
            .filter(|(id, p)| {
                now.duration_since(p.last_data) < self.idle_timeout || self.backlogged.contains(id)
            })
            .map(|(_, p)| mark(p))
            .collect();
        let candidate = match active.iter().min() {
            Some(&min) => min,
            None => self.partitions.values().map(mark).max().unwrap_or(i64::MIN),
        };
        self.current = self.current.max(candidate);
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_active_partition_holds_the_watermark() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(5, Duration::from_secs(10));
        w.observe(0, 100, t0);
        w.observe(1, 50, t0);
        assert_eq!(w.watermark(t0), 45);
        w.observe(1, 80, t0);
        assert_eq!(w.watermark(t0), 75);
    }

    #[test]
    fn an_idle_partition_stops_holding_it_back() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(0, Duration::from_secs(10));
        w.observe(0, 10, t0);
        w.observe(1, 100, t0 + Duration::from_secs(8));
        assert_eq!(w.watermark(t0 + Duration::from_secs(9)), 10);
        assert_eq!(w.watermark(t0 + Duration::from_secs(11)), 100);
    }

    #[test]
    fn a_partition_with_unread_records_is_never_idle() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(0, Duration::from_secs(10));
        w.observe(0, 10, t0);
        w.observe(1, 100, t0 + Duration::from_secs(20));
        w.set_backlogged(&[0]);
        assert_eq!(
            w.watermark(t0 + Duration::from_secs(25)),
            10,
            "0 still has records to deliver"
        );
        w.set_backlogged(&[]);
        assert_eq!(w.watermark(t0 + Duration::from_secs(25)), 100);
    }

    #[test]
    fn all_idle_takes_the_largest_and_it_never_goes_back() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(0, Duration::from_secs(1));
        w.observe(0, 10, t0);
        w.observe(1, 30, t0);
        assert_eq!(w.watermark(t0 + Duration::from_secs(5)), 30);
        w.observe(0, 12, t0 + Duration::from_secs(6));
        assert_eq!(
            w.watermark(t0 + Duration::from_secs(6)),
            30,
            "never backwards"
        );
    }

    #[test]
    fn an_assigned_silent_partition_holds_until_idle_and_finish_releases_all() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(0, Duration::from_secs(10));
        w.assign(1, t0);
        w.observe(0, 10, t0);
        assert_eq!(w.watermark(t0), i64::MIN);
        w.finish();
        assert_eq!(w.watermark(t0), i64::MAX);
    }
}
