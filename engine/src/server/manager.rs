//! The jobs a server hosts: submitted, built (parsed and planned, so a bad
//! job is refused before it is accepted), run as tokio tasks, stopped,
//! restarted, deleted, and persisted through [`Store`] so a restarted server
//! resumes them. No HTTP here; `jobs.rs` maps requests onto these calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use serde::Serialize;
use tokio::task::JoinHandle;

use super::error::ApiError;
use super::secrets::{Secrets, parse_job};
use super::store::{Desired, JobSpec, Store};
use crate::error::{EngineError, Result};
use crate::job::runner::{RunOptions, RunSummary, run};
use crate::job::{Job, JobOptions};
use crate::metrics::{JobCounters, JobMetrics, Metrics};

/// How long a stop waits for the run loop to close its sinks.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Its run loop is running.
    Running,
    /// Asked to stop; closing its sinks.
    Stopping,
    /// Not running (stopped by the user, or not resumed).
    Stopped,
    /// Ran to the end of its input (`until_idle`).
    Finished,
    /// Its run (or its build, on resume or restart) failed; see `last_error`.
    Failed,
}

/// A submitted job.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The job's SQL (with `${VAR}`s, substituted from the server's environment).
    pub sql: String,
    /// A unique name (default `job-<id>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Stop once every source is caught up and idle.
    #[serde(default)]
    pub until_idle: bool,
}

/// What the API shows of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Server-assigned id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Where it is.
    pub state: JobState,
    /// What the user asked for.
    pub desired: Desired,
    /// Stops once its input is exhausted.
    pub until_idle: bool,
    /// When it was submitted.
    pub created_at: String,
    /// When its current (or last) run started.
    pub started_at: Option<String>,
    /// When its last run ended.
    pub ended_at: Option<String>,
    /// Why its last run or build failed (secrets masked).
    pub last_error: Option<String>,
    /// Counters over every run of the job since the server started.
    pub counters: JobCounters,
    /// Source tables.
    pub sources: Vec<String>,
    /// Sink tables.
    pub sinks: Vec<String>,
    /// The SQL as submitted (single-job views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// What validating a job found.
#[derive(Debug, Clone, Serialize)]
pub struct Validated {
    /// Source tables.
    pub sources: Vec<String>,
    /// Sink tables.
    pub sinks: Vec<String>,
    /// Pipelines (`INSERT INTO … SELECT`s).
    pub pipelines: usize,
}

