//! The independent oracle: the same aggregation as batch SQL in DataFusion
//! over the raw readings (minus exactly the rows the late output holds),
//! compared row by row with what the streaming job wrote to Parquet.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};

/// Rows keyed by (machine, window start in ms), values as floats.
pub(crate) type Rows = BTreeMap<(String, i64), Vec<Option<f64>>>;

/// The readings' schema (the fields the jobs use).
pub(crate) fn readings_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("ts", ts, false),
        Field::new("temperature", DataType::Float64, true),
        Field::new("vibration", DataType::Float64, true),
        Field::new("power", DataType::Float64, true),
        Field::new("rpm", DataType::Float64, true),
    ]))
}

/// A session with `readings` (JSON lines at `readings_file`) and `late`
/// (the job's late output; empty if there is none).
pub(crate) async fn session(readings_file: &Path, late_file: &Path) -> SessionContext {
    let ctx = SessionContext::new();
    let schema = readings_schema();
    let options = JsonReadOptions::default()
        .schema(&schema)
        .file_extension(".jsonl");
    ctx.register_json("readings", readings_file.to_str().unwrap(), options)
        .await
        .unwrap();
    let late_schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        // Absent for rows late for an OVER pipeline (no window).
        Field::new(
            "window_start",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("pipeline", DataType::Utf8, false),
    ]));
    if !late_file.exists() {
        std::fs::write(late_file, "").unwrap();
    }
    let options = JsonReadOptions::default()
        .schema(&late_schema)
        .file_extension(".jsonl");
    ctx.register_json("late", late_file.to_str().unwrap(), options)
        .await
        .unwrap();
    ctx
}

/// Runs batch SQL whose first two columns are machine_id and a window start.
pub(crate) async fn query_rows(ctx: &SessionContext, sql: &str) -> Rows {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    to_rows(&batches)
}

/// What the streaming job wrote under `dir` (Parquet, any layout).
pub(crate) async fn parquet_rows(dir: &Path, columns: &str) -> Rows {
    let ctx = SessionContext::new();
    let options = ParquetReadOptions::default().file_extension(".parquet");
    ctx.register_parquet("out", dir.to_str().unwrap(), options)
        .await
        .unwrap();
    query_rows(&ctx, &format!("SELECT {columns} FROM out")).await
}

fn to_rows(batches: &[RecordBatch]) -> Rows {
    let mut rows = Rows::new();
    for batch in batches {
        let machines = cast(batch.column(0), &DataType::Utf8).unwrap();
        let machines = machines.as_any().downcast_ref::<StringArray>().unwrap();
        let starts = cast(
            batch.column(1),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )
        .unwrap();
        let starts = cast(&starts, &DataType::Int64).unwrap();
        let starts = starts.as_any().downcast_ref::<Int64Array>().unwrap();
        let values: Vec<Float64Array> = (2..batch.num_columns())
            .map(|c| {
                cast(batch.column(c), &DataType::Float64)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap()
                    .clone()
            })
            .collect();
        for row in 0..batch.num_rows() {
            let key = (machines.value(row).to_string(), starts.value(row));
            let value = values
                .iter()
                .map(|v| (!v.is_null(row)).then(|| v.value(row)))
                .collect();
            assert!(
                rows.insert(key.clone(), value).is_none(),
                "duplicate row {key:?}"
            );
        }
    }
    rows
}

/// Asserts both sides have the same keys and values within 1e-9 relative.
pub(crate) fn assert_same(name: &str, streamed: &Rows, oracle: &Rows) {
    let missing: Vec<_> = oracle
        .keys()
        .filter(|k| !streamed.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = streamed
        .keys()
        .filter(|k| !oracle.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(streamed.len(), oracle.len(), "{name}: row counts");
    for (key, expected) in oracle {
        let actual = &streamed[key];
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            let same = match (a, e) {
                (Some(a), Some(e)) => (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                (None, None) => true,
                _ => false,
            };
            assert!(
                same,
                "{name}: {key:?} column {i}: streamed {a:?}, oracle {e:?}"
            );
        }
    }
}
