//! Restoring a checkpoint into an edited job: per pipeline (by its sink),
//! state whose [`StateShape`] is unchanged is carried over; a pipeline whose
//! windows, keys, aggregates, `OVER` functions or `WHERE` changed either
//! stops the job with an error naming every change
//! ([`OnChange::Fail`], the default) or starts empty
//! ([`OnChange::ResetChanged`]). Keys or aggregates only listed in another
//! order keep their state, its columns moved. A pipeline added since starts
//! empty; the state of one removed is ignored (and gone with the next
//! checkpoint).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;

use super::Job;
use crate::checkpoint::PartitionCheckpoint;
use crate::error::{EngineError, Result};
use crate::plan::state_shape::StateShape;

/// `spindle.checkpoint.on_change`: what a restore does with the state of a
/// pipeline whose SQL changed since the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Refuse to start, naming each changed pipeline and what changed.
    Fail,
    /// Drop the changed pipelines' state: they start empty at the
    /// checkpoint's offsets; the others keep theirs.
    ResetChanged,
}

impl OnChange {
    /// Reads a setting's value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "fail" => Ok(Self::Fail),
            "reset-changed" => Ok(Self::ResetChanged),
            other => Err(format!(
                "unknown policy {other:?}; expected 'fail' or 'reset-changed'"
            )),
        }
    }
}

/// What a restore does with a pipeline's checkpointed state, when not
/// simply restoring it.
#[derive(Debug)]
pub enum Carry {
    /// Nothing: the pipeline starts empty (its SQL changed, `reset-changed`).
    Reset,
    /// These batches instead: the same state with its columns in the edited
    /// query's order of keys and aggregates.
    Reordered(Vec<RecordBatch>),
}

/// One pipeline whose state cannot be carried over.
#[derive(Debug)]
struct Changed {
    index: usize,
    changes: Vec<String>,
}

/// For `job`'s pipelines reading source `source` (by index), what to
/// restore instead of their state in `checkpoint` (of `partition`), if
/// anything; an error naming every change when the job's policy is to fail.
pub fn plan_restore(
    job: &Job,
    source: &str,
    partition: i32,
    checkpoint: &PartitionCheckpoint,
) -> Result<BTreeMap<usize, Carry>> {
    let (changed, mut plan) = compare(job, source, checkpoint)?;
    ignore_removed(job, source, partition, checkpoint);
    if changed.is_empty() {
        return Ok(plan);
    }
    let lines: Vec<String> = changed
        .iter()
        .map(|c| {
            let pipeline = &job.pipelines[c.index];
            format!(
                "INSERT INTO {} (line {}): {}",
                pipeline.sink,
                pipeline.location().line,
                c.changes.join("; ")
            )
        })
        .collect();
    match job.settings.on_change {
        OnChange::Fail => Err(EngineError::StateChanged(format!(
            "the job's SQL changed since checkpoint epoch {} of partition {partition} of `{source}`, \
             and the state of {} cannot be carried over:\n  {}\n\
             Pipelines not listed would keep their state. To start anyway, SET spindle.checkpoint.on_change = \
             'reset-changed' (the pipelines above start empty at the checkpoint's offsets: windows \
             open at the checkpoint lose the rows before it; the others keep their state), or start \
             the whole job afresh with another spindle.checkpoint.path (or consumer group).",
            checkpoint.epoch,
            match changed.len() {
                1 => "this pipeline".to_string(),
                n => format!("these {n} pipelines"),
            },
            lines.join("\n  ")
        ))),
        OnChange::ResetChanged => {
            for line in &lines {
                tracing::warn!(
                    source,
                    partition,
                    epoch = checkpoint.epoch,
                    "spindle.checkpoint.on_change = 'reset-changed': dropping the checkpointed \
                     state of {line}; it starts empty at the checkpoint's offset"
                );
            }
            plan.extend(changed.into_iter().map(|c| (c.index, Carry::Reset)));
            Ok(plan)
        }
    }
}

/// The pipelines of `source` whose checkpointed state has a shape that
/// differs from theirs, and the state of those whose keys or aggregates
/// were only reordered, reordered. State without a recorded shape (no rows,
/// or written before shapes were recorded) is left to the operators' own
/// column check.
fn compare(
    job: &Job,
    source: &str,
    checkpoint: &PartitionCheckpoint,
) -> Result<(Vec<Changed>, BTreeMap<usize, Carry>)> {
    let mut changed = Vec::new();
    let mut reordered = BTreeMap::new();
    for (index, pipeline) in job.pipelines.iter().enumerate() {
        if pipeline.source != source {
            continue;
        }
        let Some(state) = checkpoint.pipeline(&pipeline.sink) else {
            continue; // added since the checkpoint: starts empty
        };
        let old = StateShape::of_state(&state.batches).map_err(EngineError::datafusion(
            format!("reading the checkpointed state of {}", pipeline.sink),
        ))?;
        let Some(old) = old else { continue };
        let changes = pipeline.shape().changes(&old);
        if changes.is_empty() {
            continue;
        }
        match pipeline.shape().reordering(&old) {
            Some(reordering) => {
                let batches = state
                    .batches
                    .iter()
                    .map(|b| reordering.apply(b))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .map_err(EngineError::datafusion(format!(
                        "reordering the checkpointed state of {}",
                        pipeline.sink
                    )))?;
                tracing::info!(
                    sink = %pipeline.sink, changes = %changes.join("; "),
                    "only the order changed: the checkpointed state is carried over"
                );
                reordered.insert(index, Carry::Reordered(batches));
            }
            None => changed.push(Changed { index, changes }),
        }
    }
    Ok((changed, reordered))
}

/// Logs the checkpointed state of pipelines the job no longer has.
fn ignore_removed(job: &Job, source: &str, partition: i32, checkpoint: &PartitionCheckpoint) {
    let current = |sink: &str| {
        job.pipelines
            .iter()
            .any(|p| p.source == source && p.sink == sink)
    };
    for state in checkpoint.pipelines.iter().filter(|s| !current(&s.sink)) {
        let rows: usize = state.batches.iter().map(|b| b.num_rows()).sum();
        if rows > 0 {
            tracing::info!(
                source, partition, sink = %state.sink, rows,
                "the job no longer has a pipeline into this sink: its checkpointed state is \
                 ignored (and not kept by the next checkpoint)"
            );
        }
    }
}
