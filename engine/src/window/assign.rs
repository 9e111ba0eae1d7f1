//! Assigning rows to windows on event time, before the query's stateless
//! part runs: each on-time row gets `window_start` and `window_end` (a hopping
//! window copies the row once per window it falls in); rows whose windows have
//! already closed are split out as late.
//!
//! Late, per window: a (row, window) pair is late when the window's end plus
//! the allowed lateness is at or below the job watermark, i.e. the window has
//! already been emitted. Session windows are decided per row: a row behind
//! `watermark − allowed lateness` is late (it could otherwise touch a session
//! that has already been emitted).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{SchemaRef, TimeUnit};
use datafusion::error::Result;
use spindle_sql::window::{WindowKind, WindowSpec};

/// Window bounds in the event-time column's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Tumbling windows of `size`.
    Tumble {
        /// Length.
        size: i64,
    },
    /// Hopping windows of `size` every `slide`.
    Hop {
        /// Length.
        size: i64,
        /// Start-to-start distance.
        slide: i64,
    },
    /// Session windows closing after `gap` of inactivity.
    Session {
        /// Inactivity gap.
        gap: i64,
    },
}

/// Units of `unit` in one millisecond, as a multiplier (or divisor for seconds).
pub fn millis_to_unit(ms: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => ms / 1000,
        TimeUnit::Millisecond => ms,
        TimeUnit::Microsecond => ms.saturating_mul(1000),
        TimeUnit::Nanosecond => ms.saturating_mul(1_000_000),
    }
}

impl Shape {
    /// The spec's durations in `unit`.
    pub fn new(spec: &WindowSpec, unit: TimeUnit) -> Self {
        let u = |d: std::time::Duration| millis_to_unit(d.as_millis() as i64, unit).max(1);
        match spec.kind {
            WindowKind::Tumble { size } => Self::Tumble { size: u(size) },
            WindowKind::Hop { size, slide } => Self::Hop {
                size: u(size),
                slide: u(slide),
            },
            WindowKind::Session { gap } => Self::Session { gap: u(gap) },
        }
    }
}

/// Rows split by lateness, both carrying `window_start` / `window_end`.
#[derive(Debug)]
pub struct Assigned {
    /// Rows (copies, for hops) whose windows are open.
    pub on_time: RecordBatch,
    /// Rows (copies) whose windows have closed.
    pub late: RecordBatch,
}

/// Assigns windows to the rows of one source batch.
#[derive(Debug, Clone)]
pub struct WindowAssigner {
    shape: Shape,
    time_column: usize,
    lateness: i64,
    output_schema: SchemaRef,
}

impl WindowAssigner {
    /// `output_schema` is the source schema plus `window_start`, `window_end`.
    pub fn new(shape: Shape, time_column: usize, lateness: i64, output_schema: SchemaRef) -> Self {
        Self {
            shape,
            time_column,
            lateness,
            output_schema,
        }
    }

    /// The window shape, in the event time's unit.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Allowed lateness, in the event time's unit.
    pub fn lateness(&self) -> i64 {
        self.lateness
    }

    /// Event times of a batch as i64 in the column's unit (nulls are `None`).
    pub fn event_times(&self, batch: &RecordBatch) -> Result<Int64Array> {
        super::event_times(batch, self.time_column)
    }

    /// Splits `batch` against the watermark `watermark` (in the column's unit).
    pub fn assign(&self, batch: &RecordBatch, watermark: i64) -> Result<Assigned> {
        let times = self.event_times(batch)?;
        let mut on_time = Pairs::default();
        let mut late = Pairs::default();
        for row in 0..times.len() {
            if times.is_null(row) {
                continue; // rejected as bad input before this point (NOT NULL)
            }
            let t = times.value(row);
            self.windows_of(t, watermark, row as u32, &mut on_time, &mut late);
        }
        Ok(Assigned {
            on_time: self.materialise(batch, &on_time)?,
            late: self.materialise(batch, &late)?,
        })
    }

