//! `POST /api/predict` (score one JSON reading with a named model) and
//! `GET /api/models` (the models it knows).
//!
//! A model that can score a single reading implements [`ReadingModel`].
//! [`ModelRegistry`] finds one by name: first the built-in models, then
//! model files `<models>/<name>.json` (the directory `spindle --models`,
//! `SPINDLE_MODELS`, default `models`): trained models (format
//! `spindle-model/1`) through `spindle_anomaly`'s model store, other files
//! by the [`Loader`] of their `"kind"`. A new kind of file plugs in by adding
//! its loader to [`loaders`]. Kinds here:
//!
//! | name or kind | what | file |
//! |---|---|---|
//! | `gaussian` (built-in) | per-sensor Gaussian limits fitted on request from the machine's own windowed features in the history | [`history`] |
//! | `"kind": "gaussian_limits"` (file) | per-sensor Gaussian limits stored in the file | [`gaussian`] |
//! | `iforest`, `t2`, `pca` (`spindle train`) | Isolation Forest, Hotelling T², PCA over the model's features | [`trained`] |

pub mod gaussian;
pub mod history;
pub mod trained;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spindle_anomaly::trained::model::FORMAT as TRAINED_FORMAT;
use spindle_anomaly::trained::store::ModelStore;

use super::AppState;
use super::error::ApiError;
use super::query::QueryLimits;

/// One reading as posted: its machine and its numeric values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `machine_id`, when the reading names one.
    pub machine_id: Option<String>,
    /// Every numeric field, by name.
    pub values: BTreeMap<String, f64>,
    /// Fields that are neither `machine_id` nor numbers (ignored).
    pub ignored: Vec<String>,
}

impl Reading {
    /// Splits a JSON object into machine, numbers and the rest.
    pub fn from_json(object: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut reading = Self::default();
        for (name, value) in object {
            match (name.as_str(), value) {
                ("machine_id", Value::String(id)) => reading.machine_id = Some(id.clone()),
                ("machine_id", _) => {
                    return Err(ApiError::bad_request("reading.machine_id must be a string"));
                }
                (_, Value::Number(n)) => match n.as_f64() {
                    Some(x) => {
                        reading.values.insert(name.clone(), x);
                    }
                    None => reading.ignored.push(name.clone()),
                },
                _ => reading.ignored.push(name.clone()),
            }
        }
        if reading.values.is_empty() {
            return Err(ApiError::bad_request(
                "the reading has no numeric sensor values (e.g. {\"machine_id\": \"m-0001\", \"temperature\": 37.2})",
            ));
        }
        Ok(reading)
    }
}

/// What a model says about one reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Whether the reading is an anomaly.
    pub anomaly: bool,
    /// How unusual it is, on the model's own scale (`None` if it cannot say).
    pub score: Option<f64>,
    /// The score above which a reading is an anomaly.
    pub threshold: Option<f64>,
    /// Why it is an anomaly.
    pub reason: Option<String>,
    /// Model-specific detail (per-sensor verdicts, the baseline used),
    /// merged into the answer.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// A model that scores a single reading.
#[async_trait]
pub trait ReadingModel: Send + Sync + std::fmt::Debug {
    /// The model's kind (`gaussian_limits`, …).
    fn kind(&self) -> &'static str;
    /// One line on what it does and where its baseline comes from.
    fn description(&self) -> String;
    /// Scores `reading`; `options` are the request's model options (each
    /// model refuses options it does not take).
    async fn score(
        &self,
        reading: &Reading,
        options: &Map<String, Value>,
        limits: QueryLimits,
    ) -> Result<Prediction, ApiError>;
}

/// Builds a model from its file's JSON (`name` is the file's stem).
pub type Loader = fn(name: &str, body: &Value) -> Result<Arc<dyn ReadingModel>, String>;

/// Every kind of model file `/api/predict` can load.
pub fn loaders() -> BTreeMap<&'static str, Loader> {
    let mut loaders: BTreeMap<&'static str, Loader> = BTreeMap::new();
    loaders.insert(gaussian::FILE_KIND, gaussian::load_file);
    loaders
}

/// A model as listed by `GET /api/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Its name (what `/api/predict` takes).
    pub name: String,
    /// Its kind, when known.
    pub kind: Option<String>,
    /// What it is, or why it cannot be used.
    pub description: String,
}

/// The models a server can score with.
#[derive(Debug)]
pub struct ModelRegistry {
    built_in: BTreeMap<String, Arc<dyn ReadingModel>>,
    dir: Option<PathBuf>,
    trained: Option<ModelStore>,
    loaders: BTreeMap<&'static str, Loader>,
}

