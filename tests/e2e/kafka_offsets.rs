//! Consumer-group offsets on the real broker: a job commits what it has
//! checkpointed (Kafka's own `kafka-consumer-groups` shows no lag
//! afterwards), a restart resumes from its checkpoint and reads only what is
//! new whatever the startup mode (Flink's meaning: a restore ignores it), and
//! without a checkpoint `earliest-offset` / `latest-offset` start there
//! whatever the group committed.

use std::process::Command;

use spindle_tests::services::{kafka, repo_root, unique};
use spindle_tests::spindle::{command, stderr};

use crate::engine_oracle::summary_value;

fn simulate(topic: &str, count: &str, start: &str) {
    let output = command([
        "simulate",
        "--brokers",
        kafka(),
        "--topic",
        topic,
        "--partitions",
        "3",
        "--count",
        count,
        "--machines",
        "30",
        "--start",
        start,
        "--quiet",
    ])
    .output()
    .unwrap();
    assert!(output.status.success(), "simulate: {}", stderr(&output));
}

/// Runs the offsets job to the end of input with its state (checkpoints)
/// in `state`; returns records read.
fn run(topic: &str, group: &str, mode: &str, out: &std::path::Path, state: &str) -> u64 {
    let job = repo_root().join("tests/e2e/jobs/offsets.sql");
    let output = command(["run", job.to_str().unwrap(), "--until-idle"])
        .arg("--side-outputs")
        .arg(out.join(state))
        .env("SENSOR_TOPIC", topic)
        .env("KAFKA_BROKERS", kafka())
        .env("GROUP_ID", group)
        .env("STARTUP_MODE", mode)
        .env("OUT", out)
        .output()
        .unwrap();
    assert!(output.status.success(), "run: {}", stderr(&output));
    summary_value(&stderr(&output), "records_in")
}

/// (partition, committed offset, log end offset) per partition, from
/// Kafka's own `kafka-consumer-groups --describe`.
pub(crate) fn committed(group: &str) -> Vec<(i32, i64, i64)> {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .args(["tool", "consumer-groups", "--bootstrap-server", kafka()])
        .args(["--describe", "--group", group])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "consumer-groups: {text}");
    let mut rows: Vec<(i32, i64, i64)> = text
        .lines()
        .filter(|l| l.starts_with(group))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[2].parse().unwrap(),
                f[3].parse().unwrap_or(-1),
                f[4].parse().unwrap(),
            )
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[test]
fn committed_offsets_resume_a_group_and_startup_modes_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("offsets");
    let group = unique("offsets-group");
    simulate(&topic, "6000", "2026-01-01T00:00:00Z");

    assert_eq!(run(&topic, &group, "group-offsets", dir.path(), "a"), 6000);
    let after_first = committed(&group);
    assert_eq!(after_first.len(), 3, "{after_first:?}");
    for (partition, current, end) in &after_first {
        assert_eq!(current, end, "partition {partition}: the group lags");
    }
    assert_eq!(after_first.iter().map(|r| r.1).sum::<i64>(), 6000);

    simulate(&topic, "1500", "2026-01-01T01:00:00Z");
    assert_eq!(run(&topic, &group, "group-offsets", dir.path(), "a"), 1500);
    assert!(
        committed(&group)
            .iter()
            .all(|(_, current, end)| current == end)
    );

    // The checkpoint decides, not the mode.
    assert_eq!(run(&topic, &group, "earliest-offset", dir.path(), "a"), 0);
    // Without one, the mode overrides the group's commits.
    assert_eq!(
        run(&topic, &group, "earliest-offset", dir.path(), "b"),
        7500
    );
    assert_eq!(
        run(&topic, &unique("fresh"), "latest-offset", dir.path(), "c"),
        0
    );
}
