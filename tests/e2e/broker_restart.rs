//! The Kafka broker goes away under a running job and comes back, on a
//! private broker (`scripts/kafka.sh` on free ports; the shared one keeps
//! serving the other tests):
//!
//! - mid-replay, the broker is stopped: the checkpointed features job keeps
//!   checkpointing, does not take its input for exhausted while it cannot
//!   see it, reconnects when the broker is back, reads the readings produced
//!   after the restart, and finishes (`--until-idle`) with every reading
//!   reconciled and the history equal to the batch oracle;
//! - a job stopped (Ctrl-C) while the broker is down exits, with its final
//!   checkpoint, instead of waiting forever for its last offset commit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spindle_tests::kafka::PrivateBroker;
use spindle_tests::services::repo_root;

use crate::deployment::{Deployment, Running, tail, wait_for};
use crate::engine_oracle::summary_value;

/// The built-in profile with other machine ids (`r-0001`, …), so readings
/// produced after the restart are new `(machine_id, seq)` pairs.
fn second_profile(dir: &Path) -> PathBuf {
    let shipped =
        std::fs::read_to_string(repo_root().join("simulator/profiles/packing_line.toml")).unwrap();
    let renamed = shipped.replace("id_pattern = \"m-{n:04}\"", "id_pattern = \"r-{n:04}\"");
    assert_ne!(
        renamed, shipped,
        "packing_line.toml names its machines m-{{n:04}}"
    );
    let path = dir.join("restarted.toml");
    std::fs::write(&path, renamed).unwrap();
    path
}

/// Waits until the job has seen the broker gone (librdkafka reports every
/// connection down).
fn wait_for_outage(job: &mut Running) {
    job.wait_until(
        "the job to see the broker gone",
        Duration::from_secs(60),
        |log| log.contains("AllBrokersDown"),
    );
}

/// A private broker, a deployment of the checkpointed features job on it
/// with `count` readings of `machines` machines in `partitions` partitions,
/// and `run` of it started and past its first checkpoint of each partition.
fn started(
    name: &str,
    (count, machines, partitions): (&str, &str, &str),
    run: impl FnOnce(&Deployment) -> std::process::Command,
) -> (PrivateBroker, Deployment, Running) {
    let broker = PrivateBroker::start();
    let deployment = Deployment::new(name)
        .with_brokers(&broker.bootstrap)
        .with_features_job(3);
    deployment.simulate(count, machines, partitions);
    let log = deployment.dir.path().join(format!("{name}.log"));
    let job = Running::start(run(&deployment), log);
    let partitions: u64 = partitions.parse().unwrap();
    wait_for(
        "the job's first checkpoints",
        Duration::from_secs(120),
        || deployment.epochs() >= partitions,
    );
    (broker, deployment, job)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restarted_mid_stream_loses_and_duplicates_nothing() {
    // 64 MB of readings: the job fetches ahead by about 16 MiB at most
    // (`queued.max.messages.kbytes` and a fetch in flight), so it cannot
    // have fetched the end of the topic before it has processed over half
    // of it; the broker stops after its first checkpoints, long before.
    const BEFORE: usize = 300_000;
    const AFTER: usize = 10_000;
    let (broker, deployment, mut job) = started("broker-restart", ("300000", "500", "4"), |d| {
        d.command("job")
    });
    broker.stop();
    assert!(
        job.running(),
        "the job finished before the broker stopped: the replay is too short"
    );
    wait_for_outage(&mut job);
    // Without a broker the job goes on: it processes what it had fetched and
    // checkpoints (the offset commits fail until the broker is back), and it
    // does not stop as caught up on a high watermark it cannot refresh.
    let during = deployment.epochs();
    job.wait_until(
        "checkpoints while the broker is down",
        Duration::from_secs(60),
        |_| deployment.epochs() >= during + 8,
    );
    assert!(
        job.running(),
        "the job stopped while its broker was down:\n{}",
        tail(&job.log())
    );
    // Paused again while the broker starts and new readings arrive, so it
    // cannot finish before they exist; it reconnects when it resumes.
    job.signal("STOP");
    broker.restart();
    let profile = second_profile(deployment.dir.path());
    deployment.simulate_with(
        "10000",
        "100",
        "4",
        "0.02",
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--start",
            "2026-01-01T06:00:00Z",
        ],
    );
    job.signal("CONT");
    let status = job.wait(Duration::from_secs(180));
    let text = job.log();
    assert!(status.success(), "the job failed:\n{}", tail(&text));
    let read = summary_value(&text, "records_in");
    assert!(
        read >= (BEFORE + AFTER) as u64,
        "the job read {read} records: the ones produced after the restart are unseen"
    );
    deployment.reconcile(BEFORE + AFTER).await;
}

#[test]
fn a_job_stopped_while_its_broker_is_down_exits_with_a_final_checkpoint() {
    let (broker, deployment, mut worker) =
        started("outage-stop", ("20000", "200", "2"), |d| d.worker("worker"));
    broker.stop();
    wait_for_outage(&mut worker);
    let before = deployment.epochs();
    worker.signal("INT");
    // Without a coordinator, librdkafka's synchronous commit never returns
    // and its close waits for the commits in flight to time out (35-45 s
    // measured, over 60 s under the full suite's load): the source waits
    // 10 s for each, so the stop takes about 20 s.
    let status = worker.wait(Duration::from_secs(60));
    let text = worker.log();
    assert!(status.success(), "the worker failed:\n{}", tail(&text));
    assert!(
        deployment.epochs() > before,
        "no final checkpoint was written:\n{}",
        tail(&text)
    );
    assert!(
        text.contains("final offset commit was not answered"),
        "{}",
        tail(&text)
    );
}
