//! Shared fixtures for the decoders' unit tests.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit};

use super::RawBatch;

/// The simulator's table: `packing_line` sensors with labels.
pub(super) fn sensors(ts_unit: TimeUnit) -> SchemaRef {
    let mut fields = vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, true),
        Field::new("provider", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(ts_unit, Some("UTC".into())),
            false,
        ),
        Field::new("seq", DataType::Int64, true),
    ];
    for name in [
        "temperature",
        "vibration",
        "power",
        "load",
        "humidity",
        "noise_level",
        "rpm",
    ] {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    fields.push(Field::new("fault", DataType::Boolean, true));
    fields.push(Field::new("fault_kind", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// A raw batch of `records` in `partition`, offsets from `first_offset`.
pub(super) fn raw_batch(partition: i32, first_offset: i64, records: &[&str]) -> RawBatch {
    let mut raw = RawBatch::new(partition);
    for (i, r) in records.iter().enumerate() {
        raw.push(first_offset + i as i64, r.as_bytes());
    }
    raw
}

pub(super) fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch.column_by_name(name).unwrap().as_string::<i32>();
    column.iter().map(|v| v.map(str::to_owned)).collect()
}

pub(super) fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}
