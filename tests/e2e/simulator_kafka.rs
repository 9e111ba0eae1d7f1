//! `spindle simulate` into the real Kafka broker, read back and reconciled.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use spindle_tests::kafka::{partition_for, read_all};
use spindle_tests::services::{kafka, repo_root, unique};
use spindle_tests::spindle::{run, stderr, summary_field};

const READINGS: u64 = 1_000_000;
const PARTITIONS: i32 = 6;

#[test]
fn a_million_readings_arrive_once_each_in_their_key_partition() {
    let brokers = kafka();
    let topic = unique("sim-roundtrip");
    let output = run([
        "simulate",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--partitions",
        &PARTITIONS.to_string(),
        "--count",
        &READINGS.to_string(),
        "--machines",
        "1000",
        "--late-fraction",
        "0.01",
        "--labels",
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "simulate failed: {}",
        stderr(&output)
    );
    assert_eq!(summary_field(&output, "records"), Some(READINGS));
    assert_eq!(summary_field(&output, "delivered"), Some(READINGS));
    assert_eq!(summary_field(&output, "failed"), Some(0));

    let records = read_all(brokers, &topic);
    assert_eq!(records.len() as u64, READINGS, "exact count on the broker");
    let mut last_seq: HashMap<String, Vec<u64>> = HashMap::new();
    for record in &records {
        assert_eq!(
            record.partition,
            partition_for(&record.key, PARTITIONS),
            "key {:?} in the wrong partition",
            String::from_utf8_lossy(&record.key)
        );
        let json: serde_json::Value = serde_json::from_slice(&record.payload).expect("JSON record");
        let machine = json["machine_id"].as_str().expect("machine_id").to_string();
        assert_eq!(
            machine.as_bytes(),
            record.key.as_slice(),
            "key is the machine id"
        );
        let seq = json["seq"].as_u64().expect("seq");
        last_seq.entry(machine).or_default().push(seq);
    }
    assert_eq!(last_seq.len(), 1000, "every machine reported");
    for (machine, mut seqs) in last_seq {
        seqs.sort_unstable();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{machine}: gaps or duplicates");
    }
}

#[test]
fn an_existing_topic_keeps_its_partitions() {
    let brokers = kafka();
    let topic = unique("sim-existing");
    for partitions in ["3", "5"] {
        let output = run([
            "simulate",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--partitions",
            partitions,
            "--count",
            "1000",
            "--quiet",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let records = read_all(brokers, &topic);
    assert_eq!(records.len(), 2000);
    assert!(
        records.iter().all(|r| r.partition < 3),
        "the topic was created with 3"
    );
}

#[test]
fn undeliverable_readings_are_counted_and_fail_the_run() {
    let brokers = kafka();
    let topic = unique("sim-timeout");
    // Records that expire in the producer's queue before they can be sent.
    let output = run([
        "simulate",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--count",
        "20000",
        "--acks",
        "1",
        "--linger-ms",
        "0",
        "-X",
        "message.timeout.ms=1",
        "--quiet",
    ]);
    assert!(
        !output.status.success(),
        "a run with failed deliveries must fail"
    );
    let failed = summary_field(&output, "failed").expect("summary line");
    let delivered = summary_field(&output, "delivered").expect("summary line");
    assert!(failed > 0, "{}", stderr(&output));
    assert_eq!(failed + delivered, 20_000, "every reading is accounted for");
    assert!(stderr(&output).contains("were not delivered"));
}

/// The topic's non-default configs, from Kafka's own `kafka-configs --describe`.
fn topic_configs(topic: &str) -> String {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .args(["tool", "configs", "--bootstrap-server", kafka()])
        .args([
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "kafka-configs: {text}");
    text
}

/// The Kafka timestamp of the first record of partition 0.
fn first_timestamp(topic: &str) -> Timestamp {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique("ts-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    for _ in 0..60 {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            return message.expect("record").timestamp();
        }
    }
    panic!("no record in {topic} partition 0");
}

/// Simulated time is 2026-01-01 by default (or far ahead, as here): under the
/// broker's default `CreateTime` its retention would delete the topic's
/// records within minutes, and Kafka 4 refuses records stamped more than an
/// hour ahead. A topic the simulator creates takes the broker's append time.
#[test]
fn a_created_topic_stamps_records_with_the_append_time() {
    let brokers = kafka();
    let topic = unique("sim-append-time");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let output = run([
        "simulate",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--count",
        "1000",
        "--start",
        "2099-01-01T00:00:00Z",
        "--quiet",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary_field(&output, "delivered"), Some(1000));
    let configs = topic_configs(&topic);
    assert!(
        configs.contains("message.timestamp.type=LogAppendTime"),
        "topic configs: {configs}"
    );
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    match first_timestamp(&topic) {
        Timestamp::LogAppendTime(ms) => assert!(
            (before.as_millis() as i64 - 5_000..=after.as_millis() as i64 + 5_000).contains(&ms),
            "append time {ms} outside the run ({before:?} … {after:?})"
        ),
        other => panic!("expected a LogAppendTime timestamp, got {other:?}"),
    }
    let records = read_all(brokers, &topic);
    let json: serde_json::Value = serde_json::from_slice(&records[0].payload).unwrap();
    assert!(
        json["ts"]
            .as_str()
            .is_some_and(|ts| ts.starts_with("2099-01-01")),
        "the event time stays in the payload: {json}"
    );
}
