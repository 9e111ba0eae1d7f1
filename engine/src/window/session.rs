//! Session windows: per key, rows less than `gap` apart belong to one
//! session; a session ends `gap` after its last row and closes when the
//! watermark passes that end (plus allowed lateness). A row that bridges two
//! sessions merges them, merging their accumulators through DataFusion's
//! `state()` / `merge_batch()` — the same path checkpoints use.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat, take};
use arrow::datatypes::DataType;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::aggregates::EvaluatedInputs;
use super::fixed::as_i64;
use super::{AggregateSpec, GroupLayout, WindowOperator};

/// One open session of one key.
#[derive(Debug)]
struct Session {
    first: i64,
    last: i64,
    accumulators: Option<Vec<Box<dyn Accumulator>>>,
    /// Rows of the batch being processed that belong here.
    pending: Vec<u32>,
}

/// The open sessions of one key.
#[derive(Debug)]
struct KeySessions {
    key: Vec<ArrayRef>,
    sessions: Vec<Session>,
}

/// The operator for session windows.
#[derive(Debug)]
pub struct SessionWindows {
    layout: GroupLayout,
    spec: AggregateSpec,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    gap: i64,
    lateness: i64,
    converter: RowConverter,
    keys: HashMap<OwnedRow, KeySessions>,
    time_type: DataType,
}

impl SessionWindows {
    /// An operator closing sessions after `gap` (event-time unit).
    pub fn new(
        layout: GroupLayout,
        spec: AggregateSpec,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        gap: i64,
        lateness: i64,
    ) -> Result<Self> {
        let fields = layout
            .key_schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let time_type = layout.output.field(layout.start).data_type().clone();
        Ok(Self {
            converter: RowConverter::new(fields)?,
            layout,
            spec,
            aggregates,
            gap,
            lateness,
            keys: HashMap::new(),
            time_type,
        })
    }

    fn new_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.aggregates
            .iter()
            .map(|a| a.create_accumulator())
            .collect()
    }

    /// Places row `row` at time `t` into its key's sessions, merging any
    /// sessions it bridges.
    fn place(&self, entry: &mut KeySessions, t: i64, row: u32) -> Result<()> {
        let gap = self.gap;
        let touching: Vec<usize> = (0..entry.sessions.len())
            .filter(|&i| {
                let s = &entry.sessions[i];
                t - s.last < gap && s.first - t < gap
            })
            .collect();
        let Some((&target, others)) = touching.split_first() else {
            entry.sessions.push(Session {
                first: t,
                last: t,
                accumulators: None,
                pending: vec![row],
            });
            return Ok(());
        };
        for &other in others.iter().rev() {
            let merged = entry.sessions.remove(other);
            merge_into(&mut entry.sessions[target], merged)?;
        }
        let s = &mut entry.sessions[target];
        s.first = s.first.min(t);
        s.last = s.last.max(t);
        s.pending.push(row);
        Ok(())
    }

    fn flush_pending(&self, entry: &mut KeySessions, inputs: &EvaluatedInputs) -> Result<()> {
        for session in entry.sessions.iter_mut().filter(|s| !s.pending.is_empty()) {
            let indices = UInt32Array::from(std::mem::take(&mut session.pending));
            let rows = inputs.take(&indices)?;
            if session.accumulators.is_none() {
                session.accumulators = Some(self.new_accumulators()?);
            }
            if let Some(accumulators) = session.accumulators.as_mut() {
                for (i, acc) in accumulators.iter_mut().enumerate() {
                    acc.update_batch(&rows.filtered_arguments(i)?)?;
                }
            }
        }
        Ok(())
    }
}

fn merge_into(target: &mut Session, other: Session) -> Result<()> {
    target.first = target.first.min(other.first);
    target.last = target.last.max(other.last);
    target.pending.extend(other.pending);
    match (&mut target.accumulators, other.accumulators) {
        (Some(into), Some(mut from)) => {
            for (a, b) in into.iter_mut().zip(from.iter_mut()) {
                let state = b
                    .state()?
                    .iter()
                    .map(|s| s.to_array())
                    .collect::<Result<Vec<_>>>()?;
                a.merge_batch(&state)?;
            }
        }
        (slot @ None, Some(from)) => *slot = Some(from),
        (_, None) => {}
    }
    Ok(())
}

