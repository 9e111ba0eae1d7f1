//! Checkpoints: everything a job holds for one source partition — the next
//! offset to read, the partition's watermark, each pipeline's window state
//! and the output files staged since the last checkpoint — written as one
//! object per partition and epoch ([`format`]) to object storage
//! ([`store`]).
//!
//! State is kept per source partition (like a Kafka Streams task) so that a
//! partition can move to another worker of the consumer group with its
//! state: the leaving owner checkpoints it when Kafka revokes it, the new
//! owner restores the latest complete checkpoint when Kafka assigns it.
//!
//! The order of a checkpoint (see `job/checkpointing.rs`): sinks stage their
//! output (durable, invisible) → the checkpoint object is written → staged
//! output is published → the offsets are committed to the consumer group.
//! A crash anywhere replays from the last complete checkpoint, which
//! re-publishes its staged files (idempotent) and discards newer staged
//! files, so the Parquet history is rewritten, never duplicated.

pub mod format;
pub mod store;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

pub use store::CheckpointStore;

/// One source partition's state at the end of an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionCheckpoint {
    /// The job's name.
    pub job: String,
    /// The source's checkpoint key: the table, and for Kafka its topic and
    /// group (`sensors/readings@plant-1`).
    pub source: String,
    /// The source partition.
    pub partition: i32,
    /// Counts this partition's checkpoints, across workers.
    pub epoch: u64,
    /// The first offset not covered by this state (what the consumer group
    /// gets committed: Kafka's "next offset to read").
    pub next_offset: i64,
    /// The largest event time the partition had delivered (its watermark
    /// before the delay), if any.
    pub watermark: Option<i64>,
    /// The watermark the partition's windows were closed at: its rows
    /// before it stay late after a restore (`i64::MIN`: none closed).
    pub closed_through: i64,
    /// Wall-clock milliseconds when written.
    pub created_ms: i64,
    /// Output files written during this epoch, to publish.
    pub staged: Vec<StagedFile>,
    /// Each pipeline's state (by sink name).
    pub pipelines: Vec<PipelineState>,
}

/// One pipeline's state for one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineState {
    /// The pipeline's sink (a job has one pipeline per sink).
    pub sink: String,
    /// The operator's snapshot.
    pub batches: Vec<RecordBatch>,
}

/// An output file written but not yet visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// The sink that wrote it.
    pub sink: String,
    /// Where it is now (invisible to readers).
    pub staged: String,
    /// Where publishing puts it.
    pub target: String,
}

impl PartitionCheckpoint {
    /// The state of the pipeline writing into `sink`, if any was saved.
    pub fn pipeline(&self, sink: &str) -> Option<&PipelineState> {
        self.pipelines.iter().find(|p| p.sink == sink)
    }
}
