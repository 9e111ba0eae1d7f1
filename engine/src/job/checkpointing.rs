//! Checkpoints in the run loop (the format and store are in
//! `crate::checkpoint`).
//!
//! A partition's checkpoint, in order: every sink stages the partition's
//! output (durable, not visible) → the checkpoint object is written (offset,
//! watermark, window state, staged files) → the sinks publish the staged
//! files → the offset is committed to the consumer group, so Kafka's lag
//! tools show the job's true lag. Restoring runs the publish again and
//! discards anything staged later (a crashed attempt's output).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::Job;
use super::upgrade::Carry;
use crate::checkpoint::store::Latest;
use crate::checkpoint::{CheckpointStore, PartitionCheckpoint, PipelineState};
use crate::error::{EngineError, Result};
use crate::sinks::Origin;
use crate::sources::{CheckpointLookup, SourceHandle};

/// A checkpointed source partition this worker owns.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    /// The newest checkpoint epoch written for it (by anyone).
    pub epoch: u64,
    /// The largest watermark the partition's windows were closed at (kept
    /// across restores: what was emitted stays emitted).
    pub closed_through: i64,
    /// The first offset not yet processed (`None`: nothing read yet and no
    /// checkpoint).
    pub next_offset: Option<i64>,
}

impl Default for Task {
    fn default() -> Self {
        Self {
            epoch: 0,
            closed_through: i64::MIN,
            next_offset: None,
        }
    }
}

/// The watermark below which `partition`'s rows are late whatever the
/// job's watermark (`i64::MIN` when not checkpointed).
pub fn closed_through(job: &Job, source: usize, partition: i32) -> i64 {
    job.sources[source]
        .tasks
        .as_ref()
        .and_then(|t| t.get(&partition))
        .map_or(i64::MIN, |t| t.closed_through)
}

/// Records that the source's windows were closed at `watermark`.
pub fn closed(job: &mut Job, source: usize, watermark: i64) {
    if let Some(tasks) = job.sources[source].tasks.as_mut() {
        for task in tasks.values_mut() {
            task.closed_through = task.closed_through.max(watermark);
        }
    }
}

/// The lookup a Kafka source runs when a partition is assigned (on its own
/// thread, with a small runtime of its own: the job's may be busy).
pub fn lookup(store: &CheckpointStore, source: &str) -> CheckpointLookup {
    let store = store.clone();
    let source = source.to_string();
    Arc::new(move |partition| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EngineError::io("starting the checkpoint lookup"))?;
        let latest = runtime.block_on(store.latest(&source, partition));
        tracing::debug!(
            %source, partition,
            found = ?latest.as_ref().map(|l| (l.newest_epoch, l.checkpoint.as_ref().map(|c| c.epoch))),
            "checkpoint lookup"
        );
        latest
    })
}

/// The origin of rows from `partition` of source `source`: the epoch its
/// next checkpoint closes.
pub fn origin(job: &Job, source: usize, partition: i32) -> Option<Origin> {
    let runtime = &job.sources[source];
    let task = runtime.tasks.as_ref()?.get(&partition)?;
    Some(Origin {
        source: runtime.name.clone(),
        partition,
        epoch: task.epoch + 1,
    })
}

/// Takes over newly assigned partitions: restores each from its checkpoint
/// (or starts it empty), and forgets partitions no longer assigned.
pub async fn assigned(
    job: &mut Job,
    source: usize,
    partitions: &[i32],
    restored: BTreeMap<i32, Latest>,
) -> Result<()> {
    let now = Instant::now();
    let held: Vec<i32> = job.sources[source]
        .tasks
        .as_ref()
        .map(|t| t.keys().copied().collect())
        .unwrap_or_default();
    for gone in held.iter().filter(|p| !partitions.contains(p)) {
        forget(job, source, *gone);
    }
    for &partition in partitions {
        job.sources[source].watermark.assign(partition, now);
    }
    for (partition, latest) in restored {
        restore(job, source, partition, latest).await?;
    }
    Ok(())
}

