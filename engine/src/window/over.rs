//! Per-row `OVER (PARTITION BY … ORDER BY ts …)` window functions on a
//! stream: `lag` deltas, rolling `RANGE INTERVAL … PRECEDING` and
//! `ROWS n PRECEDING` aggregates, with state carried across micro-batches.
//!
//! Rows arrive out of order, but these functions are defined in event-time
//! order. So the operator buffers rows until the watermark passes them, then
//! releases them sorted by event time into one long-running DataFusion
//! `BoundedWindowAggExec` in `Linear` mode: the input is ordered by time
//! across all keys, keys interleave, and DataFusion keeps each key's frame
//! (sliding accumulators, the previous rows `lag` needs) and prunes what no
//! future row can reach. Every row the watermark releases is final: no later
//! row can precede it, so DataFusion emits it once any later row arrives;
//! the end of input flushes the rest.
//!
//! Rows older than the last released watermark would have to be inserted
//! into the past; they go to the late-data output instead.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::kernels::cmp::{gt_eq, lt};
use arrow::compute::take_record_batch;
use arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, max, min,
};
use arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{FutureExt, StreamExt};

use super::event_times;
use super::over_replay::ReplayLog;
use detectors::DetectorSlot;

#[cfg(test)]
mod checkpoint_tests;
pub mod detectors;

/// Batches of an `OVER` snapshot before the detectors' (see
/// [`OverOperator::snapshot`]).
const ROW_PARTS: usize = 3;

/// Rows split at a watermark.
#[derive(Debug)]
pub struct Split {
    /// Rows at or after the watermark.
    pub on_time: RecordBatch,
    /// Rows before it.
    pub late: RecordBatch,
}

/// Splits `batch` at `watermark` on the event-time column `column`.
pub fn split_late(batch: &RecordBatch, column: usize, watermark: i64) -> Result<Split> {
    let times = event_times(batch, column)?;
    let bound = Int64Array::new_scalar(watermark);
    let on_time = gt_eq(&times, &bound)?;
    let late = arrow::compute::not(&on_time)?;
    Ok(Split {
        on_time: filter_record_batch(batch, &on_time)?,
        late: filter_record_batch(batch, &late)?,
    })
}

fn times_where(times: &Int64Array, mask: &BooleanArray) -> Result<Int64Array> {
    let kept = arrow::compute::filter(times, mask)?;
    kept.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("filtered event times".into()))
}

/// Feeds released rows into the window stream.
#[derive(Debug, Clone)]
pub struct Feed {
    schema: SchemaRef,
    receiver: Arc<Mutex<Option<UnboundedReceiver<Result<RecordBatch>>>>>,
}

impl PartitionStream for Feed {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let receiver = self.receiver.lock().ok().and_then(|mut r| r.take());
        let stream = match receiver {
            Some(r) => r.boxed(),
            None => futures::stream::once(async {
                Err(DataFusionError::Internal(
                    "an OVER window stream can only run once".into(),
                ))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        ))
    }
}

/// A channel whose receiving end is a [`PartitionStream`].
pub fn feed(schema: SchemaRef) -> (UnboundedSender<Result<RecordBatch>>, Feed) {
    let (sender, receiver) = unbounded();
    let feed = Feed {
        schema,
        receiver: Arc::new(Mutex::new(Some(receiver))),
    };
    (sender, feed)
}

/// The operator: a buffer of unreleased rows and the running window stream.
pub struct OverOperator {
    time_column: usize,
    order: Vec<PhysicalSortExpr>,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    oldest_pending: Option<i64>,
    /// The newest event time released: every older row is final.
    newest_released: Option<i64>,
    released: i64,
    sender: Option<UnboundedSender<Result<RecordBatch>>>,
    output: SendableRecordBatchStream,
    /// Rows in flight and frame context for checkpoints (`None`: the plan
    /// between the window nodes changes row counts, so answers cannot be
    /// matched to rows).
    replay: Option<ReplayLog>,
    /// The detector calls' per-key state.
    detectors: Vec<DetectorSlot>,
}

impl std::fmt::Debug for OverOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverOperator")
            .field("time_column", &self.time_column)
            .field("pending_rows", &self.pending_rows)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

impl OverOperator {
    /// An operator whose input rows have `schema`, are sorted by `order`
    /// (event time first) before release, and whose window results come out
    /// of `output` (the window exec reading the other end of `sender`).
    pub fn new(
        schema: SchemaRef,
        time_column: usize,
        order: Vec<PhysicalSortExpr>,
        sender: UnboundedSender<Result<RecordBatch>>,
        output: SendableRecordBatchStream,
        replay: Option<ReplayLog>,
    ) -> Self {
        Self {
            time_column,
            order,
            schema,
            pending: Vec::new(),
            pending_rows: 0,
            oldest_pending: None,
            newest_released: None,
            released: i64::MIN,
            sender: Some(sender),
            output,
            replay,
            detectors: Vec::new(),
        }
    }

    /// The operator with the state of its window stream's detector calls.
    pub fn with_detectors(mut self, detectors: Vec<DetectorSlot>) -> Self {
        self.detectors = detectors;
        self
    }

    /// The watermark up to which rows have been released: rows before it
    /// are late.
    pub fn released(&self) -> i64 {
        self.released
    }

