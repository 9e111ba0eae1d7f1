//! Rows given as (column name → value) pairs → one Arrow batch in a table's
//! schema; the shared back end of the line-protocol and OpenMetrics decoders.
//!
//! A record may hold several rows, and a bad record must leave nothing
//! behind, but Arrow builders cannot take values back. So rows are staged
//! first: [`RowBuilder::stage`] converts and checks a whole row (types,
//! ranges, NOT NULL) into a per-column staging area, and only
//! [`RowBuilder::commit`] appends the staged rows of a record to the builders
//! ([`RowBuilder::rollback`] drops them). Appending can then no longer fail.
//!
//! Conversions (anything else is a type mismatch naming column and value):
//! - integers, unsigned integers and floats into any integer or float column;
//!   a float goes into an integer column only if it is a whole number, and
//!   every value must be in the column's range;
//! - booleans into `Boolean`;
//! - strings into `Utf8`, `LargeUtf8` and `Utf8View`, and (parsed as RFC 3339
//!   / ISO dates) into `Timestamp` and `Date32`;
//! - nanosecond timestamps into `Timestamp` of any unit, rounded down to the
//!   unit (the column's time zone is kept), and into `Date32` (the UTC day).
//!
//! Names that are not columns are ignored, like unknown JSON keys; a column
//! with no value is null. Columns of other types can only be null.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, LargeStringBuilder, RecordBatch, RecordBatchOptions,
    StringBuilder, StringViewBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
    TimestampNanosecondBuilder, TimestampSecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder,
    UInt64Builder, new_null_array,
};
use arrow::compute::kernels::cast_utils::{Parser, string_to_timestamp_nanos};
use arrow::datatypes::{DataType, Date32Type, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use super::{Decoded, RawBatch};

/// One value of a row, before conversion to its column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A float.
    Float(f64),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
    /// Nanoseconds since the Unix epoch.
    TimestampNanos(i64),
}

/// Longest string value quoted in an error message.
const MAX_QUOTED_CHARS: usize = 64;

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Float(v) => write!(f, "float {v:?}"),
            Self::Int(v) => write!(f, "integer {v}"),
            Self::UInt(v) => write!(f, "unsigned integer {v}"),
            Self::Bool(v) => write!(f, "boolean {v}"),
            Self::Str(s) => match s.char_indices().nth(MAX_QUOTED_CHARS) {
                Some((cut, _)) => write!(f, "string {:?}…", s.get(..cut).unwrap_or_default()),
                None => write!(f, "string {s:?}"),
            },
            Self::TimestampNanos(v) => write!(f, "timestamp {v} ns"),
        }
    }
}

/// Why a row was rejected; always about one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    column: String,
    message: String,
}

impl RowError {
    /// The column the error is about.
    pub fn column(&self) -> &str {
        &self.column
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RowError {}

/// A converted, checked value waiting in the staging area; strings are
/// byte ranges of `RowBuilder::staged_text`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Bool(bool),
    /// Signed integers, dates (days) and timestamps (in the column's unit).
    Int(i64),
    UInt(u64),
    /// Both float widths (range already checked for `Float32`).
    Float(f64),
    Str(usize, usize),
}

/// The Arrow builder of one column.
#[derive(Debug)]
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Utf8View(StringViewBuilder),
    Date32(Date32Builder),
    Second(TimestampSecondBuilder),
    Millisecond(TimestampMillisecondBuilder),
    Microsecond(TimestampMicrosecondBuilder),
    Nanosecond(TimestampNanosecondBuilder),
    /// A type no value converts to: only nulls, counted.
    Unsupported(DataType, usize),
}

