//! Commit latency of the Parquet sink: for each batch written into a file,
//! the time from its `write` call (the run loop calls it right when it emits
//! closed windows) to the completion of that file's upload (when the rows
//! become durable and visible to readers).
//!
//! Quantiles are weighted by rows: a batch of 10,000 window rows counts
//! 10,000 times, so `p99` is the latency 99 % of the rows were within. Only
//! files committed while the job runs (rolled by time or size) are counted;
//! files completed by `close()` at shutdown are counted apart, as their
//! latency says when the job stopped, not how the sink behaves.

use std::time::{Duration, Instant};

/// Batches written into one open file: when, and how many rows.
#[derive(Debug, Default)]
pub(super) struct PendingWrites {
    writes: Vec<(Instant, u64)>,
}

impl PendingWrites {
    /// Notes a batch of `rows` accepted at `at`.
    pub(super) fn push(&mut self, at: Instant, rows: u64) {
        self.writes.push((at, rows));
    }
}

/// Latencies of every committed batch.
#[derive(Debug, Default)]
pub(super) struct CommitLatency {
    /// (latency, rows) per batch of a file committed while running.
    samples: Vec<(Duration, u64)>,
    /// Batches and rows whose file was completed by `close()`.
    at_close: (u64, u64),
}

impl CommitLatency {
    /// Records the batches of a file committed at `committed`; `at_close`
    /// when the commit was forced by closing the sink.
    pub(super) fn committed(&mut self, pending: PendingWrites, committed: Instant, at_close: bool) {
        for (written, rows) in pending.writes {
            if at_close {
                self.at_close.0 += 1;
                self.at_close.1 += rows;
            } else {
                self.samples
                    .push((committed.saturating_duration_since(written), rows));
            }
        }
    }

    /// One line for the log: row-weighted p50/p99 and the maximum, in ms.
    pub(super) fn summary_line(&self, sink: &str) -> String {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let rows: u64 = sorted.iter().map(|(_, r)| r).sum();
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_string(),
                |d| format!("{:.1}", d.as_secs_f64() * 1e3),
            )
        };
        format!(
            "parquet: commit latency sink={sink} p50={}ms p99={}ms max={}ms batches={} rows={} \
             closed_batches={} closed_rows={}",
            ms(quantile(&sorted, rows, 0.50)),
            ms(quantile(&sorted, rows, 0.99)),
            ms(sorted.last().map(|(d, _)| *d)),
            sorted.len(),
            rows,
            self.at_close.0,
            self.at_close.1,
        )
    }
}

/// The smallest latency that at least `q` of the `total` rows are within
/// (`sorted` by latency).
fn quantile(sorted: &[(Duration, u64)], total: u64, q: f64) -> Option<Duration> {
    let target = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (latency, rows) in sorted {
        seen += rows;
        if seen >= target {
            return Some(*latency);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_weighted_by_rows() {
        let start = Instant::now();
        let mut latency = CommitLatency::default();
        let mut pending = PendingWrites::default();
        pending.push(start, 98);
        pending.push(start + Duration::from_millis(900), 1);
        pending.push(start + Duration::from_millis(990), 1);
        latency.committed(pending, start + Duration::from_secs(1), false);
        let line = latency.summary_line("t");
        assert!(line.contains("p50=1000.0ms"), "{line}");
        assert!(line.contains("p99=1000.0ms"), "{line}");
        assert!(line.contains("max=1000.0ms batches=3 rows=100"), "{line}");
    }

    #[test]
    fn commits_at_close_are_counted_apart() {
        let start = Instant::now();
        let mut latency = CommitLatency::default();
        let mut pending = PendingWrites::default();
        pending.push(start, 5);
        latency.committed(pending, start, true);
        let line = latency.summary_line("t");
        assert!(line.contains("p50=-ms"), "{line}");
        assert!(
            line.contains("batches=0 rows=0 closed_batches=1 closed_rows=5"),
            "{line}"
        );
    }

    #[test]
    fn quantile_of_a_small_tail() {
        let sorted = [
            (Duration::from_millis(10), 989),
            (Duration::from_millis(20), 10),
            (Duration::from_millis(30), 1),
        ];
        assert_eq!(
            quantile(&sorted, 1000, 0.99),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            quantile(&sorted, 1000, 0.5),
            Some(Duration::from_millis(10))
        );
        assert_eq!(quantile(&[], 0, 0.5), None);
    }
}