    /// Buffers rows (all at or after [`Self::released`]).
    pub fn buffer(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            let oldest = min(&event_times(&batch, self.time_column)?);
            self.oldest_pending = self.oldest_pending.into_iter().chain(oldest).min();
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
        }
        Ok(())
    }

    /// The oldest event time whose rows may not have been emitted yet.
    pub fn oldest_held(&self) -> Option<i64> {
        self.oldest_pending
            .into_iter()
            .chain(self.newest_released)
            .min()
    }

    /// Releases every buffered row before `watermark` in event-time order and
    /// returns the window results that became final. `i64::MAX` ends the
    /// input and flushes everything.
    pub async fn advance(&mut self, watermark: i64) -> Result<Vec<RecordBatch>> {
        if watermark > self.released {
            self.released = watermark;
            if let Some(rows) = self.take_released(watermark)? {
                self.send(rows)?;
            }
        }
        if watermark == i64::MAX {
            self.sender = None;
            let rest = self.drain_all().await?;
            self.newest_released = None;
            return Ok(rest);
        }
        self.drain_ready()
    }

    /// The partition's state, for a checkpoint: the frame context and the
    /// rows in flight in the window stream (see [`ReplayLog`]), the
    /// unreleased rows — always these three batches — then one batch per
    /// detector call with its keys' detectors ([`detectors`]).
    pub fn snapshot(&self) -> Result<Vec<RecordBatch>> {
        let [context, in_flight] = match &self.replay {
            Some(replay) => replay.snapshot()?,
            None => [
                RecordBatch::new_empty(Arc::clone(&self.schema)),
                RecordBatch::new_empty(Arc::clone(&self.schema)),
            ],
        };
        let pending = concat_batches(&self.schema, &self.pending)?;
        let mut state = vec![context, in_flight, pending];
        state.extend(detectors::snapshot(&self.detectors)?);
        Ok(state)
    }

    /// Takes over a checkpointed state (see [`Self::snapshot`]); `released`
    /// is the job's release watermark (older rows count as late from now
    /// on). The detectors are restored, then the context and in-flight rows
    /// go into the window stream again; the answers for the context are
    /// dropped.
    pub fn restore(&mut self, state: &[RecordBatch], released: i64) -> Result<()> {
        self.start_at(released);
        if state.is_empty() {
            return Ok(());
        }
        if state.len() < ROW_PARTS {
            return Err(DataFusionError::Plan(format!(
                "an OVER checkpoint holds at least {ROW_PARTS} parts, this one {}",
                state.len()
            )));
        }
        let (rows, detector_state) = state.split_at(ROW_PARTS);
        let [context, in_flight, pending] = rows else {
            return Err(DataFusionError::Internal("OVER checkpoint parts".into()));
        };
        for batch in rows {
            if batch.schema().fields().len() != self.schema.fields().len() {
                return Err(DataFusionError::Plan(
                    "the checkpointed OVER rows do not fit this query's columns".into(),
                ));
            }
        }
        detectors::restore(&self.detectors, detector_state)?;
        let replayed = match &mut self.replay {
            Some(replay) => Some(replay.restore(context, in_flight)?),
            None => None,
        };
        if let Some(rows) = replayed.filter(|r| r.num_rows() > 0) {
            self.send(rows)?;
        }
        self.buffer(pending.clone())
    }

    /// Window functions whose state a restore cannot rebuild exactly.
    pub fn not_carried(&self) -> Vec<String> {
        self.replay.as_ref().map_or_else(
            || vec!["every OVER function".into()],
            |r| r.not_carried().to_vec(),
        )
    }

    /// Starts a new partition's operator at the job's release watermark.
    pub fn start_at(&mut self, released: i64) {
        self.released = self.released.max(released);
    }

    /// Rows buffered and not yet released.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    fn take_released(&mut self, watermark: i64) -> Result<Option<RecordBatch>> {
        if self.pending_rows == 0 {
            return Ok(None);
        }
        let all = concat_batches(&self.schema, &self.pending)?;
        self.pending.clear();
        // One conversion of the times; the kept and released rows' bounds
        // come from filtering it, not from converting each part again.
        let times = event_times(&all, self.time_column)?;
        let due: BooleanArray = lt(&times, &Int64Array::new_scalar(watermark))?;
        let keep = arrow::compute::not(&due)?;
        let rest = filter_record_batch(&all, &keep)?;
        self.pending_rows = rest.num_rows();
        self.oldest_pending = min(&times_where(&times, &keep)?);
        if rest.num_rows() > 0 {
            self.pending.push(rest);
        }
        let released = filter_record_batch(&all, &due)?;
        if released.num_rows() == 0 {
            return Ok(None);
        }
        let newest = max(&times_where(&times, &due)?);
        self.newest_released = self.newest_released.into_iter().chain(newest).max();
        Ok(Some(self.sorted(&released)?))
    }

    fn sorted(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .order
            .iter()
            .map(|e| e.evaluate_to_sort_column(batch))
            .collect::<Result<Vec<SortColumn>>>()?;
        let indices = lexsort_to_indices(&columns, None)?;
        Ok(take_record_batch(batch, &indices)?)
    }

    fn send(&mut self, rows: RecordBatch) -> Result<()> {
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("OVER input already ended".into()))?;
        if let Some(replay) = &mut self.replay {
            replay.sent(&rows);
        }
        sender
            .unbounded_send(Ok(rows))
            .map_err(|e| DataFusionError::Internal(format!("OVER window stream stopped: {e}")))
    }

    /// An answer of the window stream, minus answers to replayed context.
    fn answered(&mut self, out: RecordBatch) -> Result<Option<RecordBatch>> {
        match &mut self.replay {
            Some(replay) => replay.answered(out),
            None => Ok(Some(out)),
        }
    }

    /// Results the stream can produce without more input.
    fn drain_ready(&mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(Some(next)) = self.output.next().now_or_never() {
            out.extend(self.answered(next?)?);
        }
        Ok(out)
    }

    async fn drain_all(&mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(next) = self.output.next().await {
            out.extend(self.answered(next?)?);
        }
        Ok(out)
    }
}
