//! Upgrading a checkpointed job on the real broker: a worker is stopped
//! (Ctrl-C: a final checkpoint that keeps the open windows), its SQL
//! edited, and started again. An edit after the windows keeps the state;
//! an edit of the window and of an aggregate is refused naming both (the
//! state's columns alone could not show either, so before state
//! descriptions it restored silently); with
//! `spindle.checkpoint.on_change = 'reset-changed'` the edited pipeline
//! starts empty and the log says so.

use std::time::Duration;

use spindle_tests::services::repo_root;

use crate::deployment::{Deployment, Running, wait_for};
use crate::kafka_offsets::committed;

const PARTITIONS: usize = 2;

fn start(deployment: &Deployment, worker: &str) -> Running {
    let log = deployment.dir.path().join(format!("{worker}.log"));
    Running::start(deployment.worker(worker), log)
}

/// Waits until the worker's log holds `text` once per partition.
fn wait_log(worker: &mut Running, text: &str) {
    wait_for(
        &format!("{text:?} ×{PARTITIONS}"),
        Duration::from_secs(120),
        || worker.log().matches(text).count() >= PARTITIONS || !worker.running(),
    );
    assert!(
        worker.running(),
        "the worker ended early:\n{}",
        worker.log()
    );
}

/// Ctrl-C, then the worker's log once it exited cleanly.
fn interrupt(mut worker: Running) -> String {
    worker.signal("INT");
    let exit = worker.wait(Duration::from_secs(60));
    assert!(exit.success(), "worker failed:\n{}", worker.log());
    worker.log()
}

#[test]
fn an_edited_job_keeps_unchanged_state_and_names_what_changed() {
    let mut deployment = Deployment::new("upgrade");
    deployment.simulate("20000", "20", &PARTITIONS.to_string());
    let original = std::fs::read_to_string(repo_root().join("tests/e2e/jobs/recovery.sql"))
        .expect("reading tests/e2e/jobs/recovery.sql");

    let mut first = start(&deployment, "first");
    wait_for("every reading committed", Duration::from_secs(120), || {
        let rows = committed(&deployment.group);
        rows.len() == PARTITIONS && rows.iter().all(|(_, at, end)| at == end) || !first.running()
    });
    assert!(
        first.running(),
        "the first worker ended early:\n{}",
        first.log()
    );
    interrupt(first);

    // Only a column's name after the window changes: the state carries.
    deployment.edit_job(&original.replace("avg(rpm)", "avg(rpm) AS rpm_mean"));
    let mut renamed = start(&deployment, "renamed");
    wait_log(&mut renamed, "restored from checkpoint");
    interrupt(renamed);

    let edited = original
        .replace("INTERVAL '10' SECOND", "INTERVAL '1' MINUTE")
        .replace("avg(rpm)", "avg(rpm * 2)");
    deployment.edit_job(&edited);
    let mut refused = start(&deployment, "refused");
    let exit = refused.wait(Duration::from_secs(60));
    let log = refused.log();
    assert!(
        !exit.success(),
        "a changed window must not take the old state:\n{log}"
    );
    assert!(
        log.contains(
            "INSERT INTO features (line 30): window changed from TUMBLE(ts, 10 seconds) to \
             TUMBLE(ts, 1 minute); aggregate changed: avg(rpm) → avg(rpm * 2)"
        ),
        "{log}"
    );
    assert!(
        log.contains("SET spindle.checkpoint.on_change = 'reset-changed'"),
        "{log}"
    );

    deployment.edit_job(&format!(
        "SET spindle.checkpoint.on_change = 'reset-changed';\n{edited}"
    ));
    let mut reset = start(&deployment, "reset");
    wait_log(
        &mut reset,
        "dropping the checkpointed state of INSERT INTO features (line 31): window changed",
    );
    interrupt(reset);
}