impl WindowOperator for SessionWindows {
    fn process(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let groups = self.layout.evaluate(batch)?;
        let inputs = self.spec.evaluate(batch)?;
        let times = as_i64(&groups[self.layout.start])?;
        let key_columns: Vec<ArrayRef> = self
            .layout
            .keys
            .iter()
            .map(|&k| Arc::clone(&groups[k]))
            .collect();
        let rows = self.converter.convert_columns(&key_columns)?;
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        order.sort_by_key(|&r| times.value(r as usize));
        let mut touched = Vec::new();
        let mut keys = std::mem::take(&mut self.keys);
        for row in order {
            let key = rows.row(row as usize).owned();
            if !keys.contains_key(&key) {
                let one = UInt32Array::from(vec![row]);
                let values = key_columns
                    .iter()
                    .map(|c| Ok(take(c, &one, None)?))
                    .collect::<Result<_>>()?;
                keys.insert(
                    key.clone(),
                    KeySessions {
                        key: values,
                        sessions: Vec::new(),
                    },
                );
                touched.push(key.clone());
            } else if !touched.contains(&key) {
                touched.push(key.clone());
            }
            if let Some(entry) = keys.get_mut(&key) {
                self.place(entry, times.value(row as usize), row)?;
            }
        }
        for key in touched {
            if let Some(entry) = keys.get_mut(&key) {
                self.flush_pending(entry, &inputs)?;
            }
        }
        self.keys = keys;
        Ok(())
    }

    fn close(&mut self, watermark: i64) -> Result<Vec<RecordBatch>> {
        let horizon = self.gap.saturating_add(self.lateness);
        let mut closed = ClosedSessions::default();
        for entry in self.keys.values_mut() {
            let (done, open): (Vec<Session>, Vec<Session>) = std::mem::take(&mut entry.sessions)
                .into_iter()
                .partition(|s| s.last.saturating_add(horizon) <= watermark);
            entry.sessions = open;
            for session in done {
                closed.push(&entry.key, session, self.gap)?;
            }
        }
        self.keys.retain(|_, e| !e.sessions.is_empty());
        if closed.starts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![closed.into_batch(
            &self.layout,
            &self.time_type,
            self.aggregates.len(),
        )?])
    }

    fn open_windows(&self) -> usize {
        self.keys.values().map(|e| e.sessions.len()).sum()
    }

    fn oldest_held(&self) -> Option<i64> {
        self.keys
            .values()
            .flat_map(|e| e.sessions.iter().map(|s| s.first))
            .min()
    }

    fn state_size(&self) -> usize {
        self.keys
            .values()
            .flat_map(|e| &e.sessions)
            .flat_map(|s| s.accumulators.iter().flatten())
            .map(|a| a.size())
            .sum()
    }

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let schema = self.snapshot_schema()?;
        let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
        let mut keys: Vec<Vec<ArrayRef>> = Vec::new();
        let mut states: Vec<Vec<ScalarValue>> = Vec::new();
        for entry in self.keys.values_mut() {
            for session in &mut entry.sessions {
                let Some(accumulators) = session.accumulators.as_mut() else {
                    continue;
                };
                firsts.push(session.first);
                lasts.push(session.last);
                keys.push(entry.key.clone());
                let mut row = Vec::new();
                for acc in accumulators.iter_mut() {
                    row.extend(acc.state()?);
                }
                states.push(row);
            }
        }
        if firsts.is_empty() {
            return Ok(Vec::new());
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(firsts)),
            Arc::new(Int64Array::from(lasts)),
        ];
        let key_count = self.layout.keys.len();
        for k in 0..key_count {
            let parts: Vec<&dyn arrow::array::Array> =
                keys.iter().map(|key| key[k].as_ref()).collect();
            columns.push(concat(&parts)?);
        }
        let width = schema.fields().len() - 2 - key_count;
        for c in 0..width {
            columns.push(ScalarValue::iter_to_array(
                states.iter().map(|row| row[c].clone()),
            )?);
        }
        Ok(vec![RecordBatch::try_new(schema, columns)?])
    }

    fn restore(&mut self, state: &[RecordBatch]) -> Result<()> {
        let schema = self.snapshot_schema()?;
        let key_count = self.layout.keys.len();
        for batch in state {
            super::check_snapshot(batch, &schema)?;
            let firsts = as_i64(batch.column(0))?;
            let lasts = as_i64(batch.column(1))?;
            let key_columns = &batch.columns()[2..2 + key_count];
            let rows = self.converter.convert_columns(key_columns)?;
            for r in 0..batch.num_rows() {
                let mut accumulators = self.new_accumulators()?;
                let mut column = 2 + key_count;
                for (acc, aggregate) in accumulators.iter_mut().zip(&self.aggregates) {
                    let width = aggregate.state_fields()?.len();
                    let slices: Vec<ArrayRef> = batch.columns()[column..column + width]
                        .iter()
                        .map(|c| c.slice(r, 1))
                        .collect();
                    acc.merge_batch(&slices)?;
                    column += width;
                }
                let entry = self
                    .keys
                    .entry(rows.row(r).owned())
                    .or_insert_with(|| KeySessions {
                        key: key_columns.iter().map(|c| c.slice(r, 1)).collect(),
                        sessions: Vec::new(),
                    });
                entry.sessions.push(Session {
                    first: firsts.value(r),
                    last: lasts.value(r),
                    accumulators: Some(accumulators),
                    pending: Vec::new(),
                });
            }
        }
        Ok(())
    }

    fn empty(&self) -> Result<Box<dyn WindowOperator>> {
        Ok(Box::new(Self::new(
            self.layout.clone(),
            self.spec.clone(),
            self.aggregates.clone(),
            self.gap,
            self.lateness,
        )?))
    }
}

