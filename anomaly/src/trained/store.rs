//! A model directory: `<dir>/<name>.json` per model, loaded on first use and
//! re-read when the file changes. A lookup stats the file at most once per
//! reload interval (default 5 s), so a running job picks up a retrained
//! model within that time, without a restart. A new version that cannot be
//! read, or has other features than the one in use, is refused with a
//! warning and the old version keeps scoring.
//!
//! The directory: `spindle --models DIR …` (process-wide, for every job of
//! the process), else `SPINDLE_MODELS`, else `./models`. The reload interval:
//! `SPINDLE_MODELS_RELOAD` (seconds, default 5).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::model::{LoadedModel, ModelFile};
use crate::{AnomalyError, Result};

/// How often a model file is checked for a new version.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();

/// Sets the process's model directory (the CLI's `--models`); false if it
/// was already set.
pub fn set_default_directory(dir: PathBuf) -> bool {
    DIRECTORY.set(dir).is_ok()
}

/// `--models`, else `SPINDLE_MODELS`, else `models`.
pub fn default_directory() -> PathBuf {
    DIRECTORY.get().cloned().unwrap_or_else(|| {
        std::env::var_os("SPINDLE_MODELS").map_or_else(|| PathBuf::from("models"), PathBuf::from)
    })
}

#[derive(Debug)]
struct Entry {
    model: Arc<LoadedModel>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// Loaded models of one directory.
#[derive(Debug)]
pub struct ModelStore {
    dir: PathBuf,
    reload_every: Duration,
    cache: Mutex<HashMap<String, Entry>>,
}

impl ModelStore {
    /// Models under `dir`, checked for new versions every
    /// `SPINDLE_MODELS_RELOAD` seconds (default 5).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let reload_every = std::env::var("SPINDLE_MODELS_RELOAD")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(DEFAULT_RELOAD_INTERVAL, Duration::from_secs_f64);
        Self {
            dir: dir.into(),
            reload_every,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks files for new versions at most this often.
    pub fn with_reload_interval(mut self, every: Duration) -> Self {
        self.reload_every = every;
        self
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The file of model `name`; a name is letters, digits, `_`, `-`, `.`.
    pub fn path_of(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(AnomalyError::Model {
                name: name.into(),
                message: "a model name is letters, digits, '_', '-' and '.'".into(),
            });
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// The models in the directory.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// Model `name`, re-read if its file changed since the last check.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedModel>> {
        let path = self.path_of(name)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = cache.get(name)
            && entry.checked.elapsed() < self.reload_every
        {
            return Ok(Arc::clone(&entry.model));
        }
        let stamp = stamp(&path);
        if let Some(entry) = cache.get_mut(name) {
            entry.checked = Instant::now();
            if stamp.is_none() || stamp == entry.stamp {
                return Ok(Arc::clone(&entry.model));
            }
            match self.reload(name, &path, &entry.model) {
                Ok(model) => {
                    entry.model = model;
                    entry.stamp = stamp;
                }
                Err(e) => {
                    // Don't retry the same file every lookup.
                    entry.stamp = stamp;
                    tracing::warn!(
                        "{e}; still scoring with version {}",
                        entry.model.file.version
                    );
                }
            }
            return Ok(Arc::clone(&entry.model));
        }
        if stamp.is_none() {
            let known = self.names();
            return Err(AnomalyError::Model {
                name: name.into(),
                message: format!(
                    "no file {} (models there: {})",
                    path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        let model = Arc::new(load(name, &path)?);
        cache.insert(
            name.into(),
            Entry {
                model: Arc::clone(&model),
                stamp,
                checked: Instant::now(),
            },
        );
        Ok(model)
    }

    fn reload(&self, name: &str, path: &Path, old: &LoadedModel) -> Result<Arc<LoadedModel>> {
        let new = load(name, path)?;
        if new.file.features != old.file.features {
            return Err(AnomalyError::Model {
                name: name.into(),
                message: format!(
                    "version {} has features ({}), the running version ({}): refused",
                    new.file.version,
                    new.file.features.join(", "),
                    old.file.features.join(", ")
                ),
            });
        }
        tracing::info!(
            "model {name}: version {} replaces version {}",
            new.file.version,
            old.file.version
        );
        Ok(Arc::new(new))
    }
}

fn load(name: &str, path: &Path) -> Result<LoadedModel> {
    let model = ModelFile::load(path)?;
    if model.file.name != name {
        return Err(AnomalyError::ModelFile {
            path: path.display().to_string(),
            message: format!("holds model {:?}, not {name:?}", model.file.name),
        });
    }
    Ok(model)
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
