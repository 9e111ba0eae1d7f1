//! Restoring a checkpoint into an edited job (`upgrade`): each kind of
//! change is named, with its pipeline; changes the state's columns cannot
//! show (window size, slide, gap, an aggregate's expression, `WHERE`) are
//! caught; an unchanged job restores exactly; `reset-changed` drops only
//! the changed pipelines' state; added and removed pipelines start empty or
//! are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;

use super::{Job, JobOptions, checkpointing};
use crate::checkpoint::store::Latest;
use crate::checkpoint::{PartitionCheckpoint, PipelineState, format};
use crate::error::EngineError;

const JOB: &str = "
CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, line VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, humidity DOUBLE, noise DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = '127.0.0.1:1',
        'properties.group.id' = 'g');
CREATE TABLE tumbling (machine_id VARCHAR, a DOUBLE, b DOUBLE) WITH ('connector' = 'console');
CREATE TABLE hopping (machine_id VARCHAR, n BIGINT) WITH ('connector' = 'console');
CREATE TABLE sessions (machine_id VARCHAR, n BIGINT) WITH ('connector' = 'console');
CREATE TABLE deltas (machine_id VARCHAR, d DOUBLE, s DOUBLE) WITH ('connector' = 'console');
INSERT INTO tumbling SELECT machine_id, avg(temperature) AS t_avg, max(noise)
FROM sensors WHERE temperature > 0
GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id;
INSERT INTO hopping SELECT machine_id, count(*)
FROM sensors GROUP BY hop(ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND), machine_id;
INSERT INTO sessions SELECT machine_id, count(*)
FROM sensors GROUP BY session(ts, INTERVAL '20' SECOND), machine_id;
INSERT INTO deltas SELECT machine_id,
  temperature - lag(temperature) OVER (PARTITION BY machine_id ORDER BY ts),
  sum(noise) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)
FROM sensors;
";

const SINKS: [&str; 4] = ["tumbling", "hopping", "sessions", "deltas"];

/// `JOB` with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    assert_eq!(JOB.matches(from).count(), 1, "{from:?} must occur once");
    JOB.replacen(from, to, 1)
}

async fn build(text: &str, dir: &std::path::Path) -> Result<Job, EngineError> {
    let options = JobOptions {
        name: "upgrade".into(),
        side_outputs: dir.to_path_buf(),
    };
    Job::build(text, "job.sql", &options).await
}

/// Readings of 4 machines on two lines, 10 per machine from `from` on,
/// 2 s apart.
fn readings(round: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("temperature", DataType::Float64, true),
        Field::new("humidity", DataType::Float64, true),
        Field::new("noise", DataType::Float64, true),
    ]));
    let (mut ids, mut lines, mut times, mut temps, mut hums, mut noises) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for machine in 0..4i64 {
        for k in 0..10i64 {
            let seq = round * 10 + k;
            ids.push(format!("m{machine}"));
            lines.push(format!("l{}", machine % 2));
            times.push(1_700_000_000_000 + seq * 2_000 + machine * 7);
            temps.push(50.0 + ((seq * 37 + machine) % 23) as f64 / 4.0);
            hums.push(30.0 + (seq % 7) as f64);
            noises.push(((seq * 13 + machine) % 11) as f64);
        }
    }
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(lines)),
            Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
            Arc::new(Float64Array::from(temps)),
            Arc::new(Float64Array::from(hums)),
            Arc::new(Float64Array::from(noises)),
        ],
    )
    .unwrap()
}

/// Feeds round `round` into partition 0 without closing anything.
async fn feed(job: &mut Job, round: i64) {
    let batch = readings(round);
    for pipeline in &mut job.pipelines {
        pipeline.process(0, &batch, i64::MIN).await.unwrap();
    }
}

/// Partition 0's checkpoint of `job`, as written and read back (so the
/// state's description goes through Arrow IPC like a real one).
fn checkpoint(job: &mut Job) -> PartitionCheckpoint {
    let pipelines = job
        .pipelines
        .iter_mut()
        .map(|p| PipelineState {
            sink: p.sink.clone(),
            batches: p.snapshot(0).unwrap(),
        })
        .collect();
    let written = PartitionCheckpoint {
        job: "upgrade".into(),
        source: "sensors/t@g".into(),
        partition: 0,
        epoch: 7,
        next_offset: 40,
        watermark: None,
        closed_through: i64::MIN,
        created_ms: 0,
        staged: Vec::new(),
        pipelines,
    };
    format::decode(&format::encode(&written).unwrap()).unwrap()
}

