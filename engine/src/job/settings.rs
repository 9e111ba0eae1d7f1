//! Job-wide settings from `SET key = 'value'` statements.

use std::time::Duration;

use spindle_sql::{JobPlan, SqlError};

use crate::error::Result;

/// Settings a job can change with `SET`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// `spindle.window.allowed_lateness`: how long after its end a window
    /// still accepts rows (default 0).
    pub allowed_lateness: Duration,
    /// `spindle.watermark.idle_timeout`: silence after which a partition no
    /// longer holds the watermark back (default 10s; a source's
    /// `'watermark.idle-timeout'` overrides it).
    pub idle_timeout: Duration,
    /// `spindle.sink.flush_interval`: how often sinks roll due files (default
    /// 100ms: a Parquet file is durable at most this long after its
    /// `rolling.interval`; at 1s the p99 from window close to durable was
    /// 570 ms over the trigger, at 100ms 154 ms; see docs/BENCHMARKS.md).
    pub flush_interval: Duration,
    /// `spindle.source.commit_interval`: how often sinks make everything
    /// durable and sources commit the offsets of what is done (default 30s).
    pub commit_interval: Duration,
    /// `spindle.checkpoint.interval`: how often Kafka-fed state is
    /// checkpointed (default 30s; `0s` turns checkpoints off and offsets are
    /// committed every commit interval behind what no pipeline holds).
    pub checkpoint_interval: Duration,
    /// `spindle.checkpoint.path`: where checkpoints go, a local path or an
    /// `s3://` URL (default: `checkpoints/` in the job's state directory;
    /// workers of one job must share it).
    pub checkpoint_path: Option<String>,
    /// `spindle.checkpoint.keep`: complete checkpoints kept per partition
    /// (default 3).
    pub checkpoint_keep: usize,
    /// `spindle.checkpoint.on_change`: what a restore does with the state of
    /// a pipeline whose SQL changed since the checkpoint (default `fail`).
    pub on_change: super::upgrade::OnChange,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            allowed_lateness: Duration::ZERO,
            idle_timeout: super::DEFAULT_IDLE_TIMEOUT,
            flush_interval: Duration::from_millis(100),
            commit_interval: Duration::from_secs(30),
            checkpoint_interval: Duration::from_secs(30),
            checkpoint_path: None,
            checkpoint_keep: 3,
            on_change: super::upgrade::OnChange::Fail,
        }
    }
}

/// Every setting, for messages.
pub(crate) const SETTINGS: [&str; 8] = [
    "spindle.window.allowed_lateness",
    "spindle.watermark.idle_timeout",
    "spindle.sink.flush_interval",
    "spindle.source.commit_interval",
    "spindle.checkpoint.interval",
    "spindle.checkpoint.path",
    "spindle.checkpoint.keep",
    "spindle.checkpoint.on_change",
];

impl JobSettings {
    /// Reads the plan's `SET` statements.
    pub fn from_plan(plan: &JobPlan) -> Result<Self> {
        let mut settings = Self::default();
        for (key, value, location) in &plan.settings {
            let duration = || {
                humantime::parse_duration(value).map_err(|e| SqlError::Plan {
                    message: format!("SET {key}: {value:?} is not a duration: {e}"),
                    location: *location,
                })
            };
            match key.as_str() {
                "spindle.window.allowed_lateness" => settings.allowed_lateness = duration()?,
                "spindle.watermark.idle_timeout" => settings.idle_timeout = duration()?,
                "spindle.sink.flush_interval" => settings.flush_interval = duration()?,
                "spindle.source.commit_interval" => settings.commit_interval = duration()?,
                "spindle.checkpoint.interval" => settings.checkpoint_interval = duration()?,
                "spindle.checkpoint.path" => settings.checkpoint_path = Some(value.clone()),
                "spindle.checkpoint.keep" => {
                    settings.checkpoint_keep = value.parse().map_err(|e| SqlError::Plan {
                        message: format!("SET {key}: {value:?} is not a count: {e}"),
                        location: *location,
                    })?;
                }
                "spindle.checkpoint.on_change" => {
                    settings.on_change =
                        super::upgrade::OnChange::parse(value).map_err(|message| {
                            SqlError::Plan {
                                message: format!("SET {key}: {message}"),
                                location: *location,
                            }
                        })?;
                }
                other => {
                    return Err(SqlError::Plan {
                        message: format!(
                            "unknown setting `{other}`; known: {}",
                            SETTINGS.join(", ")
                        ),
                        location: *location,
                    }
                    .into());
                }
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    /// Every setting has its row in docs/sql.md's statement table.
    #[test]
    fn every_setting_is_documented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/sql.md");
        let docs = std::fs::read_to_string(path).unwrap();
        for key in super::SETTINGS {
            assert!(
                docs.contains(&format!("`SET {key} = ")),
                "{key} is missing from docs/sql.md"
            );
        }
    }
}
