//! A pipeline restored from its partitions' snapshots carries on exactly as
//! the uninterrupted one: tumbling, hopping and session windows with
//! DataFusion aggregates of every kind of state (sums, Welford moments,
//! t-digests, distinct sets), and per-row `OVER` features (`lag` deltas,
//! `RANGE` and `ROWS` frames) whose frames reach back across the restore.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;

use super::{Job, JobOptions};

const JOB: &str = "
CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = '127.0.0.1:1',
        'properties.group.id' = 'g');
CREATE TABLE tumbling (machine_id VARCHAR, window_start TIMESTAMP(3), n BIGINT, t_avg DOUBLE,
  t_sd DOUBLE, t_p90 DOUBLE, rpm_kinds BIGINT, t_max DOUBLE, t_var DOUBLE)
  WITH ('connector' = 'console');
CREATE TABLE hopping (machine_id VARCHAR, window_start TIMESTAMP(3), n BIGINT, rpm_sum DOUBLE)
  WITH ('connector' = 'console');
CREATE TABLE sessions (machine_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
  n BIGINT, t_min DOUBLE) WITH ('connector' = 'console');
INSERT INTO tumbling SELECT machine_id, window_start, count(*), avg(temperature), stddev(temperature),
  approx_percentile_cont(temperature, 0.9), count(DISTINCT CAST(rpm AS BIGINT)), max(temperature),
  var_pop(temperature)
FROM sensors GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
INSERT INTO hopping SELECT machine_id, window_start, count(*), sum(rpm)
FROM sensors GROUP BY hop(ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND), machine_id;
INSERT INTO sessions SELECT machine_id, window_start, window_end, count(*), min(temperature)
FROM sensors GROUP BY session(ts, INTERVAL '4' SECOND), machine_id;
CREATE TABLE deltas (machine_id VARCHAR, seq BIGINT, d1 DOUBLE, d2 DOUBLE, t_avg_5s DOUBLE,
  rpm_4 DOUBLE) WITH ('connector' = 'console');
INSERT INTO deltas SELECT machine_id, seq,
  temperature - lag(temperature) OVER (PARTITION BY machine_id ORDER BY ts),
  temperature - lag(temperature, 2) OVER (PARTITION BY machine_id ORDER BY ts),
  avg(temperature) OVER (PARTITION BY machine_id ORDER BY ts
                         RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW),
  sum(rpm) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)
FROM sensors;
";

const PIPELINES: usize = 4;

const PARTITIONS: i32 = 3;

/// Readings of 12 machines (machine m on partition m % 3), out of order by
/// up to 2.5 s, with gaps that split sessions; batches per partition.
fn batches() -> Vec<(i32, RecordBatch)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("temperature", DataType::Float64, true),
        Field::new("rpm", DataType::Float64, true),
    ]));
    let mut out = Vec::new();
    for round in 0..60i64 {
        for partition in 0..PARTITIONS {
            let (mut ids, mut seqs, mut times, mut temps, mut rpms) =
                (vec![], vec![], vec![], vec![], vec![]);
            for machine in (0..12).filter(|m| m % PARTITIONS == partition) {
                for k in 0..7i64 {
                    let seq = round * 7 + k;
                    let jitter = (seq * 7919 + i64::from(machine) * 104_729) % 2500;
                    // Machine 4 goes quiet for a while: sessions split.
                    if machine == 4 && (20..26).contains(&round) {
                        continue;
                    }
                    ids.push(format!("m{machine}"));
                    seqs.push(seq);
                    times.push(1_700_000_000_000 + seq * 300 - jitter);
                    temps.push(60.0 + ((seq * 37 + i64::from(machine)) % 101) as f64 / 7.0);
                    rpms.push(1000.0 + ((seq * 13) % 9) as f64);
                }
            }
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(Int64Array::from(seqs)),
                    Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
                    Arc::new(Float64Array::from(temps)),
                    Arc::new(Float64Array::from(rpms)),
                ],
            )
            .unwrap();
            out.push((partition, batch));
        }
    }
    out
}

async fn new_job(dir: &std::path::Path) -> Job {
    let options = JobOptions {
        name: "snap".into(),
        side_outputs: dir.to_path_buf(),
    };
    Job::build(JOB, "snap.sql", &options).await.unwrap()
}

