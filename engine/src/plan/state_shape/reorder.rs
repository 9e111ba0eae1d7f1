//! Windowed state whose keys or aggregates were only listed in another
//! order (`SELECT avg(t), max(t)` → `SELECT max(t), avg(t)`, `GROUP BY …,
//! machine_id, line` → `…, line, machine_id`) is the same state in other
//! columns: it is carried over with its columns moved, not refused.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{FieldRef, Schema};
use datafusion::common::{DataFusionError, Result};

use super::{StateKind, StateShape, Term};

/// Leading columns of a windowed snapshot batch (window bounds, or a
/// session's first and last time) before the keys.
const LEADING: usize = 2;

/// Where each key and aggregate of the edited query was in the
/// checkpointed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reordering {
    /// For each key now, its position then.
    keys: Vec<usize>,
    /// For each aggregate now, its position then.
    aggregates: Vec<usize>,
    /// State columns per aggregate, in the checkpointed order.
    widths: Vec<usize>,
}

impl StateShape {
    /// How the checkpointed `old` state maps onto this shape when the only
    /// difference is the order of keys or aggregates (`None` otherwise, or
    /// when `old` does not say how wide each aggregate's state is).
    pub fn reordering(&self, old: &StateShape) -> Option<Reordering> {
        if self.kind != StateKind::Window || old.state_widths.len() != old.aggregates.len() {
            return None;
        }
        let mut as_now = old.clone();
        as_now.keys.clone_from(&self.keys);
        as_now.aggregates.clone_from(&self.aggregates);
        as_now.state_widths.clone_from(&self.state_widths);
        if as_now != *self {
            return None;
        }
        Some(Reordering {
            keys: positions(&old.keys, &self.keys)?,
            aggregates: positions(&old.aggregates, &self.aggregates)?,
            widths: old.state_widths.clone(),
        })
    }
}

/// For each of `now`, its index in `then`; `None` unless both hold the same
/// terms.
fn positions(then: &[Term], now: &[Term]) -> Option<Vec<usize>> {
    if then.len() != now.len() {
        return None;
    }
    now.iter()
        .map(|term| then.iter().position(|t| t == term))
        .collect()
}

impl Reordering {
    /// The checkpointed columns' positions in the edited query's order.
    fn columns(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = (0..LEADING).collect();
        columns.extend(self.keys.iter().map(|k| LEADING + k));
        let first_state = LEADING + self.keys.len();
        let starts: Vec<usize> = self
            .widths
            .iter()
            .scan(first_state, |at, width| {
                let start = *at;
                *at += width;
                Some(start)
            })
            .collect();
        for &old in &self.aggregates {
            columns.extend(starts[old]..starts[old] + self.widths[old]);
        }
        columns
    }

    /// `batch` (checkpointed state) with its columns in the edited order.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self.columns();
        if columns.len() != batch.num_columns() {
            return Err(DataFusionError::Plan(format!(
                "the checkpointed window state has {} columns, its description {}",
                batch.num_columns(),
                columns.len()
            )));
        }
        let schema = batch.schema();
        let fields: Vec<FieldRef> = columns
            .iter()
            .map(|&c| Arc::clone(&schema.fields()[c]))
            .collect();
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|&c| Arc::clone(batch.column(c)))
            .collect();
        let schema = Schema::new(fields).with_metadata(schema.metadata().clone());
        Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
    }
}
