//! The three record decoders on one wide schema: the simulator's columns
//! plus one column of every type the row conversions handle, so the fuzzer
//! reaches range checks, timestamp units and time zones, dates and the
//! "unsupported type" path.
//!
//! An input is one micro-batch: records separated by 0x1E (ASCII record
//! separator), since line protocol and OpenMetrics records hold newlines.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use spindle_engine::decode::{Decoded, Format, MAX_DEAD_LETTER_BYTES, RawBatch, decoder};

/// Separates the records of one fuzz input.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// The table every decoder target decodes into.
pub fn schema() -> SchemaRef {
    let utc = Some("UTC".into());
    let mut fields = vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, true),
        Field::new("provider", DataType::Utf8View, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, utc.clone()),
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
    fields.extend([
        Field::new("fault", DataType::Boolean, true),
        Field::new("fault_kind", DataType::Utf8, true),
        Field::new("measurement", DataType::LargeUtf8, true),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("day", DataType::Date32, true),
        Field::new("t_s", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new(
            "t_us",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
            true,
        ),
        Field::new("t_ns", DataType::Timestamp(TimeUnit::Nanosecond, utc), true),
        Field::new("dec", DataType::Decimal128(10, 2), true),
    ]);
    Arc::new(Schema::new(fields))
}

/// The records of one fuzz input, at offsets 1000, 1001, … of partition 7.
pub fn raw_batch(data: &[u8]) -> RawBatch {
    let mut raw = RawBatch::new(7);
    for (i, record) in data.split(|b| *b == RECORD_SEPARATOR).enumerate() {
        raw.push(1000 + i as i64, record);
    }
    raw
}

/// Decodes `data` as `format` and checks what must hold for any input:
/// - the batch is in the table's schema, NOT NULL columns hold no nulls;
/// - every bad record is one of the input's, once, with its raw bytes
///   (cut at [`MAX_DEAD_LETTER_BYTES`]);
/// - every good record gave at least one row (JSON: exactly one), so rows
///   and dead letters account for every record;
/// - a decoder reused for the next batch gives the same answer (no state
///   left behind by a bad record);
/// - each record decoded on its own is good or bad as it was in the batch,
///   with the same rows.
pub fn decode(format: Format, data: &[u8]) {
    crate::let_arrow_panics_unwind();
    let schema = schema();
    let raw = raw_batch(data);
    let mut decoder = decoder(format, schema.clone(), None);
    let decoded = decoder.decode(&raw);
    check(format, &schema, &raw, &decoded);

    let again = decoder.decode(&raw);
    assert_eq!(decoded.batch, again.batch, "second decode, other rows");
    assert_eq!(decoded.bad, again.bad, "second decode, other bad records");

    let bad: HashSet<i64> = decoded.bad.iter().map(|b| b.offset).collect();
    let mut alone_batches = Vec::new();
    for i in 0..raw.len() {
        let mut one = RawBatch::new(raw.partition);
        one.push(raw.records[i].offset, raw.payload(i));
        let alone = decoder.decode(&one);
        let was_bad = bad.contains(&raw.records[i].offset);
        assert_eq!(
            !alone.bad.is_empty(),
            was_bad,
            "record {i} is {} alone but {} in its batch: {:?}",
            verdict(!alone.bad.is_empty()),
            verdict(was_bad),
            alone.bad
        );
        alone_batches.push(alone.batch);
    }
    let alone = arrow::compute::concat_batches(&schema, &alone_batches)
        .unwrap_or_else(|e| panic!("concatenating single-record batches: {e}"));
    assert_eq!(
        decoded.batch, alone,
        "rows differ when records decode alone"
    );
}

fn verdict(bad: bool) -> &'static str {
    if bad { "bad" } else { "good" }
}

fn check(format: Format, schema: &SchemaRef, raw: &RawBatch, decoded: &Decoded) {
    let batch: &RecordBatch = &decoded.batch;
    assert_eq!(batch.schema().fields(), schema.fields(), "batch schema");
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        assert!(
            field.is_nullable() || column.null_count() == 0,
            "nulls in NOT NULL column {}",
            field.name()
        );
    }
    let mut seen = HashSet::new();
    for bad in &decoded.bad {
        assert_eq!(bad.partition, raw.partition);
        let i = usize::try_from(bad.offset - 1000).expect("offset from the input");
        assert!(i < raw.len(), "bad offset {} not in the input", bad.offset);
        assert!(seen.insert(bad.offset), "record {i} rejected twice");
        let payload = raw.payload(i);
        assert_eq!(
            bad.raw,
            payload[..payload.len().min(MAX_DEAD_LETTER_BYTES)],
            "dead letter of record {i} holds other bytes"
        );
        assert!(
            !bad.error.is_empty(),
            "record {i} rejected without a reason"
        );
    }
    let good = raw.len() - decoded.bad.len();
    let rows = batch.num_rows();
    match format {
        Format::Json => assert_eq!(rows, good, "JSON: one row per good record"),
        _ => assert!(rows >= good, "{rows} rows from {good} good records"),
    }
}