impl SessionWindows {
    fn snapshot_schema(&self) -> Result<arrow::datatypes::SchemaRef> {
        use arrow::datatypes::Field;
        super::snapshot_schema(
            vec![
                Arc::new(Field::new("session_first", DataType::Int64, false)),
                Arc::new(Field::new("session_last", DataType::Int64, false)),
            ],
            &self.spec,
        )
    }
}

/// Sessions being emitted, column by column.
#[derive(Debug, Default)]
struct ClosedSessions {
    starts: Vec<i64>,
    ends: Vec<i64>,
    keys: Vec<Vec<ArrayRef>>,
    values: Vec<Vec<ScalarValue>>,
}

impl ClosedSessions {
    fn push(&mut self, key: &[ArrayRef], session: Session, gap: i64) -> Result<()> {
        let Some(mut accumulators) = session.accumulators else {
            return Ok(());
        };
        self.starts.push(session.first);
        self.ends.push(session.last.saturating_add(gap));
        self.keys.push(key.to_vec());
        self.values.push(
            accumulators
                .iter_mut()
                .map(|a| a.evaluate())
                .collect::<Result<_>>()?,
        );
        Ok(())
    }

    fn into_batch(
        self,
        layout: &GroupLayout,
        time_type: &DataType,
        aggregates: usize,
    ) -> Result<RecordBatch> {
        let bound = |v: Vec<i64>| -> Result<ArrayRef> {
            let ints: ArrayRef = Arc::new(Int64Array::from(v));
            Ok(cast(&ints, time_type)?)
        };
        let key_count = self.keys.first().map_or(0, Vec::len);
        let keys = (0..key_count)
            .map(|k| {
                let parts: Vec<&dyn arrow::array::Array> =
                    self.keys.iter().map(|key| key[k].as_ref()).collect();
                Ok(concat(&parts)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let values = (0..aggregates)
            .map(|a| ScalarValue::iter_to_array(self.values.iter().map(|row| row[a].clone())))
            .collect::<Result<Vec<_>>>()?;
        layout.assemble(bound(self.starts)?, bound(self.ends)?, keys, values)
    }
}