impl ColumnBuilder {
    fn new(data_type: &DataType) -> Self {
        match data_type {
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Int8 => Self::Int8(Int8Builder::new()),
            DataType::Int16 => Self::Int16(Int16Builder::new()),
            DataType::Int32 => Self::Int32(Int32Builder::new()),
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::UInt8 => Self::UInt8(UInt8Builder::new()),
            DataType::UInt16 => Self::UInt16(UInt16Builder::new()),
            DataType::UInt32 => Self::UInt32(UInt32Builder::new()),
            DataType::UInt64 => Self::UInt64(UInt64Builder::new()),
            DataType::Float32 => Self::Float32(Float32Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            DataType::Utf8 => Self::Utf8(StringBuilder::new()),
            DataType::LargeUtf8 => Self::LargeUtf8(LargeStringBuilder::new()),
            DataType::Utf8View => Self::Utf8View(StringViewBuilder::new()),
            DataType::Date32 => Self::Date32(Date32Builder::new()),
            DataType::Timestamp(unit, tz) => match unit {
                TimeUnit::Second => {
                    Self::Second(TimestampSecondBuilder::new().with_timezone_opt(tz.clone()))
                }
                TimeUnit::Millisecond => Self::Millisecond(
                    TimestampMillisecondBuilder::new().with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Microsecond => Self::Microsecond(
                    TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Nanosecond => Self::Nanosecond(
                    TimestampNanosecondBuilder::new().with_timezone_opt(tz.clone()),
                ),
            },
            other => Self::Unsupported(other.clone(), 0),
        }
    }

    /// Appends a staged cell. Cells were converted for this column's type,
    /// so the fallback (null) is unreachable; it exists so that no input can
    /// make this panic.
    fn append(&mut self, cell: Option<Cell>, text: &str) {
        let string = |start: usize, end: usize| text.get(start..end);
        match (self, cell) {
            (Self::Boolean(b), Some(Cell::Bool(v))) => b.append_value(v),
            (Self::Int8(b), Some(Cell::Int(v))) => b.append_option(v.try_into().ok()),
            (Self::Int16(b), Some(Cell::Int(v))) => b.append_option(v.try_into().ok()),
            (Self::Int32(b), Some(Cell::Int(v))) => b.append_option(v.try_into().ok()),
            (Self::Int64(b), Some(Cell::Int(v))) => b.append_value(v),
            (Self::UInt8(b), Some(Cell::UInt(v))) => b.append_option(v.try_into().ok()),
            (Self::UInt16(b), Some(Cell::UInt(v))) => b.append_option(v.try_into().ok()),
            (Self::UInt32(b), Some(Cell::UInt(v))) => b.append_option(v.try_into().ok()),
            (Self::UInt64(b), Some(Cell::UInt(v))) => b.append_value(v),
            (Self::Float32(b), Some(Cell::Float(v))) => b.append_value(v as f32),
            (Self::Float64(b), Some(Cell::Float(v))) => b.append_value(v),
            (Self::Utf8(b), Some(Cell::Str(s, e))) => b.append_option(string(s, e)),
            (Self::LargeUtf8(b), Some(Cell::Str(s, e))) => b.append_option(string(s, e)),
            (Self::Utf8View(b), Some(Cell::Str(s, e))) => b.append_option(string(s, e)),
            (Self::Date32(b), Some(Cell::Int(v))) => b.append_option(v.try_into().ok()),
            (Self::Second(b), Some(Cell::Int(v))) => b.append_value(v),
            (Self::Millisecond(b), Some(Cell::Int(v))) => b.append_value(v),
            (Self::Microsecond(b), Some(Cell::Int(v))) => b.append_value(v),
            (Self::Nanosecond(b), Some(Cell::Int(v))) => b.append_value(v),
            (builder, _) => builder.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::UInt8(b) => b.append_null(),
            Self::UInt16(b) => b.append_null(),
            Self::UInt32(b) => b.append_null(),
            Self::UInt64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::LargeUtf8(b) => b.append_null(),
            Self::Utf8View(b) => b.append_null(),
            Self::Date32(b) => b.append_null(),
            Self::Second(b) => b.append_null(),
            Self::Millisecond(b) => b.append_null(),
            Self::Microsecond(b) => b.append_null(),
            Self::Nanosecond(b) => b.append_null(),
            Self::Unsupported(_, nulls) => *nulls += 1,
        }
    }

    /// The column so far; the builder starts over empty.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::UInt8(b) => Arc::new(b.finish()),
            Self::UInt16(b) => Arc::new(b.finish()),
            Self::UInt32(b) => Arc::new(b.finish()),
            Self::UInt64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::LargeUtf8(b) => Arc::new(b.finish()),
            Self::Utf8View(b) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::Second(b) => Arc::new(b.finish()),
            Self::Millisecond(b) => Arc::new(b.finish()),
            Self::Microsecond(b) => Arc::new(b.finish()),
            Self::Nanosecond(b) => Arc::new(b.finish()),
            Self::Unsupported(data_type, nulls) => new_null_array(data_type, std::mem::take(nulls)),
        }
    }
}

/// Why a value does not fit a column: a plain type mismatch, or a reason.
type Misfit = Option<&'static str>;

/// `value` as a whole number, wide enough for every integer column.
fn whole(value: Value<'_>) -> Result<i128, Misfit> {
    match value {
        Value::Int(v) => Ok(v.into()),
        Value::UInt(v) => Ok(v.into()),
        // `as` saturates; every whole float inside the i64/u64 range is exact.
        Value::Float(v) if v.is_finite() && v.fract() == 0.0 => Ok(v as i128),
        Value::Float(_) => Err(Some("not a whole number")),
        _ => Err(None),
    }
}

fn signed(value: Value<'_>, min: i64, max: i64) -> Result<Cell, Misfit> {
    let v = whole(value)?;
    match i64::try_from(v) {
        Ok(v) if (min..=max).contains(&v) => Ok(Cell::Int(v)),
        _ => Err(Some("out of range")),
    }
}

fn unsigned(value: Value<'_>, max: u64) -> Result<Cell, Misfit> {
    let v = whole(value)?;
    match u64::try_from(v) {
        Ok(v) if v <= max => Ok(Cell::UInt(v)),
        _ => Err(Some("out of range")),
    }
}

fn float(value: Value<'_>) -> Result<f64, Misfit> {
    match value {
        Value::Float(v) => Ok(v),
        Value::Int(v) => Ok(v as f64),
        Value::UInt(v) => Ok(v as f64),
        _ => Err(None),
    }
}

/// Nanoseconds since the epoch in `unit`, rounded down.
fn from_nanos(nanos: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => nanos.div_euclid(1_000_000_000),
        TimeUnit::Millisecond => nanos.div_euclid(1_000_000),
        TimeUnit::Microsecond => nanos.div_euclid(1_000),
        TimeUnit::Nanosecond => nanos,
    }
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Converts `value` for a column of `data_type`, copying strings into `text`.
fn convert(data_type: &DataType, value: Value<'_>, text: &mut String) -> Result<Cell, Misfit> {
    let i = |min: i64, max: i64| signed(value, min, max);
    match (data_type, value) {
        (DataType::Boolean, Value::Bool(v)) => Ok(Cell::Bool(v)),
        (DataType::Int8, _) => i(i8::MIN.into(), i8::MAX.into()),
        (DataType::Int16, _) => i(i16::MIN.into(), i16::MAX.into()),
        (DataType::Int32, _) => i(i32::MIN.into(), i32::MAX.into()),
        (DataType::Int64, _) => i(i64::MIN, i64::MAX),
        (DataType::UInt8, _) => unsigned(value, u8::MAX.into()),
        (DataType::UInt16, _) => unsigned(value, u16::MAX.into()),
        (DataType::UInt32, _) => unsigned(value, u32::MAX.into()),
        (DataType::UInt64, _) => unsigned(value, u64::MAX),
        (DataType::Float64, _) => float(value).map(Cell::Float),
        (DataType::Float32, _) => {
            let v = float(value)?;
            if v.is_finite() && !(v as f32).is_finite() {
                return Err(Some("out of range"));
            }
            Ok(Cell::Float(v))
        }
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, Value::Str(s)) => {
            let start = text.len();
            text.push_str(s);
            Ok(Cell::Str(start, text.len()))
        }
        (DataType::Timestamp(unit, _), Value::TimestampNanos(v)) => {
            Ok(Cell::Int(from_nanos(v, *unit)))
        }
        (DataType::Timestamp(unit, _), Value::Str(s)) => match string_to_timestamp_nanos(s) {
            Ok(v) => Ok(Cell::Int(from_nanos(v, *unit))),
            Err(_) => Err(Some("not an RFC 3339 timestamp")),
        },
        (DataType::Date32, Value::TimestampNanos(v)) => Ok(Cell::Int(v.div_euclid(NANOS_PER_DAY))),
        (DataType::Date32, Value::Str(s)) => match Date32Type::parse(s) {
            Some(days) => Ok(Cell::Int(days.into())),
            None => Err(Some("not a date")),
        },
        (
            DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Timestamp(..)
            | DataType::Date32,
            _,
        ) => Err(None),
        _ => Err(Some("the column's type is not supported by this decoder")),
    }
}

