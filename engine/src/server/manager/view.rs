//! What the API shows of jobs, and what it takes to submit one.

use serde::Serialize;

use crate::metrics::JobCounters;
use crate::server::store::Desired;

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
    /// Each source partition's next offset, end and lag (Kafka sources).
    pub partitions: Vec<crate::metrics::PartitionStatus>,
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
