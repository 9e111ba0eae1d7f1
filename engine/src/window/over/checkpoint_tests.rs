//! Anomaly detectors across a checkpoint: a job restored from its
//! partitions' checkpoints (written and read in the checkpoint file format)
//! gives every later row exactly the verdicts of the uninterrupted run, for
//! every model with state, one of them stacked on another's score, next to
//! a `RANGE` frame that holds answers back (so rows the detectors have
//! learned from are still unanswered at the checkpoint).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::common::ScalarValue;

use crate::checkpoint::{PartitionCheckpoint, PipelineState, format};
use crate::job::{Job, JobOptions};

const PARTITIONS: i32 = 2;

/// Each detector call and the SQL of its struct.
const CALLS: [(&str, &str); 8] = [
    ("g", "gaussian_anomaly(temperature, 0.99, 5)"),
    ("e", "ewma_anomaly(temperature, 4, 3, 5)"),
    ("v", "ew_variance_anomaly(rpm, 4, 3, 5)"),
    ("c", "cusum_anomaly(temperature, 0.5, 4, 5)"),
    ("f", "flatline_anomaly(rpm, 3)"),
    ("l", "anomaly_likelihood(temperature, 5, 20)"),
    ("r", "rcf_anomaly([temperature, rpm], 8, 16)"),
    ("i", "inter_arrival(ts)"),
];

/// The job: every detector, a `RANGE` average, and the likelihood of the
/// forest's score (a second window node). `rcf_params` changes the forest.
fn job_sql(rcf_params: &str) -> String {
    let calls: Vec<String> = CALLS
        .iter()
        .map(|(alias, call)| {
            let call = call.replace("8, 16", rcf_params);
            format!("{call} OVER w AS {alias}")
        })
        .collect();
    let mut columns = vec!["machine_id VARCHAR".to_string(), "seq BIGINT".into()];
    let mut values = vec!["machine_id".to_string(), "seq".into()];
    for (alias, _) in CALLS.iter().filter(|(a, _)| *a != "i").chain([&("lr", "")]) {
        for (field, kind) in [
            ("score", "DOUBLE"),
            ("flag", "BOOLEAN"),
            ("threshold", "DOUBLE"),
            ("reason", "VARCHAR"),
        ] {
            columns.push(format!("{alias}_{field} {kind}"));
            values.push(format!("{alias}['{field}']"));
        }
    }
    columns.extend(["gap DOUBLE".to_string(), "t_avg DOUBLE".into()]);
    values.extend(["i".to_string(), "t_avg".into()]);
    format!(
        "CREATE TABLE sensors (
           machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
           temperature DOUBLE, rpm DOUBLE,
           WATERMARK FOR ts AS ts - INTERVAL '4' SECOND
         ) WITH ('connector' = 'kafka', 'topic' = 't',
                 'properties.bootstrap.servers' = '127.0.0.1:1', 'properties.group.id' = 'g');
         CREATE TABLE verdicts ({columns}) WITH ('connector' = 'console');
         INSERT INTO verdicts SELECT {values} FROM (
           SELECT *, anomaly_likelihood(r['score'], 5, 20) OVER w AS lr FROM (
             SELECT machine_id, seq, ts, {calls},
               avg(temperature) OVER (PARTITION BY machine_id ORDER BY ts
                 RANGE BETWEEN INTERVAL '4' SECOND PRECEDING AND CURRENT ROW) AS t_avg
             FROM sensors WINDOW w AS (PARTITION BY machine_id ORDER BY ts)
           ) first WINDOW w AS (PARTITION BY machine_id ORDER BY ts)
         ) second",
        columns = columns.join(", "),
        values = values.join(", "),
        calls = calls.join(", ")
    )
}

/// One batch's columns.
#[derive(Default)]
struct Columns {
    ids: Vec<String>,
    seqs: Vec<i64>,
    times: Vec<i64>,
    temperatures: Vec<f64>,
    rpms: Vec<f64>,
}

/// Readings of 6 machines (machine m on partition m % 2), out of order by
/// up to 1.5 s, two readings of a machine sometimes at the same time,
/// spikes and a stuck probe; batches per partition.
fn batches() -> Vec<(i32, RecordBatch)> {
    (0..40i64)
        .flat_map(|round| (0..PARTITIONS).map(move |p| (p, readings(round, p))))
        .collect()
}