/// A checkpoint of the original job holding open state in every pipeline.
async fn original_checkpoint(dir: &std::path::Path) -> PartitionCheckpoint {
    let mut job = build(JOB, dir).await.unwrap();
    feed(&mut job, 0).await;
    let checkpoint = checkpoint(&mut job);
    for state in &checkpoint.pipelines {
        let rows: usize = state.batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{} holds no state to carry", state.sink);
    }
    checkpoint
}

/// Restores `checkpoint` into `job` the way an assigned partition is.
async fn restore(job: &mut Job, checkpoint: PartitionCheckpoint) -> Result<(), EngineError> {
    let latest = Latest {
        newest_epoch: checkpoint.epoch,
        checkpoint: Some(checkpoint),
    };
    checkpointing::assigned(job, 0, &[0], BTreeMap::from([(0, latest)])).await
}

/// One edit and what the error must say about it.
struct Case {
    from: &'static str,
    to: &'static str,
    sink: &'static str,
    says: &'static [&'static str],
    /// Whether the state's columns fit the edited query: before state
    /// descriptions, such a restore went through and merged the old rows
    /// into the new windows.
    columns_fit: bool,
}

const CASES: [Case; 8] = [
    Case {
        from: "tumble(ts, INTERVAL '1' MINUTE)",
        to: "tumble(ts, INTERVAL '5' MINUTE)",
        sink: "tumbling",
        says: &["window changed from TUMBLE(ts, 1 minute) to TUMBLE(ts, 5 minutes)"],
        columns_fit: true,
    },
    Case {
        from: "hop(ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND)",
        to: "hop(ts, INTERVAL '15' SECOND, INTERVAL '30' SECOND)",
        sink: "hopping",
        says: &[
            "window changed from HOP(ts, slide 10 seconds, size 30 seconds) to \
             HOP(ts, slide 15 seconds, size 30 seconds)",
        ],
        columns_fit: true,
    },
    Case {
        from: "session(ts, INTERVAL '20' SECOND)",
        to: "session(ts, INTERVAL '1' MINUTE)",
        sink: "sessions",
        says: &["window changed from SESSION(ts, gap 20 seconds) to SESSION(ts, gap 1 minute)"],
        columns_fit: true,
    },
    Case {
        from: "avg(temperature) AS t_avg, max(noise)",
        to: "avg(temperature * 2) AS t_avg, stddev(humidity)",
        sink: "tumbling",
        says: &[
            "aggregate changed: avg(temperature) → avg(temperature * 2)",
            "aggregate added: stddev(humidity)",
            "aggregate removed: max(noise)",
        ],
        columns_fit: false,
    },
    Case {
        from: "avg(temperature) AS t_avg",
        to: "avg(temperature * 2) AS t_avg",
        sink: "tumbling",
        says: &["aggregate changed: avg(temperature) → avg(temperature * 2)"],
        columns_fit: true,
    },
    Case {
        from: "WHERE temperature > 0",
        to: "WHERE temperature > 10",
        sink: "tumbling",
        says: &["WHERE changed: temperature > 0 → temperature > 10"],
        columns_fit: true,
    },
    Case {
        from: "INTERVAL '1' MINUTE), machine_id;",
        to: "INTERVAL '1' MINUTE), machine_id, line;",
        sink: "tumbling",
        says: &["keys changed: [machine_id] → [machine_id, line]"],
        columns_fit: false,
    },
    Case {
        from: "ROWS BETWEEN 3 PRECEDING",
        to: "ROWS BETWEEN 5 PRECEDING",
        sink: "deltas",
        says: &["OVER function changed: sum(noise) OVER (PARTITION BY machine_id ORDER BY ts"],
        columns_fit: true,
    },
];

