//! Windowed aggregation on event time.
//!
//! - [`assign`]: rows → windows (tumbling, hopping; session placeholders),
//!   late rows split out.
//! - [`aggregates`]: DataFusion accumulators per window and key.
//! - [`fixed`]: the operator for tumbling and hopping windows.
//! - [`session`]: the operator for session windows.
//!
//! Both operators consume the aggregate's input (rows already filtered and
//! projected by the query's stateless part, grouped by `window_start`,
//! `window_end` and the keys) and emit, when the watermark passes a window's
//! end, rows shaped like the aggregate's output: the grouping columns in
//! order, then one column per aggregate.

pub mod aggregates;
pub mod assign;
pub mod fixed;
pub mod over;
pub mod over_replay;
pub mod session;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use spindle_sql::window::{WINDOW_END, WINDOW_START};

pub use aggregates::{AggregateSpec, GroupedAggregates};
pub use assign::{Shape, WindowAssigner};

/// Event times of `batch`'s column `column` as i64 in the column's unit
/// (nulls stay null): the one conversion every operator and the run loop use.
pub fn event_times(batch: &RecordBatch, column: usize) -> Result<arrow::array::Int64Array> {
    let ints = arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Int64)?;
    ints.as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("event time is not an integer timestamp".into()))
}

/// A windowed aggregation's state machine.
pub trait WindowOperator: Send + std::fmt::Debug {
    /// Adds rows (the aggregate's input schema).
    fn process(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Emits every window whose end (plus allowed lateness) is at or below
    /// `watermark`, oldest first.
    fn close(&mut self, watermark: i64) -> Result<Vec<RecordBatch>>;
    /// Open windows.
    fn open_windows(&self) -> usize;
    /// The oldest event time whose rows may still be in open state (the
    /// earliest open window's start); `None` when nothing is open.
    fn oldest_held(&self) -> Option<i64>;
    /// Approximate bytes of state.
    fn state_size(&self) -> usize;
    /// Every open window's state as batches, for a checkpoint (the operator
    /// carries on unchanged). Empty when nothing is open.
    fn snapshot(&mut self) -> Result<Vec<RecordBatch>>;
    /// Adds the state of a [`WindowOperator::snapshot`] of an operator
    /// planned from the same SQL.
    fn restore(&mut self, state: &[RecordBatch]) -> Result<()>;
    /// A new operator with the same plan and no state (one per source
    /// partition, so a partition's state can move to another worker).
    fn empty(&self) -> Result<Box<dyn WindowOperator>>;
}

/// A snapshot batch's schema: the given leading fields, the key fields, then
/// the aggregates' state fields.
pub(crate) fn snapshot_schema(
    leading: Vec<arrow::datatypes::FieldRef>,
    spec: &AggregateSpec,
) -> Result<SchemaRef> {
    let mut fields = leading;
    fields.extend(spec.key_schema().fields().iter().cloned());
    fields.extend(spec.state_fields()?);
    Ok(Arc::new(arrow::datatypes::Schema::new(fields)))
}

/// Checks that a checkpointed batch has the shape this plan snapshots.
pub(crate) fn check_snapshot(batch: &RecordBatch, expected: &SchemaRef) -> Result<()> {
    let types = |s: &arrow::datatypes::Schema| -> Vec<DataType> {
        s.fields().iter().map(|f| f.data_type().clone()).collect()
    };
    if types(&batch.schema()) != types(expected) {
        return Err(DataFusionError::Plan(format!(
            "the checkpointed window state does not fit this query: it has columns {:?}, \
             the query's windows keep {:?} (windows, keys or aggregates changed)",
            names(&batch.schema()),
            names(expected)
        )));
    }
    Ok(())
}

fn names(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Where the window columns and keys are among an aggregate's grouping
/// expressions.
#[derive(Debug, Clone)]
pub struct GroupLayout {
    /// All grouping expressions, in output order.
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Position of `window_start`.
    pub start: usize,
    /// Position of `window_end`.
    pub end: usize,
    /// Positions of the other grouping expressions (the keys).
    pub keys: Vec<usize>,
    /// The aggregate's output schema.
    pub output: SchemaRef,
    /// Schema of the key columns alone.
    pub key_schema: SchemaRef,
}

impl GroupLayout {
    /// Reads the layout off an `AggregateExec` grouped by the window columns.
    pub fn of(aggregate: &AggregateExec) -> Result<Self> {
        let group = aggregate.group_expr();
        if group.groups().len() > 1 {
            return Err(DataFusionError::Plan(
                "GROUPING SETS, CUBE and ROLLUP are not supported in streaming windows".into(),
            ));
        }
        let names: Vec<&str> = group.expr().iter().map(|(_, n)| n.as_str()).collect();
        let find = |name: &str| {
            names.iter().position(|n| *n == name).ok_or_else(|| {
                DataFusionError::Plan(format!("the windowed aggregate does not group by {name}"))
            })
        };
        let (start, end) = (find(WINDOW_START)?, find(WINDOW_END)?);
        let keys: Vec<usize> = (0..names.len())
            .filter(|i| *i != start && *i != end)
            .collect();
        let output = aggregate.schema();
        let key_schema = Arc::new(output.project(&keys)?);
        Ok(Self {
            exprs: group.expr().iter().map(|(e, _)| Arc::clone(e)).collect(),
            start,
            end,
            keys,
            output,
            key_schema,
        })
    }

    /// Evaluates the grouping expressions on `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        aggregates::evaluate_exprs(&self.exprs, batch)
    }

    /// Assembles an output batch for one window: its bounds as one-row
    /// arrays of the time type (repeated), the keys and the aggregate values.
    pub fn output_batch(
        &self,
        start: &ArrayRef,
        end: &ArrayRef,
        keys: Vec<ArrayRef>,
        values: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let rows = values.first().map_or(0, |v| v.len());
        let indices = arrow::array::UInt32Array::from(vec![0u32; rows]);
        let starts = arrow::compute::take(start, &indices, None)?;
        let ends = arrow::compute::take(end, &indices, None)?;
        self.assemble(starts, ends, keys, values)
    }

    /// Assembles an output batch from full columns.
    pub fn assemble(
        &self,
        starts: ArrayRef,
        ends: ArrayRef,
        keys: Vec<ArrayRef>,
        values: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let mut keys = keys.into_iter();
        let mut columns = Vec::with_capacity(self.output.fields().len());
        for i in 0..self.exprs.len() {
            columns.push(if i == self.start {
                Arc::clone(&starts)
            } else if i == self.end {
                Arc::clone(&ends)
            } else {
                keys.next()
                    .ok_or_else(|| DataFusionError::Internal("missing key column".into()))?
            });
        }
        columns.extend(values);
        Ok(RecordBatch::try_new(Arc::clone(&self.output), columns)?)
    }
}