    fn windows_of(&self, t: i64, watermark: i64, row: u32, on_time: &mut Pairs, late: &mut Pairs) {
        let closed = |end: i64| end.saturating_add(self.lateness) <= watermark;
        match self.shape {
            Shape::Tumble { size } => {
                let start = t - t.rem_euclid(size);
                let target = if closed(start + size) { late } else { on_time };
                target.push(row, start, start + size);
            }
            Shape::Hop { size, slide } => {
                let last_start = t - t.rem_euclid(slide);
                let mut start = last_start;
                while start > t - size {
                    let target = if closed(start + size) {
                        &mut *late
                    } else {
                        &mut *on_time
                    };
                    target.push(row, start, start + size);
                    start -= slide;
                }
            }
            Shape::Session { gap } => {
                // The session operator sets the real bounds; until then a
                // row's own [t, t + gap) stands in.
                let target = if t < watermark.saturating_sub(self.lateness) {
                    late
                } else {
                    on_time
                };
                target.push(row, t, t.saturating_add(gap));
            }
        }
    }

    fn materialise(&self, batch: &RecordBatch, pairs: &Pairs) -> Result<RecordBatch> {
        let indices = UInt32Array::from(pairs.rows.clone());
        let mut columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<std::result::Result<_, _>>()?;
        let time_type = batch.schema().field(self.time_column).data_type().clone();
        for bounds in [&pairs.starts, &pairs.ends] {
            let ints: ArrayRef = Arc::new(Int64Array::from(bounds.clone()));
            columns.push(cast(&ints, &time_type)?);
        }
        Ok(RecordBatch::try_new(
            Arc::clone(&self.output_schema),
            columns,
        )?)
    }
}

/// Row indices with their window bounds.
#[derive(Debug, Default)]
struct Pairs {
    rows: Vec<u32>,
    starts: Vec<i64>,
    ends: Vec<i64>,
}

impl Pairs {
    fn push(&mut self, row: u32, start: i64, end: i64) {
        self.rows.push(row);
        self.starts.push(start);
        self.ends.push(end);
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::TimestampMillisecondArray;
    use arrow::datatypes::DataType;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(times: &[i64]) -> (RecordBatch, SchemaRef) {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![Field::new("ts", ts.clone(), false)]));
        let out = Arc::new(Schema::new(vec![
            Field::new("ts", ts.clone(), false),
            Field::new("window_start", ts.clone(), false),
            Field::new("window_end", ts, false),
        ]));
        let array = TimestampMillisecondArray::from(times.to_vec()).with_timezone("UTC");
        (
            RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap(),
            out,
        )
    }

    fn bounds(batch: &RecordBatch) -> Vec<(i64, i64, i64)> {
        let ints = |i: usize| {
            let a = cast(batch.column(i), &DataType::Int64).unwrap();
            a.as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let (t, s, e) = (ints(0), ints(1), ints(2));
        (0..t.len()).map(|i| (t[i], s[i], e[i])).collect()
    }

    #[test]
    fn tumbling_windows_floor_to_the_size_and_split_closed_ones() {
        let (b, out) = batch(&[5, 10, 19, 25, -1]);
        let a = WindowAssigner::new(Shape::Tumble { size: 10 }, 0, 0, out);
        let r = a.assign(&b, 20).unwrap();
        assert_eq!(bounds(&r.on_time), vec![(25, 20, 30)]);
        assert_eq!(
            bounds(&r.late),
            vec![(5, 0, 10), (10, 10, 20), (19, 10, 20), (-1, -10, 0)]
        );
    }

    #[test]
    fn hopping_windows_copy_rows_into_every_window_they_fall_in() {
        let (b, out) = batch(&[12]);
        let a = WindowAssigner::new(Shape::Hop { size: 15, slide: 5 }, 0, 0, out);
        let r = a.assign(&b, 16).unwrap();
        assert_eq!(bounds(&r.on_time), vec![(12, 10, 25), (12, 5, 20)]);
        assert_eq!(bounds(&r.late), vec![(12, 0, 15)]);
    }

    #[test]
    fn allowed_lateness_keeps_windows_open_longer() {
        let (b, out) = batch(&[5]);
        let a = WindowAssigner::new(Shape::Tumble { size: 10 }, 0, 3, out);
        assert_eq!(a.assign(&b, 12).unwrap().on_time.num_rows(), 1);
        assert_eq!(a.assign(&b, 13).unwrap().late.num_rows(), 1);
    }

    #[test]
    fn session_rows_behind_the_watermark_are_late() {
        let (b, out) = batch(&[5, 20]);
        let a = WindowAssigner::new(Shape::Session { gap: 10 }, 0, 0, out);
        let r = a.assign(&b, 10).unwrap();
        assert_eq!(bounds(&r.on_time), vec![(20, 20, 30)]);
        assert_eq!(bounds(&r.late), vec![(5, 5, 15)]);
    }
}
