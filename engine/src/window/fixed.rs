//! Tumbling and hopping windows: one [`GroupedAggregates`] per open window,
//! keyed by its start; a window closes (is evaluated and dropped) when the
//! watermark passes its end plus the allowed lateness.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};

use super::{AggregateSpec, GroupLayout, GroupedAggregates, WindowOperator};

/// State of one open window.
#[derive(Debug)]
struct OpenWindow {
    end: i64,
    /// `window_start` / `window_end` as one-row arrays of the time type.
    start_value: ArrayRef,
    end_value: ArrayRef,
    aggregates: GroupedAggregates,
}

/// The operator for tumbling and hopping windows.
#[derive(Debug)]
pub struct FixedWindows {
    layout: GroupLayout,
    spec: AggregateSpec,
    lateness: i64,
    windows: BTreeMap<i64, OpenWindow>,
}

impl FixedWindows {
    /// An operator emitting `layout.output` rows; `lateness` is in the event
    /// time's unit.
    pub fn new(layout: GroupLayout, spec: AggregateSpec, lateness: i64) -> Self {
        Self {
            layout,
            spec,
            lateness,
            windows: BTreeMap::new(),
        }
    }
}

/// A column as i64 (timestamps in their unit).
pub(crate) fn as_i64(array: &ArrayRef) -> Result<Int64Array> {
    cast(array, &DataType::Int64)?
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("window bound is not a timestamp".into()))
}

/// Row indices per distinct value, in first-seen order.
fn rows_by_value(values: &Int64Array) -> Vec<(i64, Vec<u32>)> {
    let mut groups: Vec<(i64, Vec<u32>)> = Vec::new();
    for (row, value) in values.values().iter().enumerate() {
        match groups.iter_mut().find(|(v, _)| v == value) {
            Some((_, rows)) => rows.push(row as u32),
            None => groups.push((*value, vec![row as u32])),
        }
    }
    groups
}

impl WindowOperator for FixedWindows {
    fn process(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let groups = self.layout.evaluate(batch)?;
        let inputs = self.spec.evaluate(batch)?;
        let starts = as_i64(&groups[self.layout.start])?;
        let ends = as_i64(&groups[self.layout.end])?;
        let by_window = rows_by_value(&starts);
        let single = by_window.len() == 1;
        for (start, rows) in by_window {
            let indices = UInt32Array::from(rows);
            let first = indices.value(0) as usize;
            let window = match self.windows.entry(start) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(OpenWindow {
                    end: ends.value(first),
                    start_value: groups[self.layout.start].slice(first, 1),
                    end_value: groups[self.layout.end].slice(first, 1),
                    aggregates: self.spec.new_grouped()?,
                }),
            };
            // A batch inside one window (the usual tumbling case) needs no copy.
            let keys = self
                .layout
                .keys
                .iter()
                .map(|&k| match single {
                    true => Ok(Arc::clone(&groups[k])),
                    false => Ok(take(&groups[k], &indices, None)?),
                })
                .collect::<Result<Vec<_>>>()?;
            let rows = if single {
                None
            } else {
                Some(inputs.take(&indices)?)
            };
            window
                .aggregates
                .update(&keys, rows.as_ref().unwrap_or(&inputs), indices.len())?;
        }
        Ok(())
    }

    fn close(&mut self, watermark: i64) -> Result<Vec<RecordBatch>> {
        let closing: Vec<i64> = self
            .windows
            .iter()
            .filter(|(_, w)| w.end.saturating_add(self.lateness) <= watermark)
            .map(|(start, _)| *start)
            .collect();
        let mut out = Vec::with_capacity(closing.len());
        for start in closing {
            let Some(window) = self.windows.remove(&start) else {
                continue;
            };
            let (keys, values) = window.aggregates.emit()?;
            out.push(self.layout.output_batch(
                &window.start_value,
                &window.end_value,
                keys,
                values,
            )?);
        }
        Ok(out)
    }

    fn open_windows(&self) -> usize {
        self.windows.len()
    }

    fn oldest_held(&self) -> Option<i64> {
        self.windows.keys().next().copied()
    }

    fn state_size(&self) -> usize {
        self.windows.values().map(|w| w.aggregates.size()).sum()
    }
}
