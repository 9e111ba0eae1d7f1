//! Arrow rows → line protocol: one line per row,
//! `measurement,tag=v,… field=v,… timestamp`.
//!
//! Field types follow the column's Arrow type: signed integers `42i`,
//! unsigned `42u`, floats and decimals `4.2`, booleans `true`, strings
//! quoted, TIMESTAMP columns integer nanoseconds since the epoch; anything
//! else castable to text (dates, times, durations) is a quoted string. A
//! null, NaN or ±Inf field is left out of its line and counted; a row left
//! with no field (or without a measurement or a time) is counted and not
//! sent. A row whose measurement or tag values the target cannot carry
//! goes to the dead-letter output.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};

use super::escape::{Element, Escaping, escape_name, quote_string};
use super::lines::Lines;
use super::request::Precision;
use crate::error::{EngineError, Result};
use crate::side_output::Rejected;

/// How a column is written as a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// `42i`.
    Int,
    /// `42u`.
    UInt,
    /// `4.2`.
    Float,
    /// `true`.
    Bool,
    /// `"text"`.
    Str,
    /// Integer nanoseconds since the epoch.
    TimestampNanos,
}

impl FieldKind {
    /// The field kind of a column type; `None` for types line protocol has
    /// no place for (binary, lists, structs, maps).
    pub(crate) fn of(data_type: &DataType) -> Option<Self> {
        use DataType::*;
        match data_type {
            Int8 | Int16 | Int32 | Int64 => Some(Self::Int),
            UInt8 | UInt16 | UInt32 | UInt64 => Some(Self::UInt),
            Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
            | Decimal256(..) => Some(Self::Float),
            Boolean => Some(Self::Bool),
            Timestamp(..) => Some(Self::TimestampNanos),
            Dictionary(_, value) => Self::of(value),
            Binary | LargeBinary | BinaryView | FixedSizeBinary(_) | List(_) | LargeList(_)
            | ListView(_) | LargeListView(_) | FixedSizeList(..) | Struct(_) | Map(..)
            | Union(..) | RunEndEncoded(..) | Null => None,
            _ if arrow::compute::can_cast_types(data_type, &Utf8) => Some(Self::Str),
            _ => None,
        }
    }
}

/// Where a line's measurement comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Measurement {
    /// The same name for every row.
    Fixed(String),
    /// The value of this column.
    Column(usize),
}

/// Which columns become what, fixed when the sink opens.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The measurement.
    pub measurement: Measurement,
    /// Tag columns (name, index).
    pub tags: Vec<(String, usize)>,
    /// Field columns (name, index, kind).
    pub fields: Vec<(String, usize, FieldKind)>,
    /// The time column and its unit; `None`: the server's time.
    pub time: Option<(usize, TimeUnit)>,
    /// Timestamp unit of the lines.
    pub precision: Precision,
    /// Escaping of the target's parser.
    pub escaping: Escaping,
}

/// Counts of what could not be written as it came.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EncodeStats {
    /// Rows seen.
    pub rows: u64,
    /// Lines produced.
    pub lines: u64,
    /// Fields left out: null.
    pub null_fields: u64,
    /// Fields left out: NaN or ±Inf.
    pub non_finite_fields: u64,
    /// Rows not sent because no field was left.
    pub rows_without_fields: u64,
    /// Rows not sent because the measurement or time was missing.
    pub rows_without_measurement_or_time: u64,
    /// Rows not sent because a name could not be carried (dead-lettered).
    pub rows_unrepresentable: u64,
}

/// Encodes rows with a fixed [`Layout`]; names are escaped once.
#[derive(Debug)]
pub(crate) struct LineEncoder {
    layout: Layout,
    measurement: Option<Vec<u8>>,
    tag_keys: Vec<Vec<u8>>,
    field_keys: Vec<Vec<u8>>,
}

/// A batch's columns cast to the types lines are written from.
enum Values {
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
    Bool(BooleanArray),
    Str(StringArray),
}

