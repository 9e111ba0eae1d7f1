//! The Kafka sink on the real broker (`scripts/kafka.sh`, or the broker
//! `SPINDLE_TEST_KAFKA` names):
//!
//! - windowed features written to a 3-partition topic, read back from the
//!   topic, equal record for record the rows the same job prints through a
//!   console sink (JSON fields; the window start in RFC 3339, UTC), each
//!   keyed by its machine and on the partition Kafka's murmur2 partitioner
//!   picks for that key;
//! - records the broker refuses (larger than the topic's
//!   `max.message.bytes`) fail the job with the broker's error.

use std::collections::BTreeMap;

use serde_json::Value;
use spindle_tests::kafka::{create_topic, partition_for, read_all};
use spindle_tests::services::{kafka, unique};
use spindle_tests::spindle::{command, stderr};

const COLUMNS: &str = "machine_id VARCHAR NOT NULL, window_start TIMESTAMP(3) NOT NULL, \
                       readings BIGINT NOT NULL, temperature_avg DOUBLE, rpm_sampled DOUBLE, \
                       note VARCHAR";

/// Features per machine and minute into `topic` (extra sink options
/// `extra`) and, as the oracle, to the console.
fn job(topic: &str, extra: &str) -> String {
    let brokers = kafka();
    let select = "SELECT machine_id, window_start, count(*), avg(temperature), \
                  max(CASE WHEN seq % 7 = 0 THEN rpm END), concat('say \"hi\" \\ ', machine_id, chr(10)) \
                  FROM sensors GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id";
    format!(
        r#"CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'simulator', 'machines' = '7', 'count' = '6000', 'interval' = '10s',
        'batch.max-records' = '700');
CREATE TABLE features ({COLUMNS}) WITH ('connector' = 'kafka', 'topic' = '{topic}',
  'properties.bootstrap.servers' = '{brokers}', 'key.column' = 'machine_id'{extra});
CREATE TABLE oracle ({COLUMNS}) WITH ('connector' = 'console');
INSERT INTO features {select};
INSERT INTO oracle {select};
"#
    )
}

fn run(job_text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    std::fs::write(&job, job_text).unwrap();
    let mut run = command([
        "run",
        job.to_str().unwrap(),
        "--until-idle",
        "--side-outputs",
    ]);
    run.arg(dir.path().join("side"));
    run.output().unwrap()
}

/// Rows by (machine, window start).
fn by_window(rows: impl Iterator<Item = Value>) -> BTreeMap<(String, String), Value> {
    let mut map = BTreeMap::new();
    for row in rows {
        let key = (
            row["machine_id"].as_str().unwrap().to_string(),
            row["window_start"].as_str().unwrap().to_string(),
        );
        assert!(
            map.insert(key, row).is_none(),
            "one row per machine and window"
        );
    }
    map
}

#[test]
fn windowed_rows_read_back_from_the_topic_equal_the_console_rows() {
    let topic = unique("features-out");
    create_topic(kafka(), &topic, 3, &[]);
    let output = run(&job(&topic, ""));
    assert!(output.status.success(), "spindle run: {}", stderr(&output));

    let console = String::from_utf8(output.stdout).unwrap();
    let expected = by_window(console.lines().map(|l| serde_json::from_str(l).unwrap()));
    // 7 machines × 6000/7 readings 10 s apart: about 143 minutes each.
    assert!(
        (990..=1010).contains(&expected.len()),
        "{} windows",
        expected.len()
    );
    let records = read_all(kafka(), &topic);
    assert_eq!(records.len(), expected.len(), "records in the topic");
    let mut partitions = std::collections::BTreeSet::new();
    for record in &records {
        let row: Value = serde_json::from_slice(&record.payload).unwrap();
        assert_eq!(record.key, row["machine_id"].as_str().unwrap().as_bytes());
        assert_eq!(record.partition, partition_for(&record.key, 3), "murmur2");
        partitions.insert(record.partition);
        let start = row["window_start"].as_str().unwrap();
        assert!(start.ends_with('Z'), "RFC 3339 in UTC: {start}");
    }
    assert!(partitions.len() > 1, "7 keys spread over partitions");
    let got = by_window(
        records
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).unwrap()),
    );
    assert_eq!(got.len(), expected.len());
    for (key, want) in &expected {
        assert_eq!(got.get(key), Some(want), "window {key:?}");
    }
    let nulls = expected.values().filter(|r| r.get("rpm_sampled").is_none());
    assert!(nulls.count() > 0, "some rows have a null (left out) field");
}

#[test]
fn a_full_producer_queue_makes_the_job_wait_instead_of_dropping() {
    let topic = unique("small-queue");
    create_topic(kafka(), &topic, 3, &[]);
    let tiny = ", 'properties.queue.buffering.max.messages' = '5'";
    let mut run = command(["run", "--until-idle", "--side-outputs"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.sql");
    std::fs::write(&file, job(&topic, tiny)).unwrap();
    run.arg(dir.path().join("side"))
        .arg(&file)
        .env("SPINDLE_LOG", "info");
    let output = run.output().unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "spindle run: {log}");
    let console = String::from_utf8(output.stdout).unwrap();
    assert_eq!(read_all(kafka(), &topic).len(), console.lines().count());
    let summary = log
        .lines()
        .find(|l| l.contains("kafka sink features"))
        .expect("sink summary");
    let waits: u64 = summary
        .split("waited ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("waits in the summary");
    assert!(waits > 0, "the queue was full at times: {summary}");
    assert!(summary.contains("failed 0"), "{summary}");
}

#[test]
fn records_the_broker_refuses_fail_the_job_with_its_error() {
    let topic = unique("too-small");
    create_topic(kafka(), &topic, 1, &[("max.message.bytes", "64")]);
    let output = run(&job(&topic, ", 'properties.message.timeout.ms' = '20000'"));
    assert!(!output.status.success(), "the job must fail");
    let log = stderr(&output);
    assert!(log.contains("sink features"), "{log}");
    assert!(log.contains("could not be delivered to topic"), "{log}");
    assert!(
        log.to_lowercase().contains("message size too large"),
        "{log}"
    );
}

#[test]
fn bad_options_are_named() {
    let topic = unique("unused");
    let output = run(&job(&topic, ", 'properties.no.such.thing' = '1'"));
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("properties.no.such.thing"), "{log}");
    let output = run(&job(&topic, ", 'key.colum' = 'machine_id'"));
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("did you mean 'key.column'"), "{log}");
}
