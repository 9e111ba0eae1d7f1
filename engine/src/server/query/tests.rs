use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

const LIMITS: QueryLimits = QueryLimits {
    max_rows: 10_000,
    timeout: Duration::from_secs(30),
    memory: 256 << 20,
};

/// A history root with one table, `features`, of `rows` rows.
fn history(rows: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("features");
    std::fs::create_dir_all(&table).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
        Field::new("vibration_max", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("m-{:04}", i % 10)),
            )),
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 / 2.0),
            )),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(table.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    dir
}

fn root(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

fn rows(result: &QueryResult) -> usize {
    result.batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn a_select_reads_the_history_and_the_row_limit_cuts_it() {
    let dir = history(100);
    let sql = "SELECT machine_id, max(vibration_max) AS peak FROM features \
               GROUP BY machine_id ORDER BY peak DESC";
    let all = run_query(&root(&dir), sql, LIMITS).await.unwrap();
    assert_eq!((rows(&all), all.truncated), (10, false));
    let limited = QueryLimits {
        max_rows: 3,
        ..LIMITS
    };
    let cut = run_query(&root(&dir), sql, limited).await.unwrap();
    assert_eq!((rows(&cut), cut.truncated), (3, true));
    let (json, content_type) = encode(&cut, Format::Json).unwrap();
    assert_eq!(content_type, "application/json");
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["truncated"], true);
    assert_eq!(json["columns"][1]["name"], "peak");
    assert_eq!(json["rows"][0]["machine_id"], "m-0009");
    assert_eq!(json["rows"][0]["peak"], 49.5);
    let (csv, _) = encode(&cut, Format::Csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>()[..2],
        ["machine_id,peak", "m-0009,49.5"]
    );
    let (ipc, content_type) = encode(&cut, Format::Arrow).unwrap();
    assert_eq!(content_type, ARROW_STREAM);
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
}

#[tokio::test]
async fn only_a_single_select_runs() {
    let dir = history(10);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("stolen");
    let refused = [
        format!("COPY features TO '{}' STORED AS CSV", target.display()),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            outside.path().display()
        ),
        "CREATE TABLE x AS SELECT * FROM features".into(),
        "INSERT INTO features VALUES ('m', 1, 1.0)".into(),
        "DROP TABLE features".into(),
        "SET datafusion.execution.batch_size = 1".into(),
        "SELECT 1; SELECT 2".into(),
        String::new(),
    ];
    for sql in &refused {
        let error = run_query(&root(&dir), sql, LIMITS).await.unwrap_err();
        assert!(
            matches!(&error, EngineError::Refused(m) if m.starts_with("only SELECT queries")),
            "{sql}: {error}"
        );
    }
    assert!(!target.exists());
    // Files are not tables: URL tables are off.
    let error = run_query(&root(&dir), "SELECT * FROM '/etc/passwd'", LIMITS)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("/etc/passwd"), "{error}");
    assert!(
        run_query(
            &root(&dir),
            "WITH t AS (SELECT n FROM features) SELECT count(*) FROM t",
            LIMITS
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_query_past_its_memory_pool_fails() {
    let dir = history(50_000);
    let small = QueryLimits {
        memory: 64 << 10,
        ..LIMITS
    };
    let sql = "SELECT machine_id || n AS k, count(*) FROM features GROUP BY 1 ORDER BY 1";
    let error = run_query(&root(&dir), sql, small).await.unwrap_err();
    assert!(error.to_string().contains("Resources exhausted"), "{error}");
    assert!(run_query(&root(&dir), sql, LIMITS).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_timeout_is_cancelled() {
    let dir = history(2_000);
    let short = QueryLimits {
        timeout: Duration::from_millis(300),
        ..LIMITS
    };
    let started = std::time::Instant::now();
    let error = run_query(
        &root(&dir),
        "SELECT count(*) FROM features a, features b, features c WHERE a.n + b.n + c.n < 0",
        short,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, EngineError::Timeout { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Writes `batch` as the Parquet file `path` (folders made as needed).
fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn count(result: &QueryResult) -> i64 {
    let column = result.batches[0].column(0);
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// The server keeps each table's inferred schema and the files' footers
/// between queries (history::table_layouts, session::shared_file_caches);
/// each query must still see the history as it is: a new file, a new column, a new
/// table and a rewritten file.
#[tokio::test]
async fn each_query_sees_the_history_as_it_is_now() {
    let dir = history(100);
    let features = dir.path().join("features");
    let all = "SELECT count(*) FROM features";
    assert_eq!(
        count(&run_query(&root(&dir), all, LIMITS).await.unwrap()),
        100
    );

    let with_line = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("machine_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("line", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(["m-0100", "m-0101"])),
            Arc::new(Int64Array::from_iter_values([1, 2])),
            Arc::new(StringArray::from_iter_values(["l1", "l2"])),
        ],
    )
    .unwrap();
    write_parquet(&features.join("part-1.parquet"), &with_line);
    let lines = "SELECT count(*), count(line) FROM features";
    let answer = run_query(&root(&dir), lines, LIMITS).await.unwrap();
    let counted = answer.batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>();
    assert_eq!((count(&answer), counted.unwrap().value(0)), (102, 2));

    write_parquet(&dir.path().join("alerts/part-0.parquet"), &with_line);
    let alerts = "SELECT count(*) FROM alerts";
    assert_eq!(
        count(&run_query(&root(&dir), alerts, LIMITS).await.unwrap()),
        2
    );

    let rewritten = history(7);
    std::fs::copy(
        rewritten.path().join("features/part-0.parquet"),
        features.join("part-0.parquet"),
    )
    .unwrap();
    assert_eq!(
        count(&run_query(&root(&dir), all, LIMITS).await.unwrap()),
        7 + 2
    );
}
