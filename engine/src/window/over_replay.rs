//! What an `OVER` operator keeps so that a partition restored from a
//! checkpoint carries on as if it had never stopped.
//!
//! DataFusion's window stream holds each key's frame (the rows a `lag` or a
//! 5-minute `RANGE` looks back at) and rows sent but not yet answered (a row
//! is answered once a later row proves its frame complete); neither can be
//! exported. So the operator keeps them itself: the rows in flight, and as
//! *context* the answered rows any future frame can still reach — per key,
//! the last `rows` rows and those within `span` of the key's newest. A
//! restore sends context and in-flight rows into a fresh stream and drops
//! the answers for the context (they were emitted before the checkpoint).
//! Frames bounded by rows or time come back exactly. The anomaly detectors
//! carry their own state in the checkpoint (`super::over::detectors`) and
//! skip the replayed rows they had seen. Functions whose state is neither
//! bounded by a frame nor saved (`row_number`, running totals, functions
//! partitioned by other keys than the first) are named in
//! [`ReplayNeeds::not_carried`]: they restart with the context only.
//!
//! Per key, the context always keeps every row at the key's newest
//! answered time (the `span` test keeps them even when `span` is 0), so a
//! run of rows with one time is never cut where a restored detector counts
//! the rows it has seen.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use super::event_times;

/// Context rows kept before the first pruning. Unit tests prune early, so
/// that a restore there depends on what pruning keeps (with 4,096 their
/// few hundred rows would all be replayed and any state rebuilt from them).
const PRUNE_FLOOR: usize = if cfg!(test) { 64 } else { 4096 };

/// How much answered history the window functions can still look at.
#[derive(Debug, Clone)]
pub struct ReplayNeeds {
    /// The `PARTITION BY` of the window functions (over the operator's rows).
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Rows per key the functions look back at (`lag` offsets, `ROWS n`).
    pub rows: usize,
    /// Event time the functions look back over (`RANGE … PRECEDING`), in the
    /// event-time column's unit.
    pub span: i64,
    /// Functions whose state the context cannot rebuild exactly.
    pub not_carried: Vec<String>,
}

/// Rows in flight and the context kept for a restore.
#[derive(Debug)]
pub struct ReplayLog {
    needs: ReplayNeeds,
    time_column: usize,
    schema: SchemaRef,
    in_flight: VecDeque<RecordBatch>,
    context: Vec<RecordBatch>,
    context_rows: usize,
    /// Context rows left by the last pruning: pruning again waits until
    /// the context has doubled, so its cost is amortised over the rows.
    pruned_to: usize,
    /// Answers still to drop: those of the context replayed after a restore.
    suppress: usize,
    /// The event time of the last row answered (rows leave the stream in
    /// event-time order, so every older row has been answered): the
    /// detectors keep their verdicts from it on (`spindle_anomaly::keyed`).
    answered_time: Arc<AtomicI64>,
}

impl ReplayLog {
    /// A log for rows of `schema` whose event time is column `time_column`.
    pub fn new(needs: ReplayNeeds, schema: SchemaRef, time_column: usize) -> Self {
        Self {
            needs,
            time_column,
            schema,
            in_flight: VecDeque::new(),
            context: Vec::new(),
            context_rows: 0,
            pruned_to: 0,
            suppress: 0,
            answered_time: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// The log, keeping `answered` at the event time of the last row answered.
    pub fn answering(mut self, answered: &Arc<AtomicI64>) -> Self {
        self.answered_time = Arc::clone(answered);
        self
    }

    /// What cannot be carried across a restore.
    pub fn not_carried(&self) -> &[String] {
        &self.needs.not_carried
    }

    /// Rows sent into the window stream.
    pub fn sent(&mut self, rows: &RecordBatch) {
        self.in_flight.push_back(rows.clone());
    }

    /// Takes an answer of the window stream (the in-flight rows' results, in
    /// order): its rows become context; answers to replayed context are
    /// dropped. Returns what is left to emit.
    pub fn answered(&mut self, out: RecordBatch) -> Result<Option<RecordBatch>> {
        let mut rows = out.num_rows();
        while rows > 0 {
            let Some(front) = self.in_flight.pop_front() else {
                break;
            };
            let take = rows.min(front.num_rows());
            if take < front.num_rows() {
                self.in_flight
                    .push_front(front.slice(take, front.num_rows() - take));
            }
            if rows == take && take > 0 {
                let last = event_times(&front.slice(take - 1, 1), self.time_column)?;
                if last.is_valid(0) {
                    self.answered_time
                        .fetch_max(last.value(0), Ordering::Relaxed);
                }
            }
            self.add_context(front.slice(0, take))?;
            rows -= take;
        }
        let dropped = self.suppress.min(out.num_rows());
        self.suppress -= dropped;
        let rest = out.slice(dropped, out.num_rows() - dropped);
        Ok((rest.num_rows() > 0).then_some(rest))
    }

    /// The context and the in-flight rows, for a checkpoint.
    pub fn snapshot(&self) -> Result<[RecordBatch; 2]> {
        Ok([
            concat_batches(&self.schema, &self.context)?,
            concat_batches(&self.schema, &self.in_flight)?,
        ])
    }

    /// Takes over a checkpoint's context and in-flight rows; returns the
    /// rows to send into the fresh window stream (context first).
    pub fn restore(
        &mut self,
        context: &RecordBatch,
        in_flight: &RecordBatch,
    ) -> Result<RecordBatch> {
        self.in_flight.clear();
        self.context.clear();
        self.context_rows = 0;
        self.pruned_to = 0;
        self.suppress = context.num_rows();
        Ok(concat_batches(&self.schema, [context, in_flight])?)
    }

    fn add_context(&mut self, rows: RecordBatch) -> Result<()> {
        self.context_rows += rows.num_rows();
        self.context.push(rows);
        if self.context_rows > 2 * self.pruned_to.max(PRUNE_FLOOR) {
            self.prune()?;
        }
        Ok(())
    }

    /// Keeps, per key, the last `rows` rows and those within `span` of the
    /// key's newest (rows are in event-time order).
    fn prune(&mut self) -> Result<()> {
        let all = concat_batches(&self.schema, &self.context)?;
        let times = event_times(&all, self.time_column)?;
        let keys = self
            .needs
            .keys
            .iter()
            .map(|k| k.evaluate(&all)?.into_array(all.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(
            keys.iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect(),
        )?;
        let key_rows = converter.convert_columns(&keys)?;
        let mut seen: HashMap<&[u8], (usize, i64)> = HashMap::new();
        let mut keep = vec![false; all.num_rows()];
        for row in (0..all.num_rows()).rev() {
            let time = times.value(row);
            let (count, newest) = seen.entry(key_rows.row(row).data()).or_insert((0, time));
            keep[row] = *count < self.needs.rows || time >= newest.saturating_sub(self.needs.span);
            *count += 1;
        }
        let kept = filter_record_batch(&all, &BooleanArray::from(keep))?;
        self.context_rows = kept.num_rows();
        self.pruned_to = kept.num_rows();
        self.context = vec![kept];
        Ok(())
    }
}

#[cfg(test)]
mod tests;