async fn restore(job: &mut Job, source: usize, partition: i32, latest: Latest) -> Result<()> {
    let name = job.sources[source].name.clone();
    forget(job, source, partition);
    // The partition holds the watermark back from now on, at its
    // checkpointed progress if it has one.
    let progress = latest.checkpoint.as_ref().and_then(|c| c.watermark);
    job.sources[source]
        .watermark
        .restore(partition, progress, Instant::now());
    let mut task = Task {
        epoch: latest.newest_epoch,
        ..Task::default()
    };
    if let Some(checkpoint) = &latest.checkpoint {
        // The checkpoint's output is the previous run's, complete whatever
        // the edited SQL: published even if its state is refused below.
        publish(job, &checkpoint.staged).await?;
        let carry = super::upgrade::plan_restore(job, &name, partition, checkpoint)?;
        for (index, pipeline) in job.pipelines.iter_mut().enumerate() {
            if pipeline.source != name {
                continue;
            }
            let state = match carry.get(&index) {
                Some(Carry::Reset) => &[][..],
                Some(Carry::Reordered(batches)) => &batches[..],
                None => checkpoint
                    .pipeline(&pipeline.sink)
                    .map_or(&[][..], |s| &s.batches[..]),
            };
            pipeline
                .restore(partition, state, checkpoint.closed_through)
                .map_err(EngineError::datafusion(format!(
                    "restoring partition {partition} of {name} into {} from checkpoint epoch {}",
                    pipeline.sink, checkpoint.epoch
                )))?;
        }
        task.next_offset = Some(checkpoint.next_offset);
        task.closed_through = checkpoint.closed_through;
        tracing::info!(
            source = %name, partition, epoch = checkpoint.epoch, offset = checkpoint.next_offset,
            "restored from checkpoint"
        );
    }
    let origin = Origin {
        source: name,
        partition,
        epoch: task.epoch + 1,
    };
    for (sink_name, sink) in &mut job.sinks {
        sink.discard_staged(&origin)
            .await
            .map_err(|e| in_sink(e, sink_name))?;
    }
    job.late.discard_staged(&origin)?;
    job.dead_letter.discard_staged(&origin)?;
    if let Some(tasks) = job.sources[source].tasks.as_mut() {
        tasks.insert(partition, task);
    }
    Ok(())
}

fn in_sink(error: EngineError, sink: &str) -> EngineError {
    match error {
        e @ (EngineError::Sink { .. } | EngineError::Checkpoint { .. }) => e,
        other => EngineError::Sink {
            sink: sink.to_string(),
            message: other.to_string(),
        },
    }
}

/// Drops a partition's state (it moved to another worker).
pub fn forget(job: &mut Job, source: usize, partition: i32) {
    let name = job.sources[source].name.clone();
    for pipeline in job.pipelines.iter_mut().filter(|p| p.source == name) {
        pipeline.forget(partition);
    }
    job.sources[source].watermark.remove(partition);
    if let Some(tasks) = job.sources[source].tasks.as_mut() {
        tasks.remove(&partition);
    }
}

/// Checkpoints `partitions` of source `source` (all it owns when `None`)
/// and commits their offsets.
pub async fn checkpoint(
    job: &mut Job,
    source: usize,
    partitions: Option<&[i32]>,
    handle: &SourceHandle,
) -> Result<()> {
    let Some(store) = job.checkpoints.clone() else {
        return Ok(());
    };
    let owned: Vec<i32> = match (partitions, job.sources[source].tasks.as_ref()) {
        (_, None) => return Ok(()),
        (Some(some), Some(tasks)) => some
            .iter()
            .copied()
            .filter(|p| tasks.contains_key(p))
            .collect(),
        (None, Some(tasks)) => tasks.keys().copied().collect(),
    };
    let mut commits = Vec::new();
    for partition in owned {
        if let Some(offset) = checkpoint_partition(job, &store, source, partition).await? {
            commits.push((partition, offset));
        }
    }
    handle.commit(commits);
    Ok(())
}

