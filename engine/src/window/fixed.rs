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

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let schema = self.snapshot_schema()?;
        let mut batches = Vec::with_capacity(self.windows.len());
        for window in self.windows.values_mut() {
            let (keys, states) = window.aggregates.snapshot(&self.spec)?;
            let rows = states.first().map_or(0, |s| s.len());
            let repeat = UInt32Array::from(vec![0u32; rows]);
            let mut columns = vec![
                take(&window.start_value, &repeat, None)?,
                take(&window.end_value, &repeat, None)?,
            ];
            columns.extend(keys);
            columns.extend(states);
            batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        Ok(batches)
    }

    fn restore(&mut self, state: &[RecordBatch]) -> Result<()> {
        let schema = self.snapshot_schema()?;
        let keys = self.spec.key_schema().fields().len();
        for batch in state.iter().filter(|b| b.num_rows() > 0) {
            super::check_snapshot(batch, &schema)?;
            let start = as_i64(batch.column(0))?.value(0);
            let end = as_i64(batch.column(1))?.value(0);
            let aggregates = self.spec.restore_grouped(
                &batch.columns()[2..2 + keys],
                &batch.columns()[2 + keys..],
                batch.num_rows(),
            )?;
            if self.windows.contains_key(&start) {
                return Err(DataFusionError::Internal(format!(
                    "window at {start} restored twice"
                )));
            }
            self.windows.insert(
                start,
                OpenWindow {
                    end,
                    start_value: batch.column(0).slice(0, 1),
                    end_value: batch.column(1).slice(0, 1),
                    aggregates,
                },
            );
        }
        Ok(())
    }

    fn empty(&self) -> Result<Box<dyn WindowOperator>> {
        Ok(Box::new(Self::new(
            self.layout.clone(),
            self.spec.clone(),
            self.lateness,
        )))
    }
}

impl FixedWindows {
    fn snapshot_schema(&self) -> Result<arrow::datatypes::SchemaRef> {
        let output = &self.layout.output;
        super::snapshot_schema(
            vec![
                Arc::new(output.field(self.layout.start).clone()),
                Arc::new(output.field(self.layout.end).clone()),
            ],
            &self.spec,
        )
    }
}