#[tokio::test]
async fn each_change_is_named_with_its_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = original_checkpoint(dir.path()).await;
    for case in &CASES {
        let text = edited(case.from, case.to);
        let mut job = build(&text, dir.path()).await.unwrap();
        let index = SINKS.iter().position(|s| *s == case.sink).unwrap();
        let state = &checkpoint.pipeline(case.sink).unwrap().batches;
        let fits = job.pipelines[index].restore(0, state, i64::MIN).is_ok();
        assert_eq!(
            fits, case.columns_fit,
            "{}: the operator's own check",
            case.to
        );

        let error = restore(&mut job, checkpoint.clone()).await.unwrap_err();
        assert!(matches!(error, EngineError::StateChanged(_)), "{error:?}");
        let message = error.to_string();
        let line = format!("INSERT INTO {} (line", case.sink);
        assert!(message.contains(&line), "{}: {message}", case.to);
        for phrase in case.says {
            assert!(
                message.contains(phrase),
                "{}: missing {phrase:?} in {message}",
                case.to
            );
        }
        for other in SINKS.iter().filter(|s| **s != case.sink) {
            let line = format!("INSERT INTO {other} ");
            assert!(
                !message.contains(&line),
                "{}: names {other}: {message}",
                case.to
            );
        }
        assert!(
            message.contains("spindle.checkpoint.on_change"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn several_changed_pipelines_are_listed_in_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = original_checkpoint(dir.path()).await;
    let text = edited(
        "tumble(ts, INTERVAL '1' MINUTE)",
        "tumble(ts, INTERVAL '5' MINUTE)",
    )
    .replacen("lag(temperature)", "lag(temperature, 2)", 1);
    let mut job = build(&text, dir.path()).await.unwrap();
    let message = restore(&mut job, checkpoint).await.unwrap_err().to_string();
    assert!(message.contains("these 2 pipelines"), "{message}");
    assert!(
        message.contains("INSERT INTO tumbling (line 12): window changed"),
        "{message}"
    );
    assert!(message.contains("INSERT INTO deltas (line"), "{message}");
    assert!(
        message.contains("OVER function changed: lag(temperature)"),
        "{message}"
    );
}

fn rows(batches: &[(i32, RecordBatch)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, batch) in batches {
        for row in 0..batch.num_rows() {
            let values: Vec<String> = (0..batch.num_columns())
                .map(
                    |c| match ScalarValue::try_from_array(batch.column(c), row).unwrap() {
                        ScalarValue::Float64(Some(f)) => format!("{f:.9e}"),
                        other => other.to_string(),
                    },
                )
                .collect();
            out.push(values.join("|"));
        }
    }
    out.sort();
    out
}

/// Every pipeline's output after round 1 and the end of input.
async fn finish(job: &mut Job) -> Vec<Vec<String>> {
    feed(job, 1).await;
    let mut out = Vec::new();
    for pipeline in &mut job.pipelines {
        out.push(rows(&pipeline.advance(i64::MAX).await.unwrap()));
    }
    out
}

#[tokio::test]
async fn an_unchanged_job_restores_exactly_whatever_happens_after_the_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut straight = build(JOB, dir.path()).await.unwrap();
    feed(&mut straight, 0).await;
    let expected = finish(&mut straight).await;

    // Aliases and what happens to the closed windows may change freely.
    let text = edited("avg(temperature) AS t_avg", "avg(temperature) AS mean");
    let mut job = build(&text, dir.path()).await.unwrap();
    restore(&mut job, original_checkpoint(dir.path()).await)
        .await
        .unwrap();
    let got = finish(&mut job).await;
    for (i, sink) in SINKS.iter().enumerate() {
        assert!(expected[i].len() >= 4, "{sink}: too little output");
        assert_eq!(got[i], expected[i], "{sink} differs after the restore");
    }
}

#[tokio::test]
async fn reset_changed_drops_only_the_changed_pipelines_state() {
    let dir = tempfile::tempdir().unwrap();
    let text = edited("WHERE temperature > 0", "WHERE temperature > 10").replacen(
        "CREATE TABLE tumbling",
        "SET spindle.checkpoint.on_change = 'reset-changed';\nCREATE TABLE tumbling",
        1,
    );
    let mut job = build(&text, dir.path()).await.unwrap();
    restore(&mut job, original_checkpoint(dir.path()).await)
        .await
        .unwrap();
    let open: Vec<usize> = job.pipelines.iter().map(|p| p.state().0).collect();
    assert_eq!(open[0], 0, "the changed tumbling pipeline starts empty");
    assert!(
        open[1] > 0 && open[2] > 0,
        "the others keep their windows: {open:?}"
    );
    assert!(
        job.pipelines[3].state().1 > 0,
        "the OVER pipeline keeps its rows"
    );
}

#[tokio::test]
async fn added_pipelines_start_empty_and_removed_ones_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = original_checkpoint(dir.path()).await;
    let removed = JOB
        .split_inclusive(';')
        .filter(|s| !s.contains("INSERT INTO sessions"))
        .collect::<String>();
    let added = removed.replace("CREATE TABLE sessions", "CREATE TABLE sessions2")
        + "INSERT INTO sessions2 SELECT machine_id, count(*) FROM sensors \
           GROUP BY session(ts, INTERVAL '20' SECOND), machine_id;";
    let mut job = build(&added, dir.path()).await.unwrap();
    restore(&mut job, checkpoint).await.unwrap();
    let sessions2 = job
        .pipelines
        .iter()
        .find(|p| p.sink == "sessions2")
        .unwrap();
    assert_eq!(sessions2.state().0, 0, "a new pipeline starts empty");
    let tumbling = job.pipelines.iter().find(|p| p.sink == "tumbling").unwrap();
    assert!(tumbling.state().0 > 0, "the others keep their state");
}