impl LineEncoder {
    /// Escapes the layout's fixed names; an error names the one that cannot
    /// be written.
    pub(crate) fn new(layout: Layout) -> std::result::Result<Self, String> {
        let escape = |text: &str, element: Element, what: &str| {
            let mut out = Vec::new();
            escape_name(&mut out, text, element, layout.escaping)
                .map(|()| out)
                .map_err(|why| format!("{what} {text:?} {why}"))
        };
        let measurement = match &layout.measurement {
            Measurement::Fixed(name) if name.is_empty() || name.starts_with('#') => {
                return Err(format!(
                    "measurement {name:?} cannot be empty or start with #"
                ));
            }
            Measurement::Fixed(name) => Some(escape(name, Element::Measurement, "measurement")?),
            Measurement::Column(_) => None,
        };
        let tag_keys = layout
            .tags
            .iter()
            .map(|(name, _)| escape(name, Element::Key, "tag column"))
            .collect::<std::result::Result<_, _>>()?;
        let field_keys = layout
            .fields
            .iter()
            .map(|(name, _, _)| escape(name, Element::Key, "field column"))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Self {
            layout,
            measurement,
            tag_keys,
            field_keys,
        })
    }

    /// Appends one line per row of `batch` to `out`; returns the rows the
    /// target cannot carry, for the dead-letter output.
    pub(crate) fn encode(
        &self,
        batch: &RecordBatch,
        out: &mut Lines,
        stats: &mut EncodeStats,
    ) -> Result<Vec<Rejected>> {
        let columns = Columns::new(&self.layout, batch)?;
        let mut rejected = Vec::new();
        let mut present = Vec::with_capacity(self.layout.fields.len());
        for row in 0..batch.num_rows() {
            stats.rows += 1;
            present.clear();
            for (i, values) in columns.fields.iter().enumerate() {
                match field_state(values, row) {
                    FieldState::Present => present.push(i),
                    FieldState::Null => stats.null_fields += 1,
                    FieldState::NonFinite => stats.non_finite_fields += 1,
                }
            }
            if present.is_empty() {
                stats.rows_without_fields += 1;
                continue;
            }
            let time = match &columns.time {
                None => None,
                Some(times) if times.is_valid(row) => {
                    let unit = self.layout.time.map_or(TimeUnit::Nanosecond, |(_, u)| u);
                    Some(to_precision(times.value(row), unit, self.layout.precision))
                }
                Some(_) => {
                    stats.rows_without_measurement_or_time += 1;
                    continue;
                }
            };
            let start = out.body.len();
            match self.line(&columns, row, &present, time, &mut out.body) {
                Ok(true) => {
                    out.body.push(b'\n');
                    out.push_end();
                    stats.lines += 1;
                }
                Ok(false) => {
                    out.body.truncate(start);
                    stats.rows_without_measurement_or_time += 1;
                }
                Err(why) => {
                    let raw = String::from_utf8_lossy(&out.body[start..]).into_owned();
                    out.body.truncate(start);
                    stats.rows_unrepresentable += 1;
                    rejected.push(Rejected {
                        error: why,
                        raw: Some(raw),
                        lines: 1,
                    });
                }
            }
        }
        Ok(rejected)
    }

    /// Writes one line without its newline (no timestamp: the server's
    /// time); `Ok(false)` when the row has no measurement; `Err` names a
    /// value the target cannot carry.
    fn line(
        &self,
        columns: &Columns,
        row: usize,
        present: &[usize],
        time: Option<i64>,
        out: &mut Vec<u8>,
    ) -> std::result::Result<bool, String> {
        match (&self.measurement, &columns.measurement) {
            (Some(fixed), _) => out.extend_from_slice(fixed),
            (None, Some(names)) => {
                if names.is_null(row) || names.value(row).is_empty() {
                    return Ok(false);
                }
                let name = names.value(row);
                if name.starts_with('#') {
                    return Err(format!("measurement {name:?} starts with #"));
                }
                escape_name(out, name, Element::Measurement, self.layout.escaping)
                    .map_err(|why| format!("measurement {name:?} {why}"))?;
            }
            (None, None) => return Ok(false),
        }
        for ((key, values), (column, _)) in self
            .tag_keys
            .iter()
            .zip(&columns.tags)
            .zip(&self.layout.tags)
        {
            if values.is_null(row) || values.value(row).is_empty() {
                continue;
            }
            out.push(b',');
            out.extend_from_slice(key);
            out.push(b'=');
            let value = values.value(row);
            escape_name(out, value, Element::Key, self.layout.escaping)
                .map_err(|why| format!("tag {column:?} value {value:?} {why}"))?;
        }
        for (n, &i) in present.iter().enumerate() {
            out.push(if n == 0 { b' ' } else { b',' });
            out.extend_from_slice(&self.field_keys[i]);
            out.push(b'=');
            write_field(out, &columns.fields[i], row);
        }
        if let Some(time) = time {
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
        }
        Ok(true)
    }
}

