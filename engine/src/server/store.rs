//! Jobs persisted in the server's state directory, one JSON file per job
//! (`jobs/<id>.json`, written to a temporary file and renamed), so the
//! server resumes them after a restart. The SQL is kept as submitted, with
//! its `${VAR}` references: substituted values are never written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// What the user asked a job to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Run it (again after a server restart, or after it failed).
    Running,
    /// Stopped by the user; not resumed.
    Stopped,
    /// Ran to the end of its input (`until_idle`); not resumed.
    Finished,
}

/// A submitted job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Server-assigned id.
    pub id: String,
    /// Unique name (the `job` label of its metrics).
    pub name: String,
    /// The job's SQL as submitted.
    pub sql: String,
    /// Stop once every source is caught up and idle.
    #[serde(default)]
    pub until_idle: bool,
    /// Whether it should run.
    pub desired: Desired,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
}

/// The `jobs/` folder of a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating) `state_dir/jobs`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("jobs");
        std::fs::create_dir_all(&dir)
            .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        Ok(Self { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every stored job, oldest first.
    pub fn load(&self) -> Result<Vec<JobSpec>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(EngineError::io(format!("listing {}", self.dir.display())))?;
        let mut specs = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(EngineError::io(format!("listing {}", self.dir.display())))?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(EngineError::io(format!("reading {}", path.display())))?;
            let spec: JobSpec = serde_json::from_str(&text).map_err(|e| {
                EngineError::Internal(format!("{} is not a stored job: {e}", path.display()))
            })?;
            specs.push(spec);
        }
        specs.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(specs)
    }

    /// Writes `spec` (atomically: a reader sees the old or the new file).
    pub fn save(&self, spec: &JobSpec) -> Result<()> {
        let path = self.path(&spec.id);
        let temporary = self.dir.join(format!(".{}.json.tmp", spec.id));
        let text = serde_json::to_string_pretty(spec)
            .map_err(|e| EngineError::Internal(format!("encoding job {}: {e}", spec.id)))?;
        std::fs::write(&temporary, text)
            .map_err(EngineError::io(format!("writing {}", temporary.display())))?;
        std::fs::rename(&temporary, &path)
            .map_err(EngineError::io(format!("renaming to {}", path.display())))
    }

    /// Forgets job `id`.
    pub fn delete(&self, id: &str) -> Result<()> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(EngineError::io(format!("deleting {}", path.display()))(e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_jobs_load_back_in_submission_order_and_deleted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let spec = |id: &str, at: &str| JobSpec {
            id: id.into(),
            name: format!("job-{id}"),
            sql: "SELECT '${SECRET}'".into(),
            until_idle: false,
            desired: Desired::Running,
            created_at: at.into(),
        };
        store.save(&spec("b", "2026-01-02T00:00:00Z")).unwrap();
        store.save(&spec("a", "2026-01-03T00:00:00Z")).unwrap();
        store.save(&spec("c", "2026-01-01T00:00:00Z")).unwrap();
        store.delete("c").unwrap();
        store.delete("never").unwrap();
        let mut stopped = spec("b", "2026-01-02T00:00:00Z");
        stopped.desired = Desired::Stopped;
        store.save(&stopped).unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(
            reopened.load().unwrap(),
            vec![stopped, spec("a", "2026-01-03T00:00:00Z")]
        );
    }
}
