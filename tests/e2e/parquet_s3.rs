//! The Parquet sink on S3, against a real S3 server (moto from
//! `scripts/s3.sh`, or the one `SPINDLE_TEST_S3` names): one job writes the
//! same rows to `s3://BUCKET/features` and to a local directory; `spindle
//! query` reads both back alike, and every object under the prefix is a
//! complete Parquet file with no upload left unfinished.

use std::path::Path;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use spindle_tests::s3::{ACCESS_KEY, REGION, create_bucket, pending_uploads, with_aws_env};
use spindle_tests::services::{s3, unique};
use spindle_tests::spindle::{command, stderr};

use crate::parquet_files::{files_per_directory, local_layout, store_layout, total_rows};

/// One source, two parquet sinks with the same options and the same SELECT:
/// 12,000 readings of 20 machines every 10 s (two hour directories), small
/// files so each directory holds several.
fn job_sql(bucket: &str, local: &Path) -> String {
    let sink = "'rolling.max-bytes' = '4KiB'";
    let columns = "machine_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), \
                   readings BIGINT, temperature_avg DOUBLE, vibration_max DOUBLE";
    let select =
        "SELECT machine_id, window_start, window_end, count(*), avg(temperature), max(vibration)
FROM sensors GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id";
    format!(
        "CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'simulator', 'machines' = '20', 'count' = '12000', 'interval' = '10s',
        'batch.max-records' = '500');
CREATE TABLE on_s3 ({columns}) WITH ('connector' = 'parquet', 'path' = 's3://{bucket}/features', {sink});
CREATE TABLE on_disk ({columns}) WITH ('connector' = 'parquet', 'path' = '{}/features', {sink});
INSERT INTO on_s3 {select};
INSERT INTO on_disk {select};
",
        local.display()
    )
}

/// `spindle query` over the history at `root`, as CSV.
fn query_csv(root: &str, endpoint: &str, sql: &str) -> String {
    let mut query = command(["query", "--history", root, "--format", "csv", sql]);
    let output = with_aws_env(&mut query, endpoint).output().unwrap();
    assert!(output.status.success(), "query {root}: {}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_local_parquet_sinks_hold_the_same_rows() {
    let endpoint = s3();
    let bucket = unique("spindle");
    create_bucket(endpoint, &bucket);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let job = dir.path().join("job.sql");
    std::fs::write(&job, job_sql(&bucket, &history)).unwrap();
    let mut run = command([
        "run",
        job.to_str().unwrap(),
        "--until-idle",
        "--side-outputs",
    ]);
    run.arg(dir.path().join("side"));
    let output = with_aws_env(&mut run, endpoint).output().unwrap();
    assert!(output.status.success(), "spindle run: {}", stderr(&output));

    let sql = "SELECT date, hour, machine_id, window_start, window_end, readings, temperature_avg, \
               vibration_max FROM features ORDER BY machine_id, window_start";
    let from_s3 = query_csv(&format!("s3://{bucket}"), endpoint, sql);
    let from_disk = query_csv(history.to_str().unwrap(), endpoint, sql);
    let rows = from_s3.lines().count().saturating_sub(1);
    // About one row per machine and minute (a stalled machine skips some).
    assert!(
        (1900..=2000).contains(&rows),
        "{rows} rows from S3, expected about 20 machines × 100 minutes"
    );
    assert!(
        from_s3 == from_disk,
        "S3 and local history differ:\n{}\n---\n{}",
        head(&from_s3),
        head(&from_disk)
    );

    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region(REGION)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(ACCESS_KEY)
        .build()
        .unwrap();
    let on_s3 = store_layout(&store, &StorePath::from("features")).await;
    let on_disk = local_layout(&history.join("features"));
    assert_eq!(total_rows(&on_s3), rows as i64, "rows over all S3 objects");
    let per_directory = files_per_directory(&on_s3);
    assert_eq!(
        per_directory.len(),
        2,
        "two hour directories: {per_directory:?}"
    );
    assert!(
        per_directory.values().all(|&files| files > 1),
        "several objects per directory: {per_directory:?}"
    );
    assert_eq!(
        per_directory,
        files_per_directory(&on_disk),
        "the same files on S3 as on disk"
    );
    assert_eq!(
        pending_uploads(endpoint, &bucket),
        0,
        "no multipart upload left unfinished"
    );
}

fn head(text: &str) -> String {
    text.lines().take(5).collect::<Vec<_>>().join("\n")
}
