//! Rows as JSON objects, one per row, for the sinks that send messages
//! (Kafka, webhook): arrow-json's writer, nulls left out, timestamps in
//! RFC 3339. A timestamp without a time zone is UTC in Spindle, so it gets a
//! `Z`; one with a zone keeps its offset.

use arrow::array::RecordBatch;
use arrow::util::display::FormatOptions;
use arrow_json::{LineDelimitedWriter, WriterBuilder};

use crate::error::{EngineError, Result};

/// chrono format of timestamps without a zone: RFC 3339 in UTC, with as
/// many fractional digits as the value needs (none, 3, 6 or 9).
pub(crate) const UTC_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// How a sink shows single values (template placeholders, message keys):
/// the same timestamps as the JSON rows.
pub(crate) fn display_options() -> FormatOptions<'static> {
    FormatOptions::new().with_timestamp_format(Some(UTC_TIMESTAMP_FORMAT))
}

/// The rows of one batch as JSON objects in one buffer.
#[derive(Debug, Default)]
pub(crate) struct JsonRows {
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl JsonRows {
    /// Encodes every row of `batch`; `sink` names the sink in errors.
    pub(crate) fn encode(batch: &RecordBatch, sink: &str) -> Result<Self> {
        let mut text = Vec::with_capacity(batch.num_rows() * 128);
        let mut writer: LineDelimitedWriter<_> = WriterBuilder::new()
            .with_timestamp_format(UTC_TIMESTAMP_FORMAT.to_string())
            .build(&mut text);
        writer
            .write(batch)
            .and_then(|()| writer.finish())
            .map_err(|e| EngineError::Sink {
                sink: sink.to_string(),
                message: format!("encoding rows as JSON: {e}"),
            })?;
        drop(writer);
        // JSON escapes newlines inside strings, so each '\n' ends a row.
        let ends: Vec<usize> = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        if ends.len() != batch.num_rows() {
            return Err(EngineError::Internal(format!(
                "sink {sink}: {} JSON rows for {} rows",
                ends.len(),
                batch.num_rows()
            )));
        }
        Ok(Self { text, ends })
    }

    /// Rows encoded.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Row `i` as a JSON object (without the newline).
    pub(crate) fn row(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.text[start..self.ends[i]]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn rows_are_objects_with_rfc3339_times_and_no_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("machine_id", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
                true,
            ),
            Field::new("score", DataType::Float64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("m-1\n\"x\""), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_767_225_600_000),
                Some(1_767_225_600_250),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![Some(0), None]).with_timezone("+02:00")),
            Arc::new(Float64Array::from(vec![Some(0.5), None])),
        ];
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let rows = JsonRows::encode(&batch, "alerts").unwrap();
        assert_eq!(rows.len(), 2);
        let first: serde_json::Value = serde_json::from_slice(rows.row(0)).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"machine_id": "m-1\n\"x\"", "ts": "2026-01-01T00:00:00Z",
                "at": "1970-01-01T02:00:00+02:00", "score": 0.5})
        );
        let second: serde_json::Value = serde_json::from_slice(rows.row(1)).unwrap();
        assert_eq!(
            second,
            serde_json::json!({"ts": "2026-01-01T00:00:00.250Z"})
        );
    }
}
