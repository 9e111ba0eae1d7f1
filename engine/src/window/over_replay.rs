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
//! Frames bounded by rows or time come back exactly; functions whose state
//! is not bounded by a frame (detectors, `row_number`) are named in
//! [`ReplayNeeds::not_carried`]: they restart with the context only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use super::event_times;

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
        }
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
        if self.context_rows > 2 * self.pruned_to.max(4096) {
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