#[tokio::test]
async fn an_unknown_policy_is_refused_naming_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("SET spindle.checkpoint.on_change = 'drop';{JOB}");
    let error = build(&text, dir.path()).await.unwrap_err().to_string();
    assert!(
        error.contains("spindle.checkpoint.on_change") && error.contains("'reset-changed'"),
        "{error}"
    );
}

/// An aggregate reading a view's column reads the same (`avg(hot.t2)`)
/// whatever the view computes; the plan below the aggregate shows it.
#[tokio::test]
async fn a_change_inside_a_view_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let with_view = |factor: u32| {
        format!(
            "{JOB}CREATE VIEW hot AS SELECT *, temperature * {factor} AS t2 FROM sensors;
CREATE TABLE viewed (machine_id VARCHAR, t DOUBLE) WITH ('connector' = 'console');
INSERT INTO viewed SELECT machine_id, avg(t2) FROM hot
GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id;"
        )
    };
    let mut old = build(&with_view(2), dir.path()).await.unwrap();
    feed(&mut old, 0).await;
    let checkpoint = checkpoint(&mut old);

    let mut same = build(&with_view(2), dir.path()).await.unwrap();
    restore(&mut same, checkpoint.clone()).await.unwrap();
    let mut job = build(&with_view(3), dir.path()).await.unwrap();
    let message = restore(&mut job, checkpoint).await.unwrap_err().to_string();
    assert!(message.contains("INSERT INTO viewed (line"), "{message}");
    assert!(
        message.contains("computed differently below it") && message.contains("* Int64(3)"),
        "{message}"
    );
}

/// Keys and aggregates listed in another order: the same state in other
/// columns, carried over; the output equals a straight run of the edited
/// job.
#[tokio::test]
async fn reordered_keys_and_aggregates_keep_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let two_keys = edited(
        "INTERVAL '1' MINUTE), machine_id;",
        "INTERVAL '1' MINUTE), machine_id, line;",
    );
    let reordered = two_keys
        .replacen("machine_id, line;", "line, machine_id;", 1)
        .replacen(
            "avg(temperature) AS t_avg, max(noise)",
            "max(noise), avg(temperature) AS t_avg",
            1,
        );
    assert_ne!(reordered, two_keys);
    let mut straight = build(&reordered, dir.path()).await.unwrap();
    feed(&mut straight, 0).await;
    let expected = finish(&mut straight).await;

    let mut before = build(&two_keys, dir.path()).await.unwrap();
    feed(&mut before, 0).await;
    let checkpoint = checkpoint(&mut before);
    let mut job = build(&reordered, dir.path()).await.unwrap();
    restore(&mut job, checkpoint).await.unwrap();
    assert!(
        job.pipelines[0].state().0 > 0,
        "the tumbling windows are restored"
    );
    let got = finish(&mut job).await;
    for (i, sink) in SINKS.iter().enumerate() {
        assert!(expected[i].len() >= 4, "{sink}: too little output");
        assert_eq!(got[i], expected[i], "{sink} differs after the restore");
    }
}

/// An anomaly detector's parameters are part of its call: a detector
/// tuned differently does not take the state it learned with the old
/// parameters.
#[tokio::test]
async fn a_retuned_detector_is_named_with_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let with_detector = |alpha: &str| {
        format!(
            "{JOB}CREATE TABLE alerts (machine_id VARCHAR, score DOUBLE) WITH ('connector' = 'console');
INSERT INTO alerts SELECT machine_id,
  ewma_anomaly(temperature, {alpha}, 3, 5) OVER (PARTITION BY machine_id ORDER BY ts)['score']
FROM sensors;"
        )
    };
    let mut old = build(&with_detector("4"), dir.path()).await.unwrap();
    feed(&mut old, 0).await;
    let checkpoint = checkpoint(&mut old);
    let mut job = build(&with_detector("8"), dir.path()).await.unwrap();
    let message = restore(&mut job, checkpoint).await.unwrap_err().to_string();
    assert!(
        message.contains("INSERT INTO alerts (line 24): OVER function changed: ewma_anomaly(temperature, 4, 3, 5) OVER")
            && message.contains("→ ewma_anomaly(temperature, 8, 3, 5) OVER"),
        "{message}"
    );
}
