//! Running a built job: its entry's run state, the tokio task around the
//! run loop, how a run's end is recorded, and stopping runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::task::JoinHandle;

use super::{JobManager, JobState, JobView, now};
use crate::error::Result;
use crate::job::Job;
use crate::job::runner::{RunOptions, RunSummary, run};
use crate::metrics::{JobCounters, JobMetrics};
use crate::server::error::ApiError;
use crate::server::secrets::Secrets;
use crate::server::store::{Desired, JobSpec};

/// How long a stop waits for the run loop to close its sinks.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A job as the manager holds it.
pub(super) struct Entry {
    pub(super) spec: JobSpec,
    pub(super) state: JobState,
    pub(super) last_error: Option<String>,
    pub(super) started_at: Option<String>,
    pub(super) ended_at: Option<String>,
    pub(super) sources: Vec<String>,
    pub(super) sinks: Vec<String>,
    pub(super) metrics: JobMetrics,
    /// Which start this is; a run that ends after a newer start changes nothing.
    pub(super) generation: u64,
    pub(super) run: Option<Running>,
}

/// A run in progress: its stop flag and task.
pub(super) struct Running {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Entry {
    pub(super) fn view(&self, with_sql: bool) -> JobView {
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
            partitions: self.metrics.partitions(),
            sinks: self.sinks.clone(),
            sql: with_sql.then(|| self.spec.sql.clone()),
        }
    }
}

impl JobManager {
    pub(super) fn entry(&self, spec: JobSpec, metrics: JobMetrics) -> Entry {
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
    pub(super) fn start(
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
            partitions: Vec::new(),
            sinks: Vec::new(),
            sql: None,
        }
    }

    /// A run ended: record how, unless a newer run has started since.
    pub(super) fn ended(
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

    /// Signals job `id`'s run to stop; returns its task, if it was running.
    pub(super) fn signal_stop(
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
    pub(super) async fn wait(task: Option<JoinHandle<()>>, id: &str) -> Result<(), ApiError> {
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