/// Feeds `input`, closing windows as the watermark moves; returns every
/// pipeline's output rows and late-row count.
async fn feed(job: &mut Job, input: &[(i32, RecordBatch)], out: &mut [Vec<String>]) {
    let now = Instant::now();
    for (partition, batch) in input {
        let watermark = job.sources[0].watermark.watermark(now);
        for (i, pipeline) in job.pipelines.iter_mut().enumerate() {
            let produced = pipeline
                .process(*partition, batch, watermark)
                .await
                .unwrap();
            let late = produced.late.map_or(0, |l| l.num_rows());
            out[i].push(format!("late {late}"));
        }
        let newest = crate::window::event_times(batch, 2).unwrap();
        let newest = arrow::compute::max(&newest).unwrap();
        job.sources[0].watermark.observe(*partition, newest, now);
        let watermark = job.sources[0].watermark.watermark(now);
        advance(job, watermark, out).await;
    }
}

async fn advance(job: &mut Job, watermark: i64, out: &mut [Vec<String>]) {
    for (i, pipeline) in job.pipelines.iter_mut().enumerate() {
        for (_, batch) in pipeline.advance(watermark).await.unwrap() {
            for row in 0..batch.num_rows() {
                let values: Vec<String> = (0..batch.num_columns())
                    .map(|c| rounded(ScalarValue::try_from_array(batch.column(c), row).unwrap()))
                    .collect();
                out[i].push(values.join("|"));
            }
        }
    }
}

/// Floats to 9 significant digits: merging a Welford state into an empty
/// one recomputes the mean as mean·n/n.
fn rounded(value: ScalarValue) -> String {
    match value {
        ScalarValue::Float64(Some(f)) => format!("{f:.9e}"),
        other => other.to_string(),
    }
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for r in &mut rows {
        r.sort();
    }
    rows
}

#[tokio::test]
async fn restored_partitions_carry_on_like_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches();
    let (first, second) = input.split_at(input.len() / 2 + 1);

    let mut straight = new_job(dir.path()).await;
    let mut expected = vec![Vec::new(); PIPELINES];
    feed(&mut straight, &input, &mut expected).await;
    advance(&mut straight, i64::MAX, &mut expected).await;

    let mut before = new_job(dir.path()).await;
    let mut got = vec![Vec::new(); PIPELINES];
    feed(&mut before, first, &mut got).await;
    let mut after = new_job(dir.path()).await;
    let now = Instant::now();
    let mut open = 0;
    for partition in 0..PARTITIONS {
        let watermark = before.sources[0].watermark.partition_max(partition);
        after.sources[0]
            .watermark
            .restore(partition, watermark, now);
        for (old, new) in before.pipelines.iter_mut().zip(after.pipelines.iter_mut()) {
            let state = old.snapshot(partition).unwrap();
            open += state.iter().map(|b| b.num_rows()).sum::<usize>();
            new.restore(partition, &state, i64::MIN).unwrap();
        }
    }
    assert!(
        open > 50,
        "the snapshot must hold open windows, held {open} groups"
    );
    feed(&mut after, second, &mut got).await;
    advance(&mut after, i64::MAX, &mut got).await;

    let (expected, got) = (sorted(expected), sorted(got));
    for (i, name) in ["tumbling", "hopping", "sessions", "deltas"]
        .iter()
        .enumerate()
    {
        assert!(
            expected[i].len() > 100,
            "{name}: too little output to compare"
        );
        assert_eq!(got[i], expected[i], "{name} differs after a restore");
    }
}

#[tokio::test]
async fn state_of_another_query_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = new_job(dir.path()).await;
    let mut out = vec![Vec::new(); PIPELINES];
    feed(&mut job, &batches()[..6], &mut out).await;
    let tumbling = job.pipelines[0].snapshot(0).unwrap();
    assert!(!tumbling.is_empty());
    // The hopping pipeline keeps other aggregates: its state cannot be the tumbling one's.
    let error = job.pipelines[1]
        .restore(0, &tumbling, i64::MIN)
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not fit this query"), "{error}");
}