/// Partition `partition`'s readings of round `round` (5 per machine).
fn readings(round: i64, partition: i32) -> RecordBatch {
    let mut rows = Columns::default();
    for machine in (0..6).filter(|m| m % PARTITIONS == partition) {
        for k in 0..5i64 {
            let seq = round * 5 + k;
            let m = i64::from(machine);
            let jitter = (seq * 4271 + m * 7727) % 1500;
            // Every 7th reading shares the time of the one before.
            let step = if seq % 7 == 6 { seq - 1 } else { seq };
            let spike = if (seq + m) % 53 == 0 { 40.0 } else { 0.0 };
            let stuck = machine == 3 && (60..90).contains(&seq);
            rows.ids.push(format!("m{machine}"));
            rows.seqs.push(seq);
            rows.times.push(1_700_000_000_000 + step * 400 - jitter);
            rows.temperatures
                .push(70.0 + ((seq * 31 + m * 17) % 97) as f64 / 9.0 + spike);
            rows.rpms.push(if stuck {
                1500.0
            } else {
                1500.0 + ((seq * 13) % 11) as f64
            });
        }
    }
    RecordBatch::try_from_iter_with_nullable([
        ("machine_id", array(StringArray::from(rows.ids)), false),
        ("seq", array(Int64Array::from(rows.seqs)), false),
        (
            "ts",
            array(TimestampMillisecondArray::from(rows.times).with_timezone("UTC")),
            false,
        ),
        (
            "temperature",
            array(Float64Array::from(rows.temperatures)),
            true,
        ),
        ("rpm", array(Float64Array::from(rows.rpms)), true),
    ])
    .unwrap()
}

fn array(a: impl Array + 'static) -> ArrayRef {
    Arc::new(a)
}

async fn new_job(dir: &std::path::Path, rcf_params: &str) -> Job {
    let options = JobOptions {
        name: "detectors".into(),
        side_outputs: dir.to_path_buf(),
    };
    Job::build(&job_sql(rcf_params), "detectors.sql", &options)
        .await
        .unwrap()
}

/// Feeds `input`, moving the watermark after each batch; appends every
/// output row, floats written exactly.
async fn feed(job: &mut Job, input: &[(i32, RecordBatch)], out: &mut Vec<String>) {
    let now = Instant::now();
    for (partition, batch) in input {
        let watermark = job.sources[0].watermark.watermark(now);
        let produced = job.pipelines[0]
            .process(*partition, batch, watermark)
            .await
            .unwrap();
        if let Some(late) = produced.late {
            panic!(
                "no row is late here, watermark {watermark}: {}",
                arrow::util::pretty::pretty_format_batches(&[late]).unwrap()
            );
        }
        let newest = crate::window::event_times(batch, 2).unwrap();
        let newest = arrow::compute::max(&newest).unwrap();
        job.sources[0].watermark.observe(*partition, newest, now);
        let watermark = job.sources[0].watermark.watermark(now);
        advance(job, watermark, out).await;
    }
}

/// Appends the rows the watermark releases: verdicts bit for bit, the
/// `RANGE` average (the last column) to 9 digits, since DataFusion's sliding
/// sum adds and retracts in another order after a restore replayed its
/// frame.
async fn advance(job: &mut Job, watermark: i64, out: &mut Vec<String>) {
    for (_, batch) in job.pipelines[0].advance(watermark).await.unwrap() {
        let last = batch.num_columns() - 1;
        for row in 0..batch.num_rows() {
            let values: Vec<String> = (0..batch.num_columns())
                .map(
                    |c| match ScalarValue::try_from_array(batch.column(c), row).unwrap() {
                        ScalarValue::Float64(Some(f)) if c == last => format!("{f:.9e}"),
                        ScalarValue::Float64(Some(f)) => format!("{:016x}", f.to_bits()),
                        other => other.to_string(),
                    },
                )
                .collect();
            out.push(values.join("|"));
        }
    }
}