struct Entry {
    spec: JobSpec,
    state: JobState,
    last_error: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
    sources: Vec<String>,
    sinks: Vec<String>,
    metrics: JobMetrics,
    /// Which start this is; a run that ends after a newer start changes nothing.
    generation: u64,
    run: Option<Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Entry {
    fn view(&self, with_sql: bool) -> JobView {
        JobView {
            id: self.spec.id.clone(),
            name: self.spec.name.clone(),
            state: self.state,
            desired: self.spec.desired,
            until_idle: self.spec.until_idle,
            created_at: self.spec.created_at.clone(),
            started_at: self.started_at.clone(),
            ended_at: self.ended_at.clone(),
            last_error: self.last_error.clone(),
            counters: self.metrics.counters(),
            sources: self.sources.clone(),
            sinks: self.sinks.clone(),
            sql: with_sql.then(|| self.spec.sql.clone()),
        }
    }
}

/// Every job of a server.
pub struct JobManager {
    store: Store,
    metrics: Arc<Metrics>,
    side_outputs: PathBuf,
    env: fn(&str) -> Option<String>,
    jobs: Mutex<BTreeMap<String, Entry>>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager")
            .field("side_outputs", &self.side_outputs)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new id: 16 hex digits, unique across restarts (the clock) and within
/// one (a counter), scrambled so ids do not look sequential.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

/// Names become metric labels and appear in logs: keep them plain.
fn check_name(name: &str) -> Result<(), ApiError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(plain) {
        return Err(ApiError::bad_request(format!(
            "job name {name:?}: use 1 to 64 letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(())
}

impl JobManager {
    /// A manager persisting into `state_dir`, recording into `metrics`,
    /// substituting `${VAR}`s from `env`.
    pub fn new(
        state_dir: &std::path::Path,
        metrics: Arc<Metrics>,
        env: fn(&str) -> Option<String>,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            store: Store::open(state_dir)?,
            metrics,
            side_outputs: state_dir.join("side-outputs"),
            env,
            jobs: Mutex::default(),
        }))
    }

    fn jobs(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn internal(error: &EngineError) -> ApiError {
        ApiError::from_engine(error, str::to_string)
    }

    /// Parses and plans `sql` as job `name` would be, with secrets masked
    /// in any error.
    async fn build(&self, sql: &str, name: &str, id: &str) -> Result<(Job, Secrets), ApiError> {
        let (parsed, secrets) = parse_job(sql, self.env);
        let mask = |text: &str| secrets.mask(text);
        let parsed = parsed.map_err(|e| ApiError::from_engine(&EngineError::from(e), mask))?;
        let options = JobOptions {
            name: name.to_string(),
            side_outputs: self.side_outputs.join(id),
        };
        let job = Job::from_parsed(parsed, &options)
            .await
            .map_err(|e| ApiError::from_engine(&e, mask))?;
        Ok((job, secrets))
    }

    /// Checks a job without accepting it.
    pub async fn validate(&self, sql: &str) -> Result<Validated, ApiError> {
        let (job, _) = self.build(sql, "validate", "validate").await?;
        Ok(Validated {
            sources: job.sources.iter().map(|s| s.name.clone()).collect(),
            sinks: job.sinks.iter().map(|(name, _)| name.clone()).collect(),
            pipelines: job.pipelines.len(),
        })
    }

    /// Accepts, persists and starts a job.
    pub async fn submit(self: &Arc<Self>, submission: Submission) -> Result<JobView, ApiError> {
        let id = new_id();
        let name = submission.name.unwrap_or_else(|| format!("job-{id}"));
        check_name(&name)?;
        self.check_unique(&name)?;
        let (job, secrets) = self.build(&submission.sql, &name, &id).await?;
        let spec = JobSpec {
            id: id.clone(),
            name,
            sql: submission.sql,
            until_idle: submission.until_idle,
            desired: Desired::Running,
            created_at: now(),
        };
        let mut jobs = self.jobs();
        if jobs.values().any(|e| e.spec.name == spec.name) {
            return Err(taken(&spec.name));
        }
        self.store.save(&spec).map_err(|e| Self::internal(&e))?;
        let metrics = self.metrics.job(&spec.name);
        jobs.insert(id.clone(), self.entry(spec, metrics));
        let view = self.start(&mut jobs, &id, job, secrets);
        tracing::info!(job = %view.name, id = %view.id, "job submitted");
        Ok(view)
    }

    fn check_unique(&self, name: &str) -> Result<(), ApiError> {
        if self.jobs().values().any(|e| e.spec.name == name) {
            return Err(taken(name));
        }
        Ok(())
    }

    fn entry(&self, spec: JobSpec, metrics: JobMetrics) -> Entry {
        let state = match spec.desired {
            Desired::Finished => JobState::Finished,
            _ => JobState::Stopped,
        };
        Entry {
            spec,
            state,
            last_error: None,
            started_at: None,
            ended_at: None,
            sources: Vec::new(),
            sinks: Vec::new(),
            metrics,
            generation: 0,
            run: None,
        }
    }

    /// Starts a built job in entry `id` (which the caller holds locked).
    fn start(
        self: &Arc<Self>,
        jobs: &mut BTreeMap<String, Entry>,
        id: &str,
        job: Job,
        secrets: Secrets,
    ) -> JobView {
        let Some(entry) = jobs.get_mut(id) else {
            return Self::missing_view(id);
        };
        entry.generation += 1;
        entry.state = JobState::Running;
        entry.last_error = None;
        entry.started_at = Some(now());
        entry.ended_at = None;
        entry.sources = job.sources.iter().map(|s| s.name.clone()).collect();
        entry.sinks = job.sinks.iter().map(|(name, _)| name.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let options = RunOptions {
            until_idle: entry.spec.until_idle,
            metrics: entry.metrics.clone(),
        };
        let manager = Arc::clone(self);
        let (id_owned, generation, flag) = (id.to_string(), entry.generation, Arc::clone(&stop));
        let task = tokio::spawn(async move {
            let result = run(job, options, Arc::clone(&flag)).await;
            manager.ended(&id_owned, generation, &flag, result, &secrets);
        });
        entry.run = Some(Running { stop, task });
        entry.view(false)
    }

    fn missing_view(id: &str) -> JobView {
        JobView {
            id: id.to_string(),
            name: String::new(),
            state: JobState::Failed,
            desired: Desired::Stopped,
            until_idle: false,
            created_at: String::new(),
            started_at: None,
            ended_at: None,
            last_error: Some("job vanished while starting".into()),
            counters: JobCounters::default(),
            sources: Vec::new(),
            sinks: Vec::new(),
            sql: None,
        }
    }

    /// A run ended: record how, unless a newer run has started since.
    fn ended(
        &self,
        id: &str,
        generation: u64,
        stop: &AtomicBool,
        result: Result<RunSummary>,
        secrets: &Secrets,
    ) {
        let mut jobs = self.jobs();
        let Some(entry) = jobs.get_mut(id) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        entry.run = None;
        entry.ended_at = Some(now());
        let name = entry.spec.name.clone();
        match result {
            Err(error) => {
                let message = secrets.mask(&error.to_string());
                tracing::warn!(job = %name, id, error = %message, "job failed");
                entry.state = JobState::Failed;
                entry.last_error = Some(message);
            }
            Ok(_) if stop.load(Ordering::Relaxed) => entry.state = JobState::Stopped,
            Ok(summary) => {
                tracing::info!(job = %name, id, rows_out = summary.rows_out, "job finished");
                entry.state = JobState::Finished;
                entry.spec.desired = Desired::Finished;
                if let Err(e) = self.store.save(&entry.spec) {
                    tracing::warn!(job = %name, id, error = %e, "saving job state");
                }
            }
        }
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<JobView> {
        let jobs = self.jobs();
        let mut views: Vec<JobView> = jobs.values().map(|e| e.view(false)).collect();
        views.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        views
    }

    /// One job, with its SQL.
    pub fn get(&self, id: &str) -> Result<JobView, ApiError> {
        self.jobs()
            .get(id)
            .map(|e| e.view(true))
            .ok_or_else(|| ApiError::no_job(id))
    }

    /// Signals job `id`'s run to stop; returns its task, if it was running.
    fn signal_stop(
        &self,
        id: &str,
        desired: Option<Desired>,
    ) -> Result<Option<JoinHandle<()>>, ApiError> {
        let mut jobs = self.jobs();
        let entry = jobs.get_mut(id).ok_or_else(|| ApiError::no_job(id))?;
        if let Some(desired) = desired
            && entry.spec.desired == Desired::Running
        {
            entry.spec.desired = desired;
            self.store
                .save(&entry.spec)
                .map_err(|e| Self::internal(&e))?;
        }
        Ok(entry.run.take().map(|running| {
            running.stop.store(true, Ordering::Relaxed);
            entry.state = JobState::Stopping;
            running.task
        }))
    }

    /// Waits for a stopped run to close its sinks.
    async fn wait(task: Option<JoinHandle<()>>, id: &str) -> Result<(), ApiError> {
        let Some(task) = task else { return Ok(()) };
        match tokio::time::timeout(STOP_TIMEOUT, task).await {
            Ok(_) => Ok(()),
            Err(_) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "job {id} did not stop within {}s; it is still stopping",
                    STOP_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Stops job `id` (it stays stopped across server restarts).
    pub async fn stop(&self, id: &str) -> Result<JobView, ApiError> {
        let task = self.signal_stop(id, Some(Desired::Stopped))?;
        Self::wait(task, id).await?;
        self.get(id)
    }

    /// Stops job `id` if it runs, builds it afresh and starts it.
    pub async fn restart(self: &Arc<Self>, id: &str) -> Result<JobView, ApiError> {
        let task = self.signal_stop(id, None)?;
        Self::wait(task, id).await?;
        let (sql, name) = {
            let jobs = self.jobs();
            let entry = jobs.get(id).ok_or_else(|| ApiError::no_job(id))?;
            (entry.spec.sql.clone(), entry.spec.name.clone())
        };
        let built = self.build(&sql, &name, id).await;
        let mut jobs = self.jobs();
        let entry = jobs.get_mut(id).ok_or_else(|| ApiError::no_job(id))?;
        entry.spec.desired = Desired::Running;
        self.store
            .save(&entry.spec)
            .map_err(|e| Self::internal(&e))?;
        match built {
            Ok((job, secrets)) => Ok(self.start(&mut jobs, id, job, secrets)),
            Err(error) => {
                entry.state = JobState::Failed;
                entry.last_error = Some(error.message.clone());
                Err(error)
            }
        }
    }

    /// Stops and forgets job `id`, its stored spec and its metric series.
    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        let task = self.signal_stop(id, None)?;
        Self::wait(task, id).await?;
        let entry = self.jobs().remove(id);
        if let Some(entry) = entry {
            self.store.delete(id).map_err(|e| Self::internal(&e))?;
            entry.metrics.remove();
            tracing::info!(job = %entry.spec.name, id, "job deleted");
        }
        Ok(())
    }

    /// Loads the stored jobs and starts those that should run.
    pub async fn resume(self: &Arc<Self>) -> Result<()> {
        for spec in self.store.load()? {
            let id = spec.id.clone();
            let run = spec.desired == Desired::Running;
            let (sql, name) = (spec.sql.clone(), spec.name.clone());
            let metrics = self.metrics.job(&spec.name);
            self.jobs().insert(id.clone(), self.entry(spec, metrics));
            if !run {
                continue;
            }
            let built = self.build(&sql, &name, &id).await;
            let mut jobs = self.jobs();
            match built {
                Ok((job, secrets)) => {
                    self.start(&mut jobs, &id, job, secrets);
                    tracing::info!(job = %name, id, "job resumed");
                }
                Err(error) => {
                    tracing::warn!(job = %name, id, error = %error.message, "job not resumed");
                    if let Some(entry) = jobs.get_mut(&id) {
                        entry.state = JobState::Failed;
                        entry.last_error = Some(error.message);
                    }
                }
            }
        }
        Ok(())
    }

    /// Stops every running job without changing what is stored, so the
    /// next server resumes them.
    pub async fn shutdown(&self) {
        let tasks: Vec<(String, JoinHandle<()>)> = {
            let mut jobs = self.jobs();
            jobs.iter_mut()
                .filter_map(|(id, entry)| {
                    let running = entry.run.take()?;
                    running.stop.store(true, Ordering::Relaxed);
                    entry.state = JobState::Stopping;
                    Some((id.clone(), running.task))
                })
                .collect()
        };
        for (id, task) in tasks {
            if let Err(e) = Self::wait(Some(task), &id).await {
                tracing::warn!(id, error = %e.message, "job did not stop");
            }
        }
    }
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!("a job named {name:?} exists already"),
    )
}
