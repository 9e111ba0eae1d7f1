//! `spindle run` on the real broker, checked against the batch oracle:
//! the reference features job (tumbling windows), and a job with hopping and
//! session windows sharing one source; plus bad input.

use std::io::Write;
use std::path::Path;

use spindle_tests::kafka::{produce, read_all};
use spindle_tests::services::{kafka, repo_root, unique};
use spindle_tests::spindle::{command, side_output, stderr};

use crate::oracle::{assert_same, parquet_rows, query_rows, session};

const READINGS: &str = "200000";

/// Simulates readings with late and out-of-order events into a new topic.
fn simulate_into(topic: &str, extra: &[&str]) {
    let mut args = vec![
        "simulate",
        "--brokers",
        kafka(),
        "--topic",
        topic,
        "--partitions",
        "4",
        "--count",
        READINGS,
        "--machines",
        "500",
        "--late-fraction",
        "0.02",
        "--max-delay",
        "20s",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = command(&args).output().unwrap();
    assert!(output.status.success(), "simulate: {}", stderr(&output));
}

/// Runs a job file to the end of input.
fn run_job(job: &Path, topic: &str, out: &Path) -> String {
    let output = command([
        "run",
        job.to_str().unwrap(),
        "--until-idle",
        "--side-outputs",
    ])
    .arg(out.join("side"))
    .env("SENSOR_TOPIC", topic)
    .env("KAFKA_BROKERS", kafka())
    .env("GROUP_ID", unique("group"))
    .env("HISTORY_PATH", out.join("history"))
    .env("OUT", out)
    .output()
    .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "spindle run failed:\n{log}");
    log
}

/// The topic's records as a JSON lines file for the oracle.
pub(crate) fn dump_topic(topic: &str, path: &Path) -> usize {
    dump_topic_from(kafka(), topic, path)
}

/// The same from the broker at `brokers`.
pub(crate) fn dump_topic_from(brokers: &str, topic: &str, path: &Path) -> usize {
    let records = read_all(brokers, topic);
    let mut file = std::fs::File::create(path).unwrap();
    for r in &records {
        file.write_all(&r.payload).unwrap();
        file.write_all(b"\n").unwrap();
    }
    records.len()
}

pub(crate) fn summary_value(log: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.starts_with("run:"))
        .expect("summary line");
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A shipped job run over simulated readings (with late data) on a fresh topic.
pub(crate) struct ShippedRun {
    pub dir: tempfile::TempDir,
    pub log: String,
    pub readings: std::path::PathBuf,
    pub late_file: std::path::PathBuf,
    pub late: u64,
}

/// Runs `jobs/NAME.sql` over 200,000 simulated readings; checks that every
/// late row is in the late output and that there are some.
pub(crate) fn run_shipped_job(name: &str) -> ShippedRun {
    run_job_file(&repo_root().join(format!("jobs/{name}.sql")), name, &[])
}

