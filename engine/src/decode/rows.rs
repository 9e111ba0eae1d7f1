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
    for i in 0..raw.len() {
        match record_text(raw.payload(i)).and_then(|text| stage(rows, text)) {
            Ok(()) => {
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
        Ok(batch) => Decoded { batch, bad },
        // Every committed row was checked, so this is a bug; still, the
        // rows must not vanish silently.
        Err(e) => {
            let error = format!("internal error building the batch: {e}");
            bad.extend(good.into_iter().map(|i| raw.bad(i, error.clone())));
            bad.sort_by_key(|b| b.offset);
            let batch = RecordBatch::new_empty(rows.schema().clone());
            Decoded { batch, bad }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, AsArray, BooleanArray, Date32Array, Float32Array, Int8Array, Int64Array,
        StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    /// Stages and commits one row into a single column of `data_type`,
    /// returning the column or the error.
    fn one(data_type: DataType, value: Value<'_>) -> Result<ArrayRef, String> {
        let mut rows = RowBuilder::new(schema(vec![Field::new("c", data_type, true)]));
        rows.stage([("c", value)]).map_err(|e| e.to_string())?;
        rows.commit();
        let batch = rows.finish().map_err(|e| e.to_string())?;
        Ok(batch.column(0).clone())
    }

    #[test]
    fn numbers_convert_into_numeric_columns_when_they_fit() {
        use Value::*;
        let ok: Vec<(DataType, Value<'_>, f64)> = vec![
            (DataType::Float64, Int(-3), -3.0),
            (DataType::Float64, UInt(7), 7.0),
            (DataType::Float64, Float(65.2), 65.2),
            (DataType::Float64, Float(f64::NAN), f64::NAN),
            (DataType::Float32, Float(1.5), 1.5),
            (DataType::Int64, Float(42.0), 42.0),
            (DataType::Int64, Float(-0.0), 0.0),
            (DataType::Int64, UInt(9), 9.0),
            (DataType::Int8, Int(-128), -128.0),
            (DataType::Int8, Float(127.0), 127.0),
            (DataType::UInt8, Int(255), 255.0),
            (DataType::UInt64, Float(3.0), 3.0),
        ];
        for (data_type, value, expected) in ok {
            let column = one(data_type.clone(), value).unwrap();
            let got = match &data_type {
                DataType::Float64 => column
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .value(0),
                DataType::Float32 => column
                    .as_primitive::<arrow::datatypes::Float32Type>()
                    .value(0)
                    .into(),
                DataType::Int64 => column
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(0) as f64,
                DataType::Int8 => column
                    .as_primitive::<arrow::datatypes::Int8Type>()
                    .value(0)
                    .into(),
                DataType::UInt8 => column
                    .as_primitive::<arrow::datatypes::UInt8Type>()
                    .value(0)
                    .into(),
                DataType::UInt64 => column
                    .as_primitive::<arrow::datatypes::UInt64Type>()
                    .value(0) as f64,
                other => panic!("{other}"),
            };
            assert!(
                got == expected || (got.is_nan() && expected.is_nan()),
                "{data_type} {value}: {got}"
            );
        }
    }

    #[test]
    fn misfits_name_the_column_the_value_and_the_reason() {
        use Value::*;
        let long = "x".repeat(100);
        let long_error = format!("cannot take string \"{}\"…", "x".repeat(64));
        let bad: Vec<(DataType, Value<'_>, &str)> = vec![
            (
                DataType::Int64,
                Float(1.5),
                r#"column "c" (Int64) cannot take float 1.5: not a whole number"#,
            ),
            (
                DataType::Int64,
                Float(f64::INFINITY),
                "cannot take float inf: not a whole number",
            ),
            (
                DataType::Int64,
                Float(1e19),
                "cannot take float 1e19: out of range",
            ),
            (DataType::Int64, UInt(u64::MAX), "out of range"),
            (
                DataType::Int8,
                Int(128),
                r#"column "c" (Int8) cannot take integer 128: out of range"#,
            ),
            (
                DataType::UInt32,
                Int(-1),
                "(UInt32) cannot take integer -1: out of range",
            ),
            (
                DataType::Float32,
                Float(1e300),
                "cannot take float 1e300: out of range",
            ),
            (
                DataType::Float64,
                Str("hot"),
                r#"column "c" (Float64) cannot take string "hot""#,
            ),
            (DataType::Float64, Bool(true), "cannot take boolean true"),
            (
                DataType::Float64,
                TimestampNanos(5),
                "cannot take timestamp 5 ns",
            ),
            (DataType::Int64, Str("1"), r#"cannot take string "1""#),
            (DataType::Boolean, Int(1), "(Boolean) cannot take integer 1"),
            (DataType::Utf8, Float(1.0), "(Utf8) cannot take float 1.0"),
            (
                DataType::Timestamp(TimeUnit::Millisecond, None),
                Int(5),
                "cannot take integer 5",
            ),
            (
                DataType::Timestamp(TimeUnit::Second, None),
                Str("soon"),
                "not an RFC 3339 timestamp",
            ),
            (DataType::Date32, Str("2026-13-01"), "not a date"),
            (
                DataType::Decimal128(10, 2),
                Int(5),
                "not supported by this decoder",
            ),
            (DataType::Utf8View, Int(5), "cannot take integer 5"),
            (DataType::Int8, Str(&long), &long_error),
        ];
        for (data_type, value, expected) in bad {
            let error = one(data_type.clone(), value).unwrap_err();
            assert!(error.contains(expected), "{data_type} {value:?}: {error}");
        }
    }

    #[test]
    fn strings_booleans_and_dates_land_in_their_columns() {
        let s = one(DataType::Utf8, Value::Str("m-0001")).unwrap();
        assert_eq!(s.as_string::<i32>().value(0), "m-0001");
        let s = one(DataType::LargeUtf8, Value::Str("é")).unwrap();
        assert_eq!(s.as_string::<i64>().value(0), "é");
        let s = one(
            DataType::Utf8View,
            Value::Str("a longer string than twelve bytes"),
        )
        .unwrap();
        assert_eq!(
            s.as_string_view().value(0),
            "a longer string than twelve bytes"
        );
        let b = one(DataType::Boolean, Value::Bool(true)).unwrap();
        assert!(b.as_any().downcast_ref::<BooleanArray>().unwrap().value(0));
        let d = one(DataType::Date32, Value::Str("2026-01-02")).unwrap();
        assert_eq!(
            d.as_any().downcast_ref::<Date32Array>().unwrap().value(0),
            20_455
        );
        let d = one(DataType::Date32, Value::TimestampNanos(-1)).unwrap();
        assert_eq!(
            d.as_any().downcast_ref::<Date32Array>().unwrap().value(0),
            -1
        );
    }

    #[test]
    fn timestamps_convert_to_every_unit_rounding_down_and_keep_the_zone() {
        let nanos = 1_767_225_600_123_456_789;
        let utc = Some(Arc::<str>::from("UTC"));
        let cases: Vec<(TimeUnit, i64, i64)> = vec![
            (TimeUnit::Second, nanos, 1_767_225_600),
            (TimeUnit::Millisecond, nanos, 1_767_225_600_123),
            (TimeUnit::Microsecond, nanos, 1_767_225_600_123_456),
            (TimeUnit::Nanosecond, nanos, nanos),
            (TimeUnit::Millisecond, -1, -1),
            (TimeUnit::Second, -1_500_000_000, -2),
        ];
        for (unit, value, expected) in cases {
            let data_type = DataType::Timestamp(unit, utc.clone());
            let column = one(data_type.clone(), Value::TimestampNanos(value)).unwrap();
            assert_eq!(column.data_type(), &data_type);
            let got = match unit {
                TimeUnit::Second => column
                    .as_any()
                    .downcast_ref::<TimestampSecondArray>()
                    .unwrap()
                    .value(0),
                TimeUnit::Millisecond => column
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap()
                    .value(0),
                TimeUnit::Microsecond => column
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap()
                    .value(0),
                TimeUnit::Nanosecond => column
                    .as_any()
                    .downcast_ref::<TimestampNanosecondArray>()
                    .unwrap()
                    .value(0),
            };
            assert_eq!(got, expected, "{unit:?} {value}");
        }
        let from_text = one(
            DataType::Timestamp(TimeUnit::Millisecond, None),
            Value::Str("2026-01-01T00:00:00.123Z"),
        )
        .unwrap();
        let ms = from_text
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(ms.value(0), 1_767_225_600_123);
    }

    fn table() -> SchemaRef {
        schema(vec![
            Field::new("machine_id", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("temperature", DataType::Float64, true),
            Field::new("seq", DataType::Int64, true),
        ])
    }

    #[test]
    fn rows_fill_missing_nullable_columns_with_nulls_and_ignore_unknown_names() {
        let mut rows = RowBuilder::new(table());
        rows.stage([
            ("machine_id", Value::Str("m-1")),
            ("unknown", Value::Str("ignored")),
            ("unknown", Value::Int(2)),
            ("ts", Value::TimestampNanos(1_000_000)),
            ("seq", Value::Int(1)),
        ])
        .unwrap();
        rows.commit();
        let batch = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), table());
        assert!(batch.column(2).is_null(0));
        let seq = batch
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(seq.value(0), 1);
    }

    #[test]
    fn missing_not_null_and_twice_given_columns_are_named() {
        let mut rows = RowBuilder::new(table());
        let e = rows.stage([("machine_id", Value::Str("m"))]).unwrap_err();
        assert_eq!(e.to_string(), r#"missing value for NOT NULL column "ts""#);
        assert_eq!(e.column(), "ts");
        let e = rows
            .stage([
                ("machine_id", Value::Str("m")),
                ("ts", Value::TimestampNanos(0)),
                ("seq", Value::Int(1)),
                ("seq", Value::Int(1)),
            ])
            .unwrap_err();
        assert_eq!(e.to_string(), r#"column "seq" is given twice"#);
        assert_eq!(rows.staged_rows(), 0);
    }

    #[test]
    fn a_bad_row_leaves_nothing_and_rollback_drops_a_whole_record() {
        let mut rows = RowBuilder::new(table());
        let good = |id| {
            [
                ("machine_id", Value::Str(id)),
                ("ts", Value::TimestampNanos(0)),
            ]
        };
        rows.stage(good("a")).unwrap();
        rows.commit();
        // A record of two rows, the second bad: the first stays staged…
        rows.stage(good("b")).unwrap();
        let e = rows
            .stage([
                ("machine_id", Value::Str("c")),
                ("ts", Value::TimestampNanos(0)),
                ("temperature", Value::Str("hot")),
            ])
            .unwrap_err();
        assert_eq!(e.column(), "temperature");
        assert_eq!(rows.staged_rows(), 1);
        // …until the record is rolled back.
        rows.rollback();
        rows.stage(good("d")).unwrap();
        rows.stage(good("e")).unwrap();
        assert_eq!(rows.staged_rows(), 2);
        rows.commit();
        assert_eq!(rows.len(), 3);
        let batch = rows.finish().unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["a", "d", "e"]);
        // The builder starts over.
        assert!(rows.is_empty());
        assert_eq!(rows.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn unsupported_and_odd_schemas_still_build() {
        let mut rows = RowBuilder::new(schema(vec![
            Field::new("d", DataType::Decimal128(10, 2), true),
            Field::new("i", DataType::Int8, true),
            Field::new("u", DataType::UInt64, true),
            Field::new("f", DataType::Float32, true),
        ]));
        rows.stage([
            ("i", Value::Int(-5)),
            ("u", Value::UInt(u64::MAX)),
            ("f", Value::Int(2)),
        ])
        .unwrap();
        rows.stage([]).unwrap();
        rows.commit();
        assert_eq!(rows.data_type("i"), Some(&DataType::Int8));
        assert_eq!(rows.data_type("nope"), None);
        let batch = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).null_count(), 2);
        assert_eq!(
            batch
                .column(1)
                .as_any()
                .downcast_ref::<Int8Array>()
                .unwrap()
                .value(0),
            -5
        );
        assert_eq!(
            batch
                .column(2)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .value(0),
            u64::MAX
        );
        assert_eq!(
            batch
                .column(3)
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap()
                .value(0),
            2.0
        );
        assert!(batch.column(1).is_null(1));

        let mut empty = RowBuilder::new(schema(vec![]));
        empty.stage([("x", Value::Int(1))]).unwrap();
        empty.stage([]).unwrap();
        assert_eq!(empty.staged_rows(), 2);
        empty.commit();
        assert_eq!(empty.finish().unwrap().num_rows(), 2);
    }

    #[test]
    fn time_column_defaults_to_ts_then_time() {
        let both = table();
        assert_eq!(resolve_time_column(&both, None).as_deref(), Some("ts"));
        assert_eq!(
            resolve_time_column(&both, Some("at")).as_deref(),
            Some("at")
        );
        let time = schema(vec![Field::new("time", DataType::Int64, true)]);
        assert_eq!(resolve_time_column(&time, None).as_deref(), Some("time"));
        assert_eq!(resolve_time_column(&schema(vec![]), None), None);
    }

    #[test]
    fn the_decode_loop_keeps_record_order_and_rejects_empty_and_non_utf8_records() {
        let mut raw = RawBatch::new(7);
        for (offset, payload) in [
            (10, &b"a"[..]),
            (11, b" \n\t"),
            (12, b"\xff\xfe"),
            (13, b"b"),
            (14, b"boom"),
        ] {
            raw.push(offset, payload);
        }
        let mut rows = RowBuilder::new(schema(vec![Field::new("v", DataType::Utf8, false)]));
        let decoded = decode_records(&raw, &mut rows, |rows, text| {
            for part in text.split(',') {
                rows.stage([("v", Value::Str(part))])
                    .map_err(|e| e.to_string())?;
            }
            if text == "boom" {
                return Err("boom".into());
            }
            Ok(())
        });
        let values = decoded
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(values.iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
        let bad: Vec<_> = decoded
            .bad
            .iter()
            .map(|b| (b.partition, b.offset, b.error.as_str()))
            .collect();
        assert_eq!(bad[0], (7, 11, "empty record"));
        assert_eq!((bad[1].1, bad[2]), (12, (7, 14, "boom")));
        assert!(
            bad[1].2.starts_with("record is not valid UTF-8"),
            "{}",
            bad[1].2
        );
        assert_eq!(decoded.bad[2].raw, b"boom");
    }
}
