//! Crash recovery on the real broker, reconciled exactly: a checkpointed
//! job is crashed at its fault points (after staging output but before the
//! checkpoint; after the checkpoint but before publishing) and with
//! `kill -9` in the middle of a replay, then run to the end. Every reading
//! `(machine_id, seq)` must end in exactly one window of the history or in
//! the late output; the history must equal the batch oracle over the same
//! readings. Failures are named the way Jepsen does: lost (a reading in no
//! output), duplicated (in two), unseen (a window the oracle lacks).

use std::process::{Child, Stdio};
use std::time::Duration;

// The deployment and its reconciliation are shared with the other fault
// tests (scale-out, broker restart, S3), which still import them from here.
pub(crate) use crate::deployment::{Deployment, wait_for};
use spindle_tests::spindle::stderr;

/// Runs the job until the fault point `point` aborts it on its `after`-th visit.
fn crash_at(deployment: &Deployment, point: &str, after: u32) {
    let output = deployment
        .command("crash")
        .env("SPINDLE_CRASH_AT", point)
        .env("SPINDLE_CRASH_AFTER", after.to_string())
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(
        !output.status.success(),
        "the run should have crashed at {point}:\n{log}"
    );
    assert!(log.contains(&format!("crashing at {point}")), "{log}");
}

/// Starts the job and `kill -9`s it once `more` more partition
/// checkpoints were written.
pub(crate) fn kill_after_checkpoints(deployment: &Deployment, more: u64) {
    let before = deployment.epochs();
    let mut child: Child = deployment
        .command("killed")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "checkpoints of the run to kill",
        Duration::from_secs(120),
        || deployment.epochs() >= before + more,
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed: the replay is too short"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs the job to the end after a kill: it must restore from its
/// checkpoints and read only part of the `readings` (the kill landed
/// mid-replay).
pub(crate) fn finish_after_kill(deployment: &Deployment, readings: usize) {
    let output = deployment
        .command("final")
        .env("SPINDLE_LOG", "info")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "final run:\n{log}");
    assert!(log.contains("restored from checkpoint"), "{log}");
    let resumed = crate::engine_oracle::summary_value(&log, "records_in");
    assert!(
        resumed > 0 && resumed < readings as u64,
        "the kill must land mid-replay: the last run read {resumed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crashes_at_every_fault_point_and_kill_9_lose_and_duplicate_nothing() {
    const READINGS: usize = 400_000;
    let deployment = Deployment::new("recovery");
    deployment.simulate("400000", "1000", "4");

    crash_at(&deployment, "before-checkpoint", 3);
    crash_at(&deployment, "before-publish", 3);
    kill_after_checkpoints(&deployment, 4);
    finish_after_kill(&deployment, READINGS);
    assert!(
        deployment.checkpoint_count() > 0,
        "checkpoints are kept (pruned to the newest per partition)"
    );
    deployment.reconcile(READINGS).await;
}

/// A partition whose records wait in the consumer's queue is not idle: with
/// an idle timeout far below the time a small-batch replay takes, nothing
/// on time may be dropped as late (before the source reported its backlog,
/// such partitions went idle, the watermark jumped and readings were lost
/// to the late output).
#[test]
fn a_slow_replay_with_a_short_idle_timeout_makes_nothing_late() {
    let deployment = Deployment::new("backlog");
    deployment.simulate_late("200000", "1000", "4", "0");
    let output = deployment
        .command("only")
        .env("IDLE_TIMEOUT", "50ms")
        .env("BATCH_RECORDS", "500")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert_eq!(
        crate::engine_oracle::summary_value(&log, "records_in"),
        200_000
    );
    assert_eq!(
        crate::engine_oracle::summary_value(&log, "late"),
        0,
        "{log}"
    );
}

/// The detectors' job (`tests/e2e/jobs/detectors.sql`: every online
/// detector, one stacked on another, and `inter_arrival`, plus a small
/// Random Cut Forest here), checkpointed every half second, `kill -9`ed
/// mid-replay and run to the end: every reading's verdicts equal the same
/// SELECT in batch over all readings. The kill waits for 24 checkpoints
/// (about 6 per partition), so that the operator has pruned its replay
/// context once: before that it replays a partition's whole history and
/// fresh detectors would rebuild their state from it. With
/// `SPINDLE_DETECTOR_STATE=off` (detectors restart from the replayed rows)
/// this test fails: `("m-0001", …) column 0: streamed None, oracle Some(…)`.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_detector_job_scores_every_reading_like_the_batch_oracle() {
    const READINGS: usize = 150_000;
    let mut deployment = Deployment::new("detector-recovery");
    let shipped = std::fs::read_to_string(
        spindle_tests::services::repo_root().join("tests/e2e/jobs/detectors.sql"),
    )
    .unwrap();
    let job = format!(
        "SET spindle.checkpoint.interval = '500ms';\n\
         SET spindle.checkpoint.path = '${{CHECKPOINTS}}';\n{}",
        shipped
            .replace("${OUT}/scores", "${HISTORY_PATH}/scores")
            .replace("inter_arrival DOUBLE", "inter_arrival DOUBLE, rcf DOUBLE")
            .replace("l['score'], gap", "l['score'], gap, r['score']")
            .replace(
                "inter_arrival(ts) OVER w AS gap",
                "inter_arrival(ts) OVER w AS gap, rcf_anomaly([vibration, power], 10, 32) OVER w AS r",
            )
    );
    assert!(job.contains("rcf_anomaly("), "the job text changed: {job}");
    deployment.edit_job(&job);
    // In order: no reading is late, so the oracle is the job over all of them.
    deployment.simulate_with(
        &READINGS.to_string(),
        "500",
        "4",
        "0",
        &["--fault-rate", "20"],
    );

    kill_after_checkpoints(&deployment, 24);
    finish_after_kill(&deployment, READINGS);

    let columns = "machine_id, ts, gaussian, gaussian_flag, ewma, ew_variance, cusum, flatline, \
                   likelihood, inter_arrival, rcf";
    let streamed = crate::oracle::parquet_rows(&deployment.history().join("scores"), columns).await;
    let (readings, count) = deployment.readings();
    assert_eq!(count, READINGS);
    let no_late = deployment.dir.path().join("no-late.jsonl");
    std::fs::write(&no_late, "").unwrap();
    let ctx = crate::oracle::session(&readings, &no_late).await;
    spindle_anomaly::register(&ctx);
    ctx.register_table("sensors", ctx.table("readings").await.unwrap().into_view())
        .unwrap();
    let select = job
        .split("INSERT INTO scores")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(';');
    let oracle = crate::oracle::query_rows(&ctx, select).await;
    assert_eq!(oracle.len(), READINGS, "no reading is late");
    crate::oracle::assert_same("detectors after kill -9", &streamed, &oracle);
}