/// Model names become file names: keep them plain.
fn check_name(name: &str) -> Result<(), ApiError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(plain) {
        return Err(ApiError::bad_request(format!(
            "model name {name:?}: use 1 to 64 letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(())
}

impl ModelRegistry {
    /// The built-in models (Gaussian limits over the features table at
    /// `features`) and the model files in `dir`.
    pub fn new(features: &str, dir: Option<PathBuf>) -> Self {
        let mut built_in: BTreeMap<String, Arc<dyn ReadingModel>> = BTreeMap::new();
        built_in.insert(
            history::BUILT_IN.into(),
            Arc::new(history::HistoryGaussian::new(features)),
        );
        Self {
            built_in,
            trained: dir.clone().map(ModelStore::new),
            dir,
            loaders: loaders(),
        }
    }

    /// The model named `name`: 404 when there is none, 422 when its file
    /// cannot be used.
    pub fn get(&self, name: &str) -> Result<Arc<dyn ReadingModel>, ApiError> {
        check_name(name)?;
        if let Some(model) = self.built_in.get(name) {
            return Ok(Arc::clone(model));
        }
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no model named {name:?} (GET /api/models lists them)"),
            )
        };
        let dir = self.dir.as_ref().ok_or_else(unknown)?;
        let path = dir.join(format!("{name}.json"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(unknown()),
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading model {name:?}: {e}"),
                ));
            }
        };
        let unusable = |message| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| unusable(format!("model file {name}.json is not JSON: {e}")))?;
        match &self.trained {
            Some(store) if body["format"] == TRAINED_FORMAT => trained::load(store, name),
            _ => self.load(name, &body).map_err(unusable),
        }
    }

    fn load(&self, name: &str, body: &Value) -> Result<Arc<dyn ReadingModel>, String> {
        let kind = body["kind"].as_str().ok_or_else(|| {
            format!("model file {name}.json has no \"kind\"; /api/predict needs one")
        })?;
        let loader = self.loaders.get(kind).ok_or_else(|| {
            let known: Vec<&str> = self.loaders.keys().copied().collect();
            format!(
                "model {name:?} is of kind {kind:?}, which /api/predict cannot score (it reads files of kind {} and trained models, format {TRAINED_FORMAT})",
                known.join(", ")
            )
        })?;
        loader(name, body).map_err(|e| format!("model file {name}.json: {e}"))
    }

    /// Every model: the built-in ones, then the files, by name.
    pub fn list(&self) -> Vec<ModelInfo> {
        let mut models: Vec<ModelInfo> = self
            .built_in
            .iter()
            .map(|(name, model)| ModelInfo {
                name: name.clone(),
                kind: Some(model.kind().to_string()),
                description: model.description(),
            })
            .collect();
        let Some(entries) = self.dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) else {
            return models;
        };
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok()?.path().file_name()?.to_str().map(str::to_string))
            .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
            .filter(|n| check_name(n).is_ok() && !self.built_in.contains_key(n))
            .collect();
        files.sort();
        for name in files {
            let info = match self.get(&name) {
                Ok(model) => ModelInfo {
                    kind: Some(model.kind().to_string()),
                    description: model.description(),
                    name,
                },
                Err(e) => ModelInfo {
                    name,
                    kind: None,
                    description: e.message,
                },
            };
            models.push(info);
        }
        models
    }
}

/// The body of `POST /api/predict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    model: String,
    reading: Map<String, Value>,
    #[serde(default)]
    options: Map<String, Value>,
}

/// `POST /api/predict`.
pub(super) async fn predict(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: PredictRequest = super::jobs::json_body(body)?;
    let model = app.plant.models.get(&request.model)?;
    let reading = Reading::from_json(&request.reading)?;
    let prediction = model.score(&reading, &request.options, app.limits).await?;
    let mut answer = Map::new();
    answer.insert("model".into(), Value::String(request.model));
    answer.insert("kind".into(), Value::String(model.kind().into()));
    answer.insert(
        "machine_id".into(),
        reading.machine_id.map_or(Value::Null, Value::String),
    );
    if let Value::Object(fields) = serde_json::to_value(&prediction)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    {
        answer.extend(fields);
    }
    if !reading.ignored.is_empty() {
        answer.insert("ignored".into(), serde_json::json!(reading.ignored));
    }
    Ok(Json(Value::Object(answer)))
}

/// `GET /api/models`.
pub(super) async fn models(State(app): State<AppState>) -> Json<Vec<ModelInfo>> {
    Json(app.plant.models.list())
}

#[cfg(test)]
mod tests;
