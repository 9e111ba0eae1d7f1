//! Crash recovery on the real broker, reconciled exactly: a checkpointed
//! job is crashed at its fault points (after staging output but before the
//! checkpoint; after the checkpoint but before publishing) and with
//! `kill -9` in the middle of a replay, then run to the end. Every reading
//! `(machine_id, seq)` must end in exactly one window of the history or in
//! the late output; the history must equal the batch oracle over the same
//! readings. Failures are named the way Jepsen does: lost (a reading in no
//! output), duplicated (in two), unseen (a window the oracle lacks).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use spindle_tests::services::{kafka, repo_root, unique};
use spindle_tests::spindle::{command, side_output, stderr};

use crate::engine_oracle::dump_topic;
use crate::oracle::{assert_same, parquet_rows, query_rows, session};

/// One deployment of the recovery job: its topic, group and folders.
pub(crate) struct Deployment {
    pub dir: tempfile::TempDir,
    pub topic: String,
    pub group: String,
}

impl Deployment {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            topic: unique(name),
            group: unique(&format!("{name}-group")),
        }
    }

    /// Fills the topic: `count` readings of `machines` machines over
    /// `partitions` partitions, 2 % of them late by up to 20 s.
    pub(crate) fn simulate(&self, count: &str, machines: &str, partitions: &str) {
        self.simulate_late(count, machines, partitions, "0.02");
    }

    /// The same with a given fraction of late readings.
    pub(crate) fn simulate_late(&self, count: &str, machines: &str, partitions: &str, late: &str) {
        let output = command([
            "simulate",
            "--brokers",
            kafka(),
            "--topic",
            &self.topic,
            "--partitions",
            partitions,
            "--count",
            count,
            "--machines",
            machines,
            "--late-fraction",
            late,
            "--max-delay",
            "20s",
            "--quiet",
        ])
        .output()
        .unwrap();
        assert!(output.status.success(), "simulate: {}", stderr(&output));
    }

    pub(crate) fn history(&self) -> PathBuf {
        self.dir.path().join("history")
    }

    fn checkpoints(&self) -> PathBuf {
        self.dir.path().join("checkpoints")
    }

    /// `spindle run --until-idle` of the recovery job; `worker` names its
    /// side outputs.
    pub(crate) fn command(&self, worker: &str) -> std::process::Command {
        let mut cmd = self.worker(worker);
        cmd.arg("--until-idle");
        cmd
    }

    /// `spindle run` of the recovery job until it is interrupted.
    pub(crate) fn worker(&self, worker: &str) -> std::process::Command {
        let job = repo_root().join("tests/e2e/jobs/recovery.sql");
        let mut cmd = command(["run", job.to_str().unwrap()]);
        cmd.arg("--side-outputs")
            .arg(self.dir.path().join("side").join(worker))
            .env("SENSOR_TOPIC", &self.topic)
            .env("KAFKA_BROKERS", kafka())
            .env("GROUP_ID", &self.group)
            .env("HISTORY_PATH", self.history())
            .env("CHECKPOINTS", self.checkpoints());
        cmd
    }

    /// Checkpoint objects kept.
    pub(crate) fn checkpoint_count(&self) -> usize {
        files_under(&self.checkpoints(), ".ckpt")
    }

    /// The sum over partitions of their newest checkpoint epoch: grows with
    /// every checkpoint written (pruning keeps only the newest few).
    pub(crate) fn epochs(&self) -> u64 {
        fn newest(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            let mut own = 0;
            let mut below = 0;
            for path in entries.flatten().map(|e| e.path()) {
                if path.is_dir() {
                    below += newest(&path);
                } else if let Some(epoch) = path
                    .file_name()
                    .and_then(|n| n.to_str()?.strip_suffix(".ckpt")?.parse::<u64>().ok())
                {
                    own = own.max(epoch);
                }
            }
            own + below
        }
        newest(&self.checkpoints())
    }

    /// Every late row of every worker and run, as one file.
    pub(crate) fn late(&self) -> PathBuf {
        let side = self.dir.path().join("side");
        let mut text = String::new();
        for worker in std::fs::read_dir(&side).unwrap().flatten() {
            text.push_str(&std::fs::read_to_string(side_output(&worker.path(), "late")).unwrap());
        }
        let merged = self.dir.path().join("late-all.jsonl");
        std::fs::write(&merged, text).unwrap();
        merged
    }

    /// Checks the history against the oracle and reconciles every reading.
    pub(crate) async fn reconcile(&self, readings: usize) {
        let readings_file = self.dir.path().join("readings.jsonl");
        assert_eq!(dump_topic(&self.topic, &readings_file), readings);
        self.reconcile_with(&readings_file, readings).await;
    }

    /// Checks the history against the oracle over the valid readings in
    /// `readings_file` (JSON lines) and reconciles each of them.
    pub(crate) async fn reconcile_with(&self, readings_file: &Path, readings: usize) {
        let late = self.late();
        let ctx = session(readings_file, &late).await;
        let history = self.history().join("features");
        assert_eq!(
            files_under(&history, ".pending"),
            0,
            "no staged file is left visible or behind"
        );
        let out = SessionContext::new();
        out.register_parquet(
            "out",
            history.to_str().unwrap(),
            ParquetReadOptions::default().file_extension(".parquet"),
        )
        .await
        .unwrap();
        let duplicated = scalar(
            &out,
            "SELECT count(*) FROM (SELECT machine_id, window_start FROM out \
             GROUP BY machine_id, window_start HAVING count(*) > 1)",
        )
        .await;
        assert_eq!(duplicated, 0, "duplicated: windows written more than once");
        let late_dupes = scalar(
            &ctx,
            "SELECT count(*) FROM (SELECT machine_id, seq FROM late GROUP BY machine_id, seq \
             HAVING count(*) > 1)",
        )
        .await;
        assert_eq!(
            late_dupes, 0,
            "duplicated: readings in the late output twice"
        );
        let in_windows = scalar(&out, "SELECT CAST(sum(readings) AS BIGINT) FROM out").await;
        let late_rows = scalar(&ctx, "SELECT count(*) FROM late").await;
        assert_eq!(
            in_windows + late_rows,
            readings as i64,
            "lost or duplicated readings: {in_windows} in windows + {late_rows} late"
        );
        let oracle = query_rows(
            &ctx,
            "SELECT machine_id, to_timestamp_millis(CAST(ts AS BIGINT) - CAST(ts AS BIGINT) % 10000) AS ws,
                    count(*), avg(temperature), stddev(temperature), max(vibration), avg(rpm)
             FROM readings r
             WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.machine_id = r.machine_id AND l.seq = r.seq)
             GROUP BY machine_id, ws",
        )
        .await;
        let streamed = parquet_rows(
            &history,
            "machine_id, window_start, readings, temperature_avg, temperature_stddev, vibration_max, rpm_avg",
        )
        .await;
        assert_same(
            "recovered history (lost/unseen windows)",
            &streamed,
            &oracle,
        );
    }
}

async fn scalar(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let column =
        arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    column
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

/// Files under `dir` (recursively) whose names end with `suffix`.
pub(crate) fn files_under(dir: &Path, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path, suffix)
            } else {
                usize::from(path.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

/// Waits (polling, bounded) until `condition` holds.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
fn kill_after_checkpoints(deployment: &Deployment, more: u64) {
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

#[tokio::test(flavor = "multi_thread")]
async fn crashes_at_every_fault_point_and_kill_9_lose_and_duplicate_nothing() {
    const READINGS: usize = 400_000;
    let deployment = Deployment::new("recovery");
    deployment.simulate("400000", "1000", "4");

    crash_at(&deployment, "before-checkpoint", 3);
    crash_at(&deployment, "before-publish", 3);
    kill_after_checkpoints(&deployment, 4);
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
        resumed > 0 && resumed < READINGS as u64,
        "the kill must land mid-replay: the last run read {resumed}"
    );
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