/// Builds one [`RecordBatch`] in a fixed schema from staged, checked rows.
#[derive(Debug)]
pub struct RowBuilder {
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    by_name: HashMap<String, usize>,
    /// Staged rows, one cell per column each, row after row.
    staged: Vec<Option<Cell>>,
    /// The strings of the staged rows.
    staged_text: String,
    staged_rows: usize,
    /// Committed rows.
    rows: usize,
}

impl RowBuilder {
    /// An empty builder for `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type()))
            .collect();
        let mut by_name = HashMap::new();
        for (i, field) in schema.fields().iter().enumerate() {
            by_name.entry(field.name().clone()).or_insert(i);
        }
        Self {
            schema,
            builders,
            by_name,
            staged: Vec::new(),
            staged_text: String::new(),
            staged_rows: 0,
            rows: 0,
        }
    }

    /// The schema rows are built in.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The type of column `name`, if there is one.
    pub fn data_type(&self, name: &str) -> Option<&DataType> {
        let i = *self.by_name.get(name)?;
        self.schema.fields().get(i).map(|f| f.data_type())
    }

    /// Converts and checks one row and stages it, or rejects it whole:
    /// a value that does not fit its column, a column given twice, or a
    /// NOT NULL column without a value. Names that are not columns are
    /// ignored.
    pub fn stage<'n, 'v>(
        &mut self,
        values: impl IntoIterator<Item = (&'n str, Value<'v>)>,
    ) -> Result<(), RowError> {
        let base = self.staged.len();
        let text_base = self.staged_text.len();
        let result = self.stage_cells(base, values);
        if result.is_ok() {
            self.staged_rows += 1;
        } else {
            self.staged.truncate(base);
            self.staged_text.truncate(text_base);
        }
        result
    }

    fn stage_cells<'n, 'v>(
        &mut self,
        base: usize,
        values: impl IntoIterator<Item = (&'n str, Value<'v>)>,
    ) -> Result<(), RowError> {
        let fields = self.schema.fields();
        self.staged.resize(base + fields.len(), None);
        for (name, value) in values {
            let Some(&i) = self.by_name.get(name) else {
                continue;
            };
            let (Some(field), Some(slot)) = (fields.get(i), self.staged.get_mut(base + i)) else {
                continue;
            };
            let error = |message: String| RowError {
                column: name.to_owned(),
                message,
            };
            if slot.is_some() {
                return Err(error(format!("column {name:?} is given twice")));
            }
            let data_type = field.data_type();
            match convert(data_type, value, &mut self.staged_text) {
                Ok(cell) => *slot = Some(cell),
                Err(why) => {
                    let why = why.map(|w| format!(": {w}")).unwrap_or_default();
                    return Err(error(format!(
                        "column {name:?} ({data_type}) cannot take {value}{why}"
                    )));
                }
            }
        }
        let row = self.staged.get(base..).unwrap_or_default();
        for (field, cell) in fields.iter().zip(row) {
            if cell.is_none() && !field.is_nullable() {
                return Err(RowError {
                    column: field.name().clone(),
                    message: format!("missing value for NOT NULL column {:?}", field.name()),
                });
            }
        }
        Ok(())
    }

    /// Rows staged since the last commit or rollback.
    pub fn staged_rows(&self) -> usize {
        self.staged_rows
    }

    /// Appends the staged rows.
    pub fn commit(&mut self) {
        // `max(1)`: with no columns there are no cells, only a row count.
        for row in self.staged.chunks_exact(self.builders.len().max(1)) {
            for (builder, cell) in self.builders.iter_mut().zip(row) {
                builder.append(*cell, &self.staged_text);
            }
        }
        self.rows += self.staged_rows;
        self.rollback();
    }

    /// Drops the staged rows.
    pub fn rollback(&mut self) {
        self.staged.clear();
        self.staged_text.clear();
        self.staged_rows = 0;
    }

    /// Committed rows not yet taken by [`Self::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are committed.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The committed rows as a batch; staged rows are dropped and the
    /// builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rollback();
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let options =
            RecordBatchOptions::new().with_row_count(Some(std::mem::take(&mut self.rows)));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
    }
}

