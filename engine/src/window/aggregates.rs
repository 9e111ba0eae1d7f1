//! Incremental aggregation with DataFusion's own accumulators: one
//! [`GroupedAggregates`] holds, for one window, the group keys (DataFusion's
//! `GroupValues`, vectorised) and one `GroupsAccumulator` per aggregate —
//! so every DataFusion aggregate works, and memory grows with windows × keys,
//! not with rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// What to aggregate: the aggregate functions, their argument and filter
/// expressions, and the schema of the grouping keys.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    key_schema: SchemaRef,
}

/// Argument (and filter) columns of one batch, evaluated once.
#[derive(Debug)]
pub struct EvaluatedInputs {
    arguments: Vec<Vec<ArrayRef>>,
    filters: Vec<Option<BooleanArray>>,
}

impl AggregateSpec {
    /// From an `AggregateExec`'s parts; `key_schema` describes the grouping
    /// columns this spec's [`GroupedAggregates`] are keyed by.
    pub fn new(
        aggregates: &[Arc<AggregateFunctionExpr>],
        filters: &[Option<Arc<dyn PhysicalExpr>>],
        key_schema: SchemaRef,
    ) -> Self {
        let arguments = aggregates
            .iter()
            .map(|a| {
                let all = a.all_expressions();
                all.args.into_iter().chain(all.order_by_exprs).collect()
            })
            .collect();
        Self {
            aggregates: aggregates.to_vec(),
            arguments,
            filters: filters.to_vec(),
            key_schema,
        }
    }

    /// Evaluates every aggregate's arguments and filter on `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<EvaluatedInputs> {
        let arguments = self
            .arguments
            .iter()
            .map(|exprs| evaluate_exprs(exprs, batch))
            .collect::<Result<Vec<_>>>()?;
        let filters = self
            .filters
            .iter()
            .map(|f| match f {
                None => Ok(None),
                Some(expr) => {
                    let array = expr.evaluate(batch)?.into_array(batch.num_rows())?;
                    Ok(array.as_any().downcast_ref::<BooleanArray>().cloned())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EvaluatedInputs { arguments, filters })
    }

    /// The intermediate-state fields of every aggregate, in order (what
    /// [`GroupedAggregates::snapshot`] produces after the key columns).
    pub fn state_fields(&self) -> Result<Vec<arrow::datatypes::FieldRef>> {
        let mut fields = Vec::new();
        for aggregate in &self.aggregates {
            fields.extend(aggregate.state_fields()?);
        }
        Ok(fields)
    }

    /// Schema of the key columns.
    pub fn key_schema(&self) -> &SchemaRef {
        &self.key_schema
    }

    /// Rebuilds one window's state from [`GroupedAggregates::snapshot`]'s
    /// key and state columns, merging the states into fresh accumulators.
    pub fn restore_grouped(
        &self,
        keys: &[ArrayRef],
        states: &[ArrayRef],
        rows: usize,
    ) -> Result<GroupedAggregates> {
        let mut grouped = self.new_grouped()?;
        if rows == 0 {
            return Ok(grouped);
        }
        match grouped.groups.as_mut() {
            Some(groups) => groups.intern(keys, &mut grouped.indices)?,
            None => {
                grouped.indices = vec![0; rows];
                grouped.single_group_rows = 1;
            }
        }
        let total = grouped.len();
        let mut states = states.iter();
        for (acc, aggregate) in grouped.accumulators.iter_mut().zip(&self.aggregates) {
            let width = aggregate.state_fields()?.len();
            let columns: Vec<ArrayRef> = states.by_ref().take(width).cloned().collect();
            acc.merge_batch(&columns, &grouped.indices, total)?;
        }
        Ok(grouped)
    }

    /// Empty state for one window.
    pub fn new_grouped(&self) -> Result<GroupedAggregates> {
        let accumulators = self
            .aggregates
            .iter()
            .map(|a| new_accumulator(a))
            .collect::<Result<Vec<_>>>()?;
        // Without key columns every row is in the one group of its window.
        let groups = match self.key_schema.fields().is_empty() {
            true => None,
            false => Some(new_group_values(
                Arc::clone(&self.key_schema),
                &GroupOrdering::None,
            )?),
        };
        Ok(GroupedAggregates {
            groups,
            single_group_rows: 0,
            accumulators,
            indices: Vec::new(),
        })
    }
}

/// Evaluates expressions on `batch`, each to a full-length array.
pub(crate) fn evaluate_exprs(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| {
            e.evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
        })
        .collect()
}