/// Each partition's state from `before`, through the checkpoint file
/// format, restored into `after` (`keep` picks the batches restored).
fn move_state(
    before: &mut Job,
    after: &mut Job,
    keep: impl Fn(Vec<arrow::array::RecordBatch>) -> Vec<arrow::array::RecordBatch>,
) -> Result<usize, String> {
    let now = Instant::now();
    let mut detectors = 0;
    for partition in 0..PARTITIONS {
        let watermark = before.sources[0].watermark.partition_max(partition);
        after.sources[0]
            .watermark
            .restore(partition, watermark, now);
        let batches = before.pipelines[0].snapshot(partition).unwrap();
        detectors += batches.iter().skip(3).map(|b| b.num_rows()).sum::<usize>();
        let file = format::encode(&PartitionCheckpoint {
            job: "detectors".into(),
            source: "sensors".into(),
            partition,
            epoch: 1,
            next_offset: 0,
            watermark,
            closed_through: i64::MIN,
            created_ms: 0,
            staged: Vec::new(),
            pipelines: vec![PipelineState {
                sink: "verdicts".into(),
                batches,
            }],
        })
        .unwrap();
        let read = format::decode(&file).unwrap();
        let state = keep(read.pipelines[0].batches.clone());
        after.pipelines[0]
            .restore(partition, &state, i64::MIN)
            .map_err(|e| e.to_string())?;
    }
    Ok(detectors)
}

/// The uninterrupted run's rows, and those of a run checkpointed after
/// batch `cut` and restored (sorted: partitions interleave differently).
async fn runs(
    cut: usize,
    keep: impl Fn(Vec<RecordBatch>) -> Vec<RecordBatch>,
) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let input = batches();
    let mut straight = new_job(dir.path(), "8, 16").await;
    let mut expected = Vec::new();
    feed(&mut straight, &input, &mut expected).await;
    advance(&mut straight, i64::MAX, &mut expected).await;

    let mut before = new_job(dir.path(), "8, 16").await;
    let mut got = Vec::new();
    feed(&mut before, &input[..cut], &mut got).await;
    let mut after = new_job(dir.path(), "8, 16").await;
    let detectors = move_state(&mut before, &mut after, keep).unwrap();
    // 6 machines, 8 detector calls (inter_arrival is not one, the stacked
    // likelihood is).
    assert_eq!(detectors, 6 * 8, "every key's detectors are checkpointed");
    feed(&mut after, &input[cut..], &mut got).await;
    advance(&mut after, i64::MAX, &mut got).await;
    expected.sort();
    got.sort();
    (expected, got)
}

#[tokio::test]
async fn restored_detectors_give_every_later_row_the_verdicts_of_the_uninterrupted_run() {
    for cut in [9, 24, 41, 63] {
        let (expected, got) = runs(cut, |all| all).await;
        assert_eq!(expected.len(), 40 * 3 * 5 * 2, "every reading is scored");
        if let Some(i) = (0..expected.len()).find(|&i| expected[i] != got[i]) {
            panic!(
                "cut after batch {cut}: row {i} differs\nexpected {}\ngot      {}",
                expected[i], got[i]
            );
        }
        assert_eq!(expected, got);
    }
}

/// The comparison above can fail: the same restore without the detectors'
/// state (frames and rows only, as before detectors were checkpointed)
/// gives other verdicts.
#[tokio::test]
async fn without_their_state_the_detectors_would_answer_differently() {
    let (expected, got) = runs(41, |all| all.into_iter().take(3).collect()).await;
    assert_eq!(expected.len(), got.len());

    let differing = expected.iter().zip(&got).filter(|(e, g)| e != g).count();
    assert!(differing > 100, "only {differing} rows differ");
}

#[tokio::test]
async fn state_saved_with_other_parameters_is_refused_naming_the_call_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches();
    let mut before = new_job(dir.path(), "8, 16").await;
    feed(&mut before, &input[..10], &mut Vec::new()).await;
    let mut other = new_job(dir.path(), "8, 32").await;
    let error = move_state(&mut before, &mut other, |all| all).unwrap_err();
    assert!(
        error.contains("state of detector 7: rcf_anomaly(make_array("),
        "{error}"
    );
    assert!(error.contains("(key m"), "{error}");
    assert!(error.contains("Int64(16)) (key"), "{error}");
    assert!(error.contains("Int64(32)) in its place"), "{error}");
}
