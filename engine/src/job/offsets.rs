//! Which source offsets are safe to commit to the consumer group.
//!
//! A committed offset means "everything before it is done": on restart the
//! group resumes there. A micro-batch of one partition is done once its rows
//! are in durable output, i.e. no pipeline still holds state for them. Each
//! pipeline reports the oldest event time it holds (an open window's start,
//! an unreleased `OVER` row); a batch whose newest row is older than that,
//! and every batch before it in the same partition, is done. Out-of-order
//! rows make this conservative (a batch waits for its newest row), never
//! wrong. Until checkpoints exist, state is rebuilt by re-reading, so this is
//! at-least-once.

use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, Copy)]
struct Processed {
    next_offset: i64,
    newest_event_time: Option<i64>,
}

/// Processed batches per partition, oldest first.
#[derive(Debug, Default)]
pub struct OffsetLedger {
    partitions: BTreeMap<i32, VecDeque<Processed>>,
}

impl OffsetLedger {
    /// Records a processed batch of `partition` ending before `next_offset`
    /// whose newest event time was `newest_event_time` (`None`: no rows with
    /// a time, e.g. only bad records, or a source without a watermark).
    pub fn record(&mut self, partition: i32, next_offset: i64, newest_event_time: Option<i64>) {
        self.partitions
            .entry(partition)
            .or_default()
            .push_back(Processed {
                next_offset,
                newest_event_time,
            });
    }

    /// Forgets and returns, per partition, the offset after the longest run
    /// of batches whose rows are all older than `horizon` (the oldest event
    /// time any pipeline still holds; `i64::MAX` when none holds any).
    pub fn take_committable(&mut self, horizon: i64) -> Vec<(i32, i64)> {
        let mut offsets = Vec::new();
        for (partition, queue) in &mut self.partitions {
            let mut next = None;
            while let Some(front) = queue.front() {
                if front.newest_event_time.is_some_and(|t| t >= horizon) {
                    break;
                }
                next = Some(front.next_offset);
                queue.pop_front();
            }
            if let Some(offset) = next {
                offsets.push((*partition, offset));
            }
        }
        offsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_for_its_newest_row_and_holds_later_batches() {
        let mut ledger = OffsetLedger::default();
        ledger.record(0, 10, Some(100));
        ledger.record(0, 20, Some(300));
        ledger.record(0, 30, Some(150));
        ledger.record(1, 5, None);
        assert_eq!(ledger.take_committable(200), vec![(0, 10), (1, 5)]);
        assert_eq!(ledger.take_committable(200), vec![]);
        assert_eq!(ledger.take_committable(301), vec![(0, 30)]);
    }

    #[test]
    fn nothing_held_commits_everything() {
        let mut ledger = OffsetLedger::default();
        ledger.record(3, 7, Some(i64::MAX - 1));
        assert_eq!(ledger.take_committable(i64::MAX), vec![(3, 7)]);
    }
}