async fn checkpoint_partition(
    job: &mut Job,
    store: &CheckpointStore,
    source: usize,
    partition: i32,
) -> Result<Option<i64>> {
    let Some(origin) = origin(job, source, partition) else {
        return Ok(None);
    };
    let Some(next_offset) = job.sources[source]
        .tasks
        .as_ref()
        .and_then(|t| t.get(&partition))
        .and_then(|t| t.next_offset)
    else {
        return Ok(None); // nothing read and nothing restored: nothing to keep
    };
    let mut staged = Vec::new();
    for (name, sink) in &mut job.sinks {
        staged.extend(sink.stage(&origin).await.map_err(|e| in_sink(e, name))?);
    }
    staged.extend(job.late.stage(&origin)?);
    staged.extend(job.dead_letter.stage(&origin)?);
    let mut pipelines = Vec::new();
    for pipeline in job
        .pipelines
        .iter_mut()
        .filter(|p| p.source == origin.source)
    {
        let batches = pipeline
            .snapshot(partition)
            .map_err(EngineError::datafusion(format!(
                "checkpointing partition {partition} of {}",
                pipeline.sink
            )))?;
        pipelines.push(PipelineState {
            sink: pipeline.sink.clone(),
            batches,
        });
    }
    let key = job.sources[source].checkpoint_key.clone();
    let checkpoint = PartitionCheckpoint {
        job: job.name.clone(),
        source: key.clone(),
        partition,
        epoch: origin.epoch,
        next_offset,
        watermark: job.sources[source].watermark.partition_max(partition),
        closed_through: closed_through(job, source, partition),
        created_ms: chrono::Utc::now().timestamp_millis(),
        staged,
        pipelines,
    };
    crash_point("before-checkpoint");
    store.write(&checkpoint).await?;
    if let Some(task) = job.sources[source]
        .tasks
        .as_mut()
        .and_then(|t| t.get_mut(&partition))
    {
        task.epoch = origin.epoch;
    }
    crash_point("before-publish");
    publish(job, &checkpoint.staged).await?;
    store.prune(&key, partition).await?;
    Ok(Some(next_offset))
}

/// Makes staged output visible: every sink's files and the side outputs'.
async fn publish(job: &mut Job, staged: &[crate::checkpoint::StagedFile]) -> Result<()> {
    for (name, sink) in &mut job.sinks {
        sink.publish(staged).await.map_err(|e| in_sink(e, name))?;
    }
    job.late.publish(staged)?;
    job.dead_letter.publish(staged)
}

/// Fault injection for the recovery tests: with `SPINDLE_CRASH_AT=<point>`
/// the process aborts there (no cleanup, like `kill -9`) on the
/// `SPINDLE_CRASH_AFTER`-th visit (default 1).
fn crash_point(point: &str) {
    let Ok(wanted) = std::env::var("SPINDLE_CRASH_AT") else {
        return;
    };
    if wanted != point {
        return;
    }
    static VISITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let visit = VISITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let after = std::env::var("SPINDLE_CRASH_AFTER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if visit >= after {
        eprintln!("spindle: crashing at {point} (SPINDLE_CRASH_AT)");
        std::process::abort();
    }
}

/// Records that `partition` has been processed up to `next_offset` (its
/// newest row at `newest_event_time`): in its task when checkpointed, else
/// in the ledger of offsets to commit once no pipeline holds the rows (the
/// ledger is drained only by those commits, so only one of the two keeps it).
pub fn processed(
    job: &mut Job,
    source: usize,
    partition: i32,
    next_offset: i64,
    newest_event_time: Option<i64>,
) {
    let runtime = &mut job.sources[source];
    match runtime.tasks.as_mut() {
        Some(tasks) => tasks.entry(partition).or_default().next_offset = Some(next_offset),
        None => runtime
            .offsets
            .record(partition, next_offset, newest_event_time),
    }
}