/// Runs the job file `job` the same way, with extra simulator arguments.
pub(crate) fn run_job_file(job: &Path, name: &str, simulate: &[&str]) -> ShippedRun {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique(&format!("oracle-{name}"));
    simulate_into(&topic, simulate);
    let log = run_job(job, &topic, dir.path());
    let readings = dir.path().join("readings.jsonl");
    assert_eq!(dump_topic(&topic, &readings), 200_000);
    let late_file = side_output(&dir.path().join("side"), "late");
    let late = summary_value(&log, "late");
    assert_eq!(
        lines(&late_file) as u64,
        late,
        "every late row is in the late output"
    );
    assert!(late > 10, "the test must exercise late data, got {late}");
    ShippedRun {
        dir,
        log,
        readings,
        late_file,
        late,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn factory_features_equal_the_batch_oracle() {
    let ShippedRun {
        dir,
        log,
        readings,
        late_file,
        ..
    } = run_shipped_job("factory_features");

    let columns = "machine_id, window_start, readings, temperature_avg, temperature_min, temperature_max, \
                   temperature_stddev, vibration_avg, vibration_stddev, rpm_max";
    let streamed = parquet_rows(&dir.path().join("history/features"), columns).await;
    let ctx = session(&readings, &late_file).await;
    let oracle = query_rows(
        &ctx,
        "SELECT machine_id, to_timestamp_millis(CAST(ts AS BIGINT) - CAST(ts AS BIGINT) % 10000) AS ws,
                count(*), avg(temperature), min(temperature), max(temperature), stddev(temperature),
                avg(vibration), stddev(vibration), max(rpm)
         FROM readings r
         WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.pipeline = 'features' AND l.machine_id = r.machine_id AND l.seq = r.seq)
         GROUP BY machine_id, ws",
    )
    .await;
    assert_same("tumble", &streamed, &oracle);
    assert_eq!(summary_value(&log, "rows_out") as usize, oracle.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn hopping_and_session_windows_from_one_source_equal_the_batch_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("oracle-multi");
    // Frequent faults make stalled machines, which split sessions.
    simulate_into(&topic, &["--fault-rate", "20"]);
    let job = repo_root().join("tests/e2e/jobs/windows.sql");
    let log = run_job(&job, &topic, dir.path());
    let readings = dir.path().join("readings.jsonl");
    assert_eq!(dump_topic(&topic, &readings), 200_000);
    let late_file = side_output(&dir.path().join("side"), "late");
    assert_eq!(lines(&late_file) as u64, summary_value(&log, "late"));
    let ctx = session(&readings, &late_file).await;

    let hop_oracle = query_rows(
        &ctx,
        "WITH assigned AS (
           SELECT r.*, CAST(ts AS BIGINT) - CAST(ts AS BIGINT) % 5000 - k.k * 5000 AS ws
           FROM readings r CROSS JOIN (VALUES (0), (1), (2), (3)) AS k(k))
         SELECT machine_id, to_timestamp_millis(ws), count(*), max(vibration), avg(power)
         FROM assigned a
         WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.pipeline = 'hopping' AND l.machine_id = a.machine_id
                           AND l.seq = a.seq AND CAST(l.window_start AS BIGINT) = a.ws)
         GROUP BY machine_id, ws",
    )
    .await;
    let hop = parquet_rows(
        &dir.path().join("hopping"),
        "machine_id, window_start, readings, vibration_max, power_avg",
    )
    .await;
    assert_same("hop", &hop, &hop_oracle);

    let session_oracle = query_rows(
        &ctx,
        "WITH kept AS (
           SELECT * FROM readings r
           WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.pipeline = 'sessions' AND l.machine_id = r.machine_id AND l.seq = r.seq)),
         marked AS (
           SELECT *, CASE WHEN lag(ts) OVER (PARTITION BY machine_id ORDER BY ts, seq) IS NULL
                            OR CAST(ts AS BIGINT) - CAST(lag(ts) OVER (PARTITION BY machine_id ORDER BY ts, seq) AS BIGINT) >= 30000
                          THEN 1 ELSE 0 END AS starts_session
           FROM kept),
         numbered AS (
           SELECT *, sum(starts_session) OVER (PARTITION BY machine_id ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS session_id
           FROM marked)
         SELECT machine_id, min(ts), count(*), avg(rpm), CAST(max(ts) AS BIGINT) + 30000
         FROM numbered GROUP BY machine_id, session_id",
    )
    .await;
    let sessions = parquet_rows(
        &dir.path().join("sessions"),
        "machine_id, window_start, readings, rpm_avg, CAST(window_end AS BIGINT) / 1000",
    )
    .await;
    assert_same("session", &sessions, &session_oracle);
    let split = session_oracle.len() - 500;
    assert!(split > 10, "stalls must split some sessions, got {split}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_records_go_to_the_dead_letter_output_and_results_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("bad-input");
    let clean = dir.path().join("clean.jsonl");
    let output = command([
        "simulate",
        "--count",
        "20000",
        "--machines",
        "50",
        "--quiet",
        "--output",
    ])
    .arg(&clean)
    .output()
    .unwrap();
    assert!(output.status.success());
    let text = std::fs::read_to_string(&clean).unwrap();
    let corruptions = [
        r#"{"machine_id":"m-0001","seq":1,"ts":"2026-01-01T00:00:00Z","temperature":"hot"}"#,
        r#"{"machine_id":"m-0001","seq":1,"ts":"#,
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z"}"#,
        r#"{"machine_id":"m-0001","seq":1,"ts":"not a time"}"#,
        "",
        "[1,2,3]",
    ];
    let mut records = Vec::new();
    let mut valid = String::new();
    let mut malformed = 0;
    for (i, line) in text.lines().enumerate() {
        if i % 100 == 50 {
            records.push((
                "m-bad".to_string(),
                corruptions[malformed % corruptions.len()]
                    .as_bytes()
                    .to_vec(),
            ));
            malformed += 1;
        } else {
            let key = serde_json::from_str::<serde_json::Value>(line).unwrap()["machine_id"]
                .as_str()
                .unwrap()
                .to_string();
            records.push((key, line.as_bytes().to_vec()));
            valid.push_str(line);
            valid.push('\n');
        }
    }
    // The producer's admin calls run their own runtime: keep it off ours.
    let brokers = kafka().to_string();
    let produce_topic = topic.clone();
    std::thread::spawn(move || produce(&brokers, &produce_topic, 3, &records))
        .join()
        .unwrap();
    let readings = dir.path().join("valid.jsonl");
    std::fs::write(&readings, valid).unwrap();

    let log = run_job(
        &repo_root().join("jobs/factory_features.sql"),
        &topic,
        dir.path(),
    );
    assert_eq!(summary_value(&log, "bad"), malformed as u64);
    let dead_letter =
        std::fs::read_to_string(side_output(&dir.path().join("side"), "dead-letter")).unwrap();
    assert_eq!(
        dead_letter.lines().count(),
        malformed,
        "every malformed record is in the dead-letter output"
    );
    for entry in dead_letter.lines() {
        let v: serde_json::Value = serde_json::from_str(entry).unwrap();
        assert!(
            v["offset"].is_i64()
                && v["partition"].is_i64()
                && !v["error"].as_str().unwrap().is_empty()
        );
    }
    let late_file = side_output(&dir.path().join("side"), "late");
    let ctx = session(&readings, &late_file).await;
    let oracle = query_rows(
        &ctx,
        "SELECT machine_id, to_timestamp_millis(CAST(ts AS BIGINT) - CAST(ts AS BIGINT) % 10000) AS ws, count(*), max(temperature)
         FROM readings r
         WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.machine_id = r.machine_id AND l.seq = r.seq)
         GROUP BY machine_id, ws",
    )
    .await;
    let streamed = parquet_rows(
        &dir.path().join("history/features"),
        "machine_id, window_start, readings, temperature_max",
    )
    .await;
    assert_same("bad input", &streamed, &oracle);
}
