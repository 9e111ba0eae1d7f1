//! File rolling in the Parquet sink: a small `'rolling.max-bytes'` or a short
//! `'rolling.interval'` gives several files per partition directory, each a
//! complete Parquet file with nothing temporary left beside it, and together
//! they hold exactly the rows of the batch oracle over the same readings.

use std::path::Path;

use spindle_tests::spindle::{command, stderr};

use crate::oracle::{assert_same, parquet_rows, query_rows, session};
use crate::parquet_files::{files_per_directory, local_layout, total_rows};

const MACHINES: &str = "20";
const COUNT: &str = "20000";
/// 20,000 readings of 20 machines every 10 s span 2 h 47 min of event time:
/// three `date=…/hour=…` directories.
const INTERVAL: &str = "10s";

/// The job: the in-process simulator into 1-minute windows per machine,
/// written with the given sink options (and job-level `SET`s).
fn job_sql(out: &Path, settings: &str, source_options: &str, sink_options: &str) -> String {
    format!(
        "{settings}
CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'simulator', 'machines' = '{MACHINES}', 'count' = '{COUNT}',
  'interval' = '{INTERVAL}', 'batch.max-records' = '500'{source_options}
);
CREATE TABLE features (
  machine_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), readings BIGINT,
  temperature_avg DOUBLE, vibration_max DOUBLE
) WITH ('connector' = 'parquet', 'path' = '{}/features'{sink_options});
INSERT INTO features
SELECT machine_id, window_start, window_end, count(*), avg(temperature), max(vibration)
FROM sensors GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id;
",
        out.display()
    )
}

/// Runs the job, checks the files it left, and compares their union with the
/// batch oracle over the same simulated readings.
async fn rolled_files_equal_the_oracle(settings: &str, source_options: &str, sink_options: &str) {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    std::fs::write(
        &job,
        job_sql(dir.path(), settings, source_options, sink_options),
    )
    .unwrap();
    let side = dir.path().join("side");
    let output = command([
        "run",
        job.to_str().unwrap(),
        "--until-idle",
        "--side-outputs",
    ])
    .arg(&side)
    .output()
    .unwrap();
    assert!(output.status.success(), "spindle run: {}", stderr(&output));

    let features = dir.path().join("features");
    let layout = local_layout(&features);
    let per_directory = files_per_directory(&layout);
    assert!(
        per_directory.len() >= 3,
        "expected an hour directory per hour of data: {per_directory:?}"
    );
    assert!(
        per_directory.values().all(|&files| files > 1),
        "rolling must give several files per partition directory: {per_directory:?}"
    );

    let late = spindle_tests::spindle::side_output(&side, "late");
    std::fs::create_dir_all(&side).unwrap();
    assert_eq!(
        std::fs::read_to_string(&late).unwrap_or_default(),
        "",
        "in-order readings: no late rows"
    );
    let readings = dir.path().join("readings.jsonl");
    let simulate = command([
        "simulate",
        "--count",
        COUNT,
        "--machines",
        MACHINES,
        "--interval",
        INTERVAL,
        "--quiet",
        "--output",
    ])
    .arg(&readings)
    .output()
    .unwrap();
    assert!(simulate.status.success(), "simulate: {}", stderr(&simulate));
    let ctx = session(&readings, &late).await;
    let oracle = query_rows(
        &ctx,
        "SELECT machine_id, to_timestamp_millis(CAST(ts AS BIGINT) - CAST(ts AS BIGINT) % 60000) AS ws,
                count(*), avg(temperature), max(vibration)
         FROM readings GROUP BY machine_id, ws",
    )
    .await;
    assert_eq!(
        total_rows(&layout),
        oracle.len() as i64,
        "rows over all files"
    );
    let streamed = parquet_rows(
        &features,
        "machine_id, window_start, readings, temperature_avg, vibration_max",
    )
    .await;
    assert_same("rolled files", &streamed, &oracle);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_max_bytes_rolls_complete_files_that_together_equal_the_oracle() {
    rolled_files_equal_the_oracle("", "", ", 'rolling.max-bytes' = '4KiB'").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn short_interval_rolls_complete_files_that_together_equal_the_oracle() {
    // 20,000 readings at 5,000/s keep each hour directory receiving rows for
    // about a second of wall time: several 250 ms files each. The size limit
    // stays at its default (128 MiB), so only time rolls files.
    rolled_files_equal_the_oracle(
        "SET spindle.sink.flush_interval = '50ms';",
        ", 'rate' = '5000'",
        ", 'rolling.interval' = '250ms'",
    )
    .await;
}
