//! S3 against a real S3 server (moto from `scripts/s3.sh`, or the one
//! `SPINDLE_TEST_S3` names):
//!
//! - the Parquet sink: one job writes the same rows to `s3://BUCKET/features`
//!   and to a local directory; `spindle query` reads both back alike, and
//!   every object under the prefix is a complete Parquet file with no upload
//!   left unfinished;
//! - checkpoints and history on S3: a checkpointed Kafka job survives
//!   `kill -9` exactly, prunes its checkpoint objects, and `spindle query
//!   --history s3://…` answers like the batch oracle.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use spindle_tests::s3::{ACCESS_KEY, REGION, create_bucket, pending_uploads, with_aws_env};
use spindle_tests::services::{s3, unique};
use spindle_tests::spindle::{command, stderr};

use crate::deployment::Deployment;
use crate::oracle::session;
use crate::parquet_files::{files_per_directory, local_layout, store_layout, total_rows};
use crate::recovery::{finish_after_kill, kill_after_checkpoints};

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

    let store = bucket_store(endpoint, &bucket);
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

/// object_store's client for `bucket` on the test server.
pub(crate) fn bucket_store(endpoint: &str, bucket: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region(REGION)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(ACCESS_KEY)
        .build()
        .unwrap()
}

fn head(text: &str) -> String {
    text.lines().take(5).collect::<Vec<_>>().join("\n")
}

/// A checkpointed Kafka job with its checkpoints and its history on S3,
/// configured through the standard AWS environment only (`AWS_ENDPOINT_URL`,
/// no region), is `kill -9`ed mid-replay and run again to the end: every
/// reading is reconciled exactly against the history read back from S3,
/// each partition keeps exactly its newest `spindle.checkpoint.keep`
/// checkpoint objects under `JOB/TABLE/TOPIC@GROUP/pN/EPOCH.ckpt`, and
/// `spindle query --history s3://…` answers like the batch oracle.
#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_and_history_on_s3_recover_from_kill_9_exactly() {
    const READINGS: usize = 200_000;
    const KEEP: usize = 2;
    let endpoint = s3();
    let bucket = unique("spindle-ckpt");
    create_bucket(endpoint, &bucket);
    assert_conditional_create(endpoint, &bucket).await;
    let deployment = Deployment::new("s3-recovery")
        .with_features_job(KEEP)
        .on_s3(endpoint, &bucket);
    deployment.simulate("200000", "500", "4");
    kill_after_checkpoints(&deployment, 4);
    finish_after_kill(&deployment, READINGS);
    let (readings, count) = deployment.readings();
    assert_eq!(count, READINGS);
    deployment.reconcile_with(&readings, READINGS).await;
    assert_checkpoints_pruned(&deployment, 4, KEEP);

    let sql = "SELECT machine_id, CAST(sum(readings) AS BIGINT), max(vibration_max) \
               FROM features GROUP BY machine_id ORDER BY machine_id";
    let answered = per_machine(&deployment.query(sql));
    let ctx = session(&readings, &deployment.late()).await;
    let oracle = oracle_per_machine(&ctx).await;
    assert_eq!(answered.len(), oracle.len(), "machines in the answer");
    for ((machine, n, v), (o_machine, o_n, o_v)) in answered.iter().zip(&oracle) {
        assert_eq!((machine, n), (o_machine, o_n), "readings per machine");
        assert!(
            (v - o_v).abs() <= 1e-9 * o_v.abs().max(1.0),
            "{machine}: max vibration {v} from S3, {o_v} in the oracle"
        );
    }
}

/// Checkpoints are written with `PutMode::Create` (`If-None-Match: *`), so
/// two owners of a partition cannot both write an epoch: the server must
/// refuse the second create (moto 5.2 answers 412; a server that ignored
/// the header would silently overwrite).
async fn assert_conditional_create(endpoint: &str, bucket: &str) {
    let store = bucket_store(endpoint, bucket);
    let path = StorePath::from("probe/written-once");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&path, PutPayload::from_static(b"1"), create())
        .await
        .unwrap();
    let again = store
        .put_opts(&path, PutPayload::from_static(b"2"), create())
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "a second conditional create of {path} must fail with AlreadyExists: {again:?}"
    );
}

/// Each of `partitions` partitions keeps exactly its newest `keep`
/// checkpoints (consecutive epochs), under the documented layout.
fn assert_checkpoints_pruned(deployment: &Deployment, partitions: usize, keep: usize) {
    let prefix = format!(
        "{}/sensors/{}@{}/",
        deployment.job_name(),
        deployment.topic,
        deployment.group
    );
    let mut epochs = BTreeMap::<String, Vec<u64>>::new();
    for object in deployment.checkpoint_objects() {
        let rest = object
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("checkpoint object {object} is not under {prefix}"));
        let (partition, name) = rest.split_once('/').unwrap();
        assert!(partition.starts_with('p'), "{object}");
        let epoch = name.strip_suffix(".ckpt").unwrap();
        assert_eq!(
            epoch.len(),
            20,
            "epochs are zero-padded to 20 digits: {object}"
        );
        epochs
            .entry(partition.to_string())
            .or_default()
            .push(epoch.parse().unwrap());
    }
    assert_eq!(
        epochs.len(),
        partitions,
        "partitions checkpointed: {epochs:?}"
    );
    for (partition, mut kept) in epochs {
        kept.sort_unstable();
        let newest = *kept.last().unwrap();
        assert!(
            newest > keep as u64,
            "{partition}: {newest} checkpoints are too few to show pruning"
        );
        let expected: Vec<u64> = (newest + 1 - keep as u64..=newest).collect();
        assert_eq!(
            kept, expected,
            "{partition}: the newest {keep} are kept, older ones pruned"
        );
    }
}

/// (machine, readings, max vibration) per CSV line after the header.
fn per_machine(csv: &str) -> Vec<(String, i64, f64)> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (
                fields[0].to_string(),
                fields[1].parse().unwrap(),
                fields[2].parse().unwrap(),
            )
        })
        .collect()
}

/// The same per machine from the readings minus the late ones.
async fn oracle_per_machine(ctx: &SessionContext) -> Vec<(String, i64, f64)> {
    let batches = ctx
        .sql(
            "SELECT machine_id, CAST(count(*) AS BIGINT), max(vibration) FROM readings r
             WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.machine_id = r.machine_id AND l.seq = r.seq)
             GROUP BY machine_id ORDER BY machine_id",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for batch in &batches {
        let column = |i: usize, to: &DataType| cast(batch.column(i), to).unwrap();
        let (machines, counts, maxima) = (
            column(0, &DataType::Utf8),
            column(1, &DataType::Int64),
            column(2, &DataType::Float64),
        );
        let machines = machines.as_string::<i32>();
        let counts = counts.as_primitive::<Int64Type>();
        let maxima = maxima.as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            rows.push((
                machines.value(row).to_string(),
                counts.value(row),
                maxima.value(row),
            ));
        }
    }
    rows
}