/// The batch's columns, cast once per batch.
struct Columns {
    measurement: Option<StringArray>,
    tags: Vec<StringArray>,
    fields: Vec<Values>,
    time: Option<Int64Array>,
}

impl Columns {
    fn new(layout: &Layout, batch: &RecordBatch) -> Result<Self> {
        let measurement = match &layout.measurement {
            Measurement::Column(i) => Some(strings(batch.column(*i))?),
            Measurement::Fixed(_) => None,
        };
        let tags = layout
            .tags
            .iter()
            .map(|(_, i)| strings(batch.column(*i)))
            .collect::<Result<_>>()?;
        let fields = layout
            .fields
            .iter()
            .map(|(_, i, kind)| values(batch.column(*i), *kind))
            .collect::<Result<_>>()?;
        let time = match layout.time {
            Some((i, _)) => Some(ints(batch.column(i))?),
            None => None,
        };
        Ok(Self {
            measurement,
            tags,
            fields,
            time,
        })
    }
}

fn cast_to(column: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if column.data_type() == to {
        return Ok(Arc::clone(column));
    }
    cast(column, to).map_err(|e| {
        EngineError::Internal(format!(
            "influxdb sink: casting {} to {to}: {e}",
            column.data_type()
        ))
    })
}

fn downcast<T: Clone + 'static>(array: &ArrayRef) -> Result<T> {
    array
        .as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| EngineError::Internal("influxdb sink: unexpected array type".into()))
}

fn strings(column: &ArrayRef) -> Result<StringArray> {
    downcast(&cast_to(column, &DataType::Utf8)?)
}

/// Integers of a column; timestamps as their raw value in their own unit.
fn ints(column: &ArrayRef) -> Result<Int64Array> {
    downcast(&cast_to(column, &DataType::Int64)?)
}

fn values(column: &ArrayRef, kind: FieldKind) -> Result<Values> {
    Ok(match kind {
        FieldKind::Int => Values::Int(ints(column)?),
        FieldKind::UInt => Values::UInt(downcast(&cast_to(column, &DataType::UInt64)?)?),
        FieldKind::Float => Values::Float(downcast(&cast_to(column, &DataType::Float64)?)?),
        FieldKind::Bool => Values::Bool(downcast(&cast_to(column, &DataType::Boolean)?)?),
        FieldKind::Str => Values::Str(strings(column)?),
        FieldKind::TimestampNanos => {
            let nanos = cast_to(column, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
            Values::Int(ints(&nanos)?)
        }
    })
}

enum FieldState {
    Present,
    Null,
    NonFinite,
}

fn field_state(values: &Values, row: usize) -> FieldState {
    let valid = match values {
        Values::Int(a) => a.is_valid(row),
        Values::UInt(a) => a.is_valid(row),
        Values::Float(a) => a.is_valid(row),
        Values::Bool(a) => a.is_valid(row),
        Values::Str(a) => a.is_valid(row),
    };
    match values {
        _ if !valid => FieldState::Null,
        Values::Float(a) if !a.value(row).is_finite() => FieldState::NonFinite,
        _ => FieldState::Present,
    }
}

fn write_field(out: &mut Vec<u8>, values: &Values, row: usize) {
    match values {
        Values::Int(a) => {
            out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
            out.push(b'i');
        }
        Values::UInt(a) => {
            out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
            out.push(b'u');
        }
        Values::Float(a) => {
            use std::io::Write;
            // Shortest text that reads back as the same f64, never an exponent.
            let _ = write!(out, "{}", a.value(row));
        }
        Values::Bool(a) => {
            out.extend_from_slice(if a.value(row) { b"true" } else { b"false" });
        }
        Values::Str(a) => quote_string(out, a.value(row)),
    }
}

/// A timestamp in `unit` as a count of `precision` (rounded down).
pub(crate) fn to_precision(value: i64, unit: TimeUnit, precision: Precision) -> i64 {
    let unit_nanos: i128 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    let scaled = (i128::from(value) * unit_nanos).div_euclid(i128::from(precision.nanos()));
    scaled.clamp(i128::from(i64::MIN + 1), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