fn new_accumulator(aggregate: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if aggregate.groups_accumulator_supported() {
        return aggregate.create_groups_accumulator();
    }
    // Row-at-a-time accumulators (e.g. DISTINCT, percentiles) behind
    // DataFusion's adapter, so every aggregate works.
    let aggregate = Arc::clone(aggregate);
    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
        aggregate.create_accumulator()
    })))
}

impl EvaluatedInputs {
    /// Aggregate `i`'s argument columns with its `FILTER (WHERE …)` applied,
    /// for row-at-a-time accumulators that take no filter.
    pub fn filtered_arguments(&self, i: usize) -> Result<Vec<ArrayRef>> {
        match &self.filters[i] {
            None => Ok(self.arguments[i].clone()),
            Some(filter) => self.arguments[i]
                .iter()
                .map(|a| Ok(arrow::compute::filter(a, filter)?))
                .collect(),
        }
    }

    /// The rows at `indices` only.
    pub fn take(&self, indices: &arrow::array::UInt32Array) -> Result<Self> {
        let arguments = self
            .arguments
            .iter()
            .map(|args| {
                args.iter()
                    .map(|a| Ok(take(a, indices, None)?))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let filters = self
            .filters
            .iter()
            .map(|f| match f {
                None => Ok(None),
                Some(f) => Ok(take(f, indices, None)?
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { arguments, filters })
    }
}

/// The groups and accumulators of one window.
pub struct GroupedAggregates {
    /// `None` when the window has no key columns: one group.
    groups: Option<Box<dyn GroupValues>>,
    single_group_rows: usize,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    indices: Vec<usize>,
}

impl std::fmt::Debug for GroupedAggregates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedAggregates")
            .field("groups", &self.len())
            .finish()
    }
}

impl GroupedAggregates {
    /// Adds `rows` rows: `keys` are the grouping columns, `inputs` their arguments.
    pub fn update(
        &mut self,
        keys: &[ArrayRef],
        inputs: &EvaluatedInputs,
        rows: usize,
    ) -> Result<()> {
        match self.groups.as_mut() {
            Some(groups) => groups.intern(keys, &mut self.indices)?,
            None => {
                self.indices.clear();
                self.indices.resize(rows, 0);
                self.single_group_rows = self.single_group_rows.max(1);
            }
        }
        let total = self.len();
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&inputs.arguments)
            .zip(&inputs.filters)
        {
            acc.update_batch(args, &self.indices, filter.as_ref(), total)?;
        }
        Ok(())
    }

    /// Number of groups (keys) in this window.
    pub fn len(&self) -> usize {
        self.groups
            .as_ref()
            .map_or(self.single_group_rows, |g| g.len())
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> usize {
        self.groups.as_ref().map_or(0, |g| g.size())
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Key columns and every accumulator's intermediate state columns (one
    /// row per group), for a checkpoint; the accumulators are rebuilt from
    /// them, so the window carries on as if nothing happened.
    pub fn snapshot(&mut self, spec: &AggregateSpec) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let rows = self.len();
        let keys = match self.groups.as_mut() {
            Some(groups) => groups.emit(EmitTo::All)?,
            None => Vec::new(),
        };
        let mut states = Vec::new();
        for acc in &mut self.accumulators {
            states.extend(acc.state(EmitTo::All)?);
        }
        *self = spec.restore_grouped(&keys, &states, rows)?;
        Ok((keys, states))
    }

    /// Final keys and aggregate values of every group; the state is consumed.
    pub fn emit(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match self.groups.as_mut() {
            Some(groups) => groups.emit(EmitTo::All)?,
            None => Vec::new(),
        };
        let values = self
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, values))
    }
}
