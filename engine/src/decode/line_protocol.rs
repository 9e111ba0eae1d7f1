//! InfluxDB line protocol records, parsed with the `influxdb-line-protocol`
//! crate, into the table's schema:
//! `sensors,machine_id=m-0001,line=line-1 seq=1i,temperature=65.2 1767225600123000000`.
//!
//! - A record may hold several lines; each line that is not blank or a `#`
//!   comment is one row, in order.
//! - Tags (strings) and fields (`1i` integer, `1u` unsigned, float, boolean,
//!   `"string"`) go to the columns of the same name; other names are ignored
//!   and missing ones are null. The measurement goes to a column named
//!   `measurement` if there is one.
//! - The line's timestamp (nanoseconds) goes to the time column: the one
//!   named when the decoder is made, else `ts` or `time`. A line without a
//!   timestamp leaves it null (the server's clock is not used), which a
//!   NOT NULL time column rejects.
//! - One bad line rejects its whole record, with the line's number in the
//!   record; decoding goes on with the next record.

use arrow::datatypes::SchemaRef;
use influxdb_line_protocol::{FieldValue, ParsedLine, parse_lines, split_lines};

use super::rows::{RowBuilder, Value, decode_records, resolve_time_column};
use super::{Decoded, Decoder, RawBatch};

/// The column that takes a line's measurement, if the schema has it.
pub const MEASUREMENT_COLUMN: &str = "measurement";

/// Decodes line-protocol records into one schema.
#[derive(Debug)]
pub struct LineProtocolDecoder {
    rows: RowBuilder,
    time_column: Option<String>,
}

impl LineProtocolDecoder {
    /// A decoder for `schema`; `time_column` takes line timestamps (default:
    /// `ts` or `time` if the schema has one).
    pub fn new(schema: SchemaRef, time_column: Option<&str>) -> Self {
        Self {
            time_column: resolve_time_column(&schema, time_column),
            rows: RowBuilder::new(schema),
        }
    }
}

impl Decoder for LineProtocolDecoder {
    fn decode(&mut self, raw: &RawBatch) -> Decoded {
        let time_column = self.time_column.as_deref();
        decode_records(raw, &mut self.rows, |rows, text| {
            stage_record(rows, text, time_column)
        })
    }
}

/// Stages one row per line of `text`, or says which line is bad and why.
fn stage_record(
    rows: &mut RowBuilder,
    text: &str,
    time_column: Option<&str>,
) -> Result<(), String> {
    let mut number = 1;
    // `split_lines` keeps newlines inside quoted string fields, as the
    // parser does; count them so line numbers match what a reader sees.
    for line in split_lines(text) {
        let this = number;
        number += 1 + line.matches('\n').count();
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Blank and comment lines parse to nothing.
        for parsed in parse_lines(line) {
            let parsed = parsed.map_err(|e| format!("line {this}: {e}"))?;
            stage_line(rows, &parsed, time_column).map_err(|e| format!("line {this}: {e}"))?;
        }
    }
    if rows.staged_rows() == 0 {
        return Err("record has no data lines, only comments".into());
    }
    Ok(())
}

fn stage_line(
    rows: &mut RowBuilder,
    line: &ParsedLine<'_>,
    time_column: Option<&str>,
) -> Result<(), String> {
    let measurement = (
        MEASUREMENT_COLUMN,
        Value::Str(line.series.measurement.as_str()),
    );
    let tags = line
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), Value::Str(value.as_str())));
    let fields = line
        .field_set
        .iter()
        .map(|(key, value)| (key.as_str(), field(value)));
    let time = time_column
        .zip(line.timestamp)
        .map(|(column, ts)| (column, Value::TimestampNanos(ts)));
    let values = std::iter::once(measurement)
        .chain(tags)
        .chain(fields)
        .chain(time);
    rows.stage(values).map_err(|e| e.to_string())
}

fn field<'a>(value: &'a FieldValue<'_>) -> Value<'a> {
    match value {
        FieldValue::I64(v) => Value::Int(*v),
        FieldValue::U64(v) => Value::UInt(*v),
        FieldValue::F64(v) => Value::Float(*v),
        FieldValue::Boolean(v) => Value::Bool(*v),
        FieldValue::String(v) => Value::Str(v.as_str()),
    }
}

#[cfg(test)]
mod tests;
