//! Many workers in one consumer group on the real broker: a worker joins
//! (Kafka moves partitions; the owner checkpoints them before letting go
//! and the new owner restores them), a worker is killed with `kill -9`
//! (its partitions move to the survivors, which resume from its last
//! checkpoints), the survivors stop, and one worker finishes the input:
//! three, then two, then one worker — and the history equals one run's
//! (the batch oracle), with every reading reconciled.

use std::time::Duration;

use crate::deployment::{Deployment, Running, wait_for};
use crate::kafka_offsets::committed;

/// A running worker whose log goes to a file.
struct Worker(Running);

impl Worker {
    fn start(deployment: &Deployment, name: &str) -> Self {
        let log = deployment.dir.path().join(format!("{name}.log"));
        Self(Running::start(deployment.worker(name), log))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// Waits until the log has `count` lines containing `text`.
    fn wait_log(&self, text: &str, count: usize) {
        wait_for(
            &format!("{text} ×{count} in {}", self.0.log_path.display()),
            Duration::from_secs(120),
            || self.log().matches(text).count() >= count,
        );
    }

    /// Ctrl-C: the worker takes a final checkpoint and exits cleanly.
    fn interrupt(mut self) {
        self.0.signal("INT");
        let exit = self.0.child.wait().unwrap();
        assert!(exit.success(), "worker failed:\n{}", self.log());
    }
}

fn lag_is_zero(group: &str, partitions: usize) -> bool {
    let rows = committed(group);
    rows.len() == partitions && rows.iter().all(|(_, current, end)| current == end)
}

fn restored_partitions(log: &str) -> usize {
    log.matches("restored from checkpoint").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_join_die_and_leave_and_the_history_equals_one_run() {
    const READINGS: usize = 600_000;
    let deployment = Deployment::new("scale");
    deployment.simulate("600000", "1200", "6");

    let first = Worker::start(&deployment, "first");
    wait_for(
        "the first worker's checkpoints",
        Duration::from_secs(120),
        || deployment.epochs() >= 6,
    );
    // Two more join: the first hands partitions over (checkpoints them)
    // and the newcomers restore them.
    let second = Worker::start(&deployment, "second");
    let third = Worker::start(&deployment, "third");
    wait_for(
        "the newcomers to restore partitions",
        Duration::from_secs(120),
        || restored_partitions(&second.log()) > 0 && restored_partitions(&third.log()) > 0,
    );
    first.wait_log("handed over revoked partitions", 1);
    // kill -9 one of them: after the session timeout its partitions move to
    // the survivors, which resume from its checkpoints.
    let mut killed = second;
    killed.0.child.kill().unwrap();
    killed.0.child.wait().unwrap();
    let before = restored_partitions(&first.log()) + restored_partitions(&third.log());
    wait_for(
        "the survivors to take the dead worker's partitions",
        Duration::from_secs(120),
        || restored_partitions(&first.log()) + restored_partitions(&third.log()) > before,
    );
    wait_for(
        "the group to catch up (kafka-consumer-groups lag 0)",
        Duration::from_secs(300),
        || lag_is_zero(&deployment.group, 6),
    );
    first.interrupt();
    third.interrupt();
    // One worker closes the windows still open at the end of input.
    let output = deployment.command("last").output().unwrap();
    assert!(
        output.status.success(),
        "last worker:\n{}",
        spindle_tests::spindle::stderr(&output)
    );
    assert_reads_nothing_new(&output);
    deployment.reconcile(READINGS).await;
}

/// The last worker finds every offset checkpointed at the end.
fn assert_reads_nothing_new(output: &std::process::Output) {
    let log = spindle_tests::spindle::stderr(output);
    assert_eq!(
        crate::engine_oracle::summary_value(&log, "records_in"),
        0,
        "{log}"
    );
}
