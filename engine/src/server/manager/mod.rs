//! The jobs a server hosts: submitted, built (parsed and planned, so a bad
//! job is refused before it is accepted), run as tokio tasks, stopped,
//! restarted, deleted, and persisted through [`Store`] so a restarted server
//! resumes them. No HTTP here; `jobs.rs` maps requests onto these calls.
//!
//! This file holds the operations the API calls; [`run`] starts a built job
//! as a task, records how its run ended and stops runs; [`view`] holds what
//! the API shows of a job.

mod run;
mod view;

pub use view::{JobState, JobView, Submission, Validated};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;

use super::error::ApiError;
use super::secrets::{Secrets, parse_job};
use super::store::{Desired, JobSpec, Store};
use crate::error::{EngineError, Result};
use crate::job::{Job, JobOptions};
use crate::metrics::Metrics;
use run::Entry;

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
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!("a job named {name:?} exists already"),
    )
}