/// The column taking line timestamps: `explicit`, else `ts` or `time` if
/// the schema has one. A named column missing from the schema means
/// timestamps are dropped, like any unknown name.
pub(super) fn resolve_time_column(schema: &SchemaRef, explicit: Option<&str>) -> Option<String> {
    match explicit {
        Some(name) => Some(name.to_owned()),
        None => ["ts", "time"]
            .into_iter()
            .find(|name| schema.field_with_name(name).is_ok())
            .map(str::to_owned),
    }
}

/// The text of a record, or why it has none.
fn record_text(payload: &[u8]) -> Result<&str, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err("empty record".into());
    }
    std::str::from_utf8(payload).map_err(|e| format!("record is not valid UTF-8: {e}"))
}

/// The decode loop of text formats: `stage` stages the rows of one record
/// (at least one, or an error); a record's rows are committed only if all of
/// them staged, so a bad record leaves nothing behind.
pub(super) fn decode_records(
    raw: &RawBatch,
    rows: &mut RowBuilder,
    mut stage: impl FnMut(&mut RowBuilder, &str) -> Result<(), String>,
) -> Decoded {
    rows.rollback();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut row_records = Vec::new();
    for i in 0..raw.len() {
        match record_text(raw.payload(i)).and_then(|text| stage(rows, text)) {
            Ok(()) => {
                row_records.extend(std::iter::repeat_n(i as u32, rows.staged_rows()));
                rows.commit();
                good.push(i);
            }
            Err(error) => {
                rows.rollback();
                bad.push(raw.bad(i, error));
            }
        }
    }
    match rows.finish() {
        Ok(batch) => Decoded {
            batch,
            bad,
            row_records,
        },
        // Every committed row was checked, so this is a bug; still, the
        // rows must not vanish silently.
        Err(e) => {
            let error = format!("internal error building the batch: {e}");
            bad.extend(good.into_iter().map(|i| raw.bad(i, error.clone())));
            bad.sort_by_key(|b| b.offset);
            let batch = RecordBatch::new_empty(rows.schema().clone());
            Decoded {
                batch,
                bad,
                row_records: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
