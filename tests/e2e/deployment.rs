//! One deployment of a checkpointed Kafka job for the fault tests (crash
//! recovery, scale-out, broker restart, S3): its topic, group, job file,
//! broker, and where its history and checkpoints live (local folders, or a
//! bucket on the S3 test server); and the exact reconciliation every fault
//! test ends with. Every reading `(machine_id, seq)` must end in exactly one
//! window of the history or in the late output; the history must equal the
//! batch oracle over the same readings. Failures are named the way Jepsen
//! does: lost (a reading in no output), duplicated (in two), unseen (a
//! window the oracle lacks).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use spindle_tests::s3::{list_keys, with_standard_aws_env};
use spindle_tests::services::{kafka, repo_root, unique};
use spindle_tests::spindle::{command, side_output, stderr};

use crate::engine_oracle::dump_topic_from;
use crate::oracle::{assert_same, query_rows, session};

/// Where a deployment keeps its history and checkpoints.
#[derive(Debug, Clone)]
enum Storage {
    /// Folders in the deployment's temporary directory.
    Local,
    /// A bucket on the S3 test server at `endpoint`, which the job reaches
    /// through the standard AWS environment only.
    S3 { endpoint: String, bucket: String },
}

/// One deployment of a checkpointed job: its topic, group and folders.
pub(crate) struct Deployment {
    pub dir: tempfile::TempDir,
    pub topic: String,
    pub group: String,
    brokers: String,
    job: PathBuf,
    storage: Storage,
}

impl Deployment {
    /// The recovery job (`tests/e2e/jobs/recovery.sql`) on the shared broker,
    /// history and checkpoints in local folders.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            topic: unique(name),
            group: unique(&format!("{name}-group")),
            brokers: kafka().to_string(),
            job: repo_root().join("tests/e2e/jobs/recovery.sql"),
            storage: Storage::Local,
        }
    }

    /// Reads (and fills) the topic on the broker at `brokers` instead.
    pub(crate) fn with_brokers(mut self, brokers: &str) -> Self {
        self.brokers = brokers.to_string();
        self
    }

    /// The shipped features job (`jobs/factory_features.sql`, settings from
    /// the environment) checkpointed every half second, keeping `keep`
    /// checkpoints per partition.
    pub(crate) fn with_features_job(mut self, keep: usize) -> Self {
        let shipped = std::fs::read_to_string(repo_root().join("jobs/factory_features.sql"))
            .expect("reading jobs/factory_features.sql");
        let job = self.dir.path().join("features.sql");
        let settings = format!(
            "SET spindle.checkpoint.interval = '500ms';\n\
             SET spindle.checkpoint.path = '${{CHECKPOINTS}}';\n\
             SET spindle.checkpoint.keep = '{keep}';\n"
        );
        std::fs::write(&job, settings + &shipped).unwrap();
        self.job = job;
        self
    }

    /// Runs `text` from now on, as a job of the same name (so it finds the
    /// checkpoints of the runs before: an edited job).
    pub(crate) fn edit_job(&mut self, text: &str) {
        let job = self
            .dir
            .path()
            .join("edited")
            .join(self.job.file_name().unwrap());
        std::fs::create_dir_all(job.parent().unwrap()).unwrap();
        std::fs::write(&job, text).unwrap();
        self.job = job;
    }

    /// History under `s3://BUCKET/history` and checkpoints under
    /// `s3://BUCKET/checkpoints` on the S3 server at `endpoint`.
    pub(crate) fn on_s3(mut self, endpoint: &str, bucket: &str) -> Self {
        self.storage = Storage::S3 {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
        };
        self
    }

    /// The job's name (its file's stem): the first level of the checkpoint
    /// layout.
    pub(crate) fn job_name(&self) -> String {
        self.job.file_stem().unwrap().to_string_lossy().into_owned()
    }

    /// Fills the topic: `count` readings of `machines` machines over
    /// `partitions` partitions, 2 % of them late by up to 20 s.
    pub(crate) fn simulate(&self, count: &str, machines: &str, partitions: &str) {
        self.simulate_late(count, machines, partitions, "0.02");
    }

    /// The same with a given fraction of late readings.
    pub(crate) fn simulate_late(&self, count: &str, machines: &str, partitions: &str, late: &str) {
        self.simulate_with(count, machines, partitions, late, &[]);
    }

    /// The same with more `spindle simulate` arguments (a profile, a start).
    pub(crate) fn simulate_with(
        &self,
        count: &str,
        machines: &str,
        partitions: &str,
        late: &str,
        more: &[&str],
    ) {
        let output = command([
            "simulate",
            "--brokers",
            &self.brokers,
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
        .args(more)
        .output()
        .unwrap();
        assert!(output.status.success(), "simulate: {}", stderr(&output));
    }

    /// The local history folder (local storage only).
    pub(crate) fn history(&self) -> PathBuf {
        self.dir.path().join("history")
    }

    fn history_root(&self) -> String {
        match &self.storage {
            Storage::Local => self.history().display().to_string(),
            Storage::S3 { bucket, .. } => format!("s3://{bucket}/history"),
        }
    }

    /// Where the checkpoints go (`spindle.checkpoint.path`).
    pub(crate) fn checkpoints_root(&self) -> String {
        match &self.storage {
            Storage::Local => self.dir.path().join("checkpoints").display().to_string(),
            Storage::S3 { bucket, .. } => format!("s3://{bucket}/checkpoints"),
        }
    }

    /// `spindle run --until-idle` of the job; `worker` names its side
    /// outputs.
    pub(crate) fn command(&self, worker: &str) -> std::process::Command {
        let mut cmd = self.worker(worker);
        cmd.arg("--until-idle");
        cmd
    }

    /// `spindle run` of the job until it is interrupted.
    pub(crate) fn worker(&self, worker: &str) -> std::process::Command {
        let mut cmd = command(["run", self.job.to_str().unwrap()]);
        cmd.arg("--side-outputs")
            .arg(self.dir.path().join("side").join(worker))
            .env("SENSOR_TOPIC", &self.topic)
            .env("KAFKA_BROKERS", &self.brokers)
            .env("GROUP_ID", &self.group)
            .env("HISTORY_PATH", self.history_root())
            .env("CHECKPOINTS", self.checkpoints_root());
        if let Storage::S3 { endpoint, .. } = &self.storage {
            with_standard_aws_env(&mut cmd, endpoint);
        }
        cmd
    }

    /// `spindle query --history ROOT --format csv SQL` over the job's
    /// history, with the same environment as the job.
    pub(crate) fn query(&self, sql: &str) -> String {
        let root = self.history_root();
        let mut query = command(["query", "--history", &root, "--format", "csv", sql]);
        if let Storage::S3 { endpoint, .. } = &self.storage {
            with_standard_aws_env(&mut query, endpoint);
        }
        let output = query.output().unwrap();
        assert!(output.status.success(), "query {root}: {}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Every object (file) under `root` (`history` or `checkpoints`), as
    /// paths relative to it.
    fn objects(&self, root: &str) -> Vec<String> {
        match &self.storage {
            Storage::Local => {
                let base = self.dir.path().join(root);
                let mut found = Vec::new();
                walk(&base, &mut found);
                found
                    .iter()
                    .filter_map(|p| Some(p.strip_prefix(&base).ok()?.display().to_string()))
                    .collect()
            }
            Storage::S3 { endpoint, bucket } => list_keys(endpoint, bucket, &format!("{root}/"))
                .into_iter()
                .map(|key| key[root.len() + 1..].to_string())
                .collect(),
        }
    }

    /// Checkpoint objects kept, relative to the checkpoint root
    /// (`JOB/TABLE/TOPIC@GROUP/pN/EPOCH.ckpt`).
    pub(crate) fn checkpoint_objects(&self) -> Vec<String> {
        let mut objects: Vec<String> = self
            .objects("checkpoints")
            .into_iter()
            .filter(|o| o.ends_with(".ckpt"))
            .collect();
        objects.sort();
        objects
    }

    /// Checkpoint objects kept.
    pub(crate) fn checkpoint_count(&self) -> usize {
        self.checkpoint_objects().len()
    }

    /// The sum over partitions of their newest checkpoint epoch: grows with
    /// every checkpoint written (pruning keeps only the newest few).
    pub(crate) fn epochs(&self) -> u64 {
        let mut newest = std::collections::BTreeMap::<String, u64>::new();
        for object in self.checkpoint_objects() {
            let (dir, name) = object.rsplit_once('/').unwrap_or(("", &object));
            if let Some(epoch) = name.strip_suffix(".ckpt").and_then(|e| e.parse().ok()) {
                let entry = newest.entry(dir.to_string()).or_default();
                *entry = (*entry).max(epoch);
            }
        }
        newest.values().sum()
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

    /// The readings of the topic, as a JSON lines file for the oracle, and
    /// how many there are.
    pub(crate) fn readings(&self) -> (PathBuf, usize) {
        let readings_file = self.dir.path().join("readings.jsonl");
        let count = dump_topic_from(&self.brokers, &self.topic, &readings_file);
        (readings_file, count)
    }

    /// Checks the history against the oracle and reconciles every reading.
    pub(crate) async fn reconcile(&self, readings: usize) {
        let (readings_file, count) = self.readings();
        assert_eq!(count, readings);
        self.reconcile_with(&readings_file, readings).await;
    }

    /// Checks the history against the oracle over the valid readings in
    /// `readings_file` (JSON lines) and reconciles each of them.
    pub(crate) async fn reconcile_with(&self, readings_file: &Path, readings: usize) {
        let late = self.late();
        let ctx = session(readings_file, &late).await;
        let pending = self
            .objects("history")
            .iter()
            .filter(|o| o.starts_with("features/") && o.ends_with(".pending"))
            .count();
        assert_eq!(pending, 0, "no staged file is left visible or behind");
        let out = self.history_session().await;
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
        let streamed = query_rows(
            &out,
            "SELECT machine_id, window_start, readings, temperature_avg, temperature_stddev, \
             vibration_max, rpm_avg FROM out",
        )
        .await;
        assert_same(
            "recovered history (lost/unseen windows)",
            &streamed,
            &oracle,
        );
    }

    /// A session whose table `out` is the history's `features` (read
    /// directly, not through `spindle`).
    async fn history_session(&self) -> SessionContext {
        let out = SessionContext::new();
        let location = match &self.storage {
            Storage::Local => self.history().join("features").display().to_string(),
            Storage::S3 { endpoint, bucket } => {
                let url = ObjectStoreUrl::parse(format!("s3://{bucket}")).unwrap();
                let store = crate::parquet_s3::bucket_store(endpoint, bucket);
                out.register_object_store(url.as_ref(), Arc::new(store));
                format!("s3://{bucket}/history/features/")
            }
        };
        out.register_parquet(
            "out",
            &location,
            ParquetReadOptions::default().file_extension(".parquet"),
        )
        .await
        .unwrap();
        out
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
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

/// A `spindle` process in the background whose log goes to a file.
pub(crate) struct Running {
    pub child: Child,
    pub log_path: PathBuf,
}

impl Running {
    /// Starts `command` with `SPINDLE_LOG=info`, its stderr into `log`.
    pub(crate) fn start(mut command: Command, log: PathBuf) -> Self {
        let child = command
            .env("SPINDLE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            log_path: log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (`STOP`, `CONT`, `INT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "the job did not exit within {timeout:?}; its log:\n{}",
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (polling, bounded) until `condition` holds; a timeout shows
    /// the job's log.
    /// Waits (polling, bounded) until `condition` holds of the job's log
    /// so far; a timeout shows the log.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&str) -> bool,
    ) {
        let started = Instant::now();
        while !condition(&self.log()) {
            if started.elapsed() > timeout {
                let state = if self.running() { "running" } else { "exited" };
                panic!(
                    "timed out waiting for {what}; the job ({state}) logged:\n{}",
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave a stopped process behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last 40 lines of a log.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Files under `dir` (recursively) whose names end with `suffix`.
pub(crate) fn files_under(dir: &Path, suffix: &str) -> usize {
    let mut found = Vec::new();
    walk(dir, &mut found);
    found
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .count()
}

/// Waits (polling, bounded) until `condition` holds.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
