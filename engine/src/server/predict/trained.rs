//! Trained models (`spindle train`: Isolation Forest, Hotelling T², PCA;
//! model files of format `spindle-model/1` in the models directory) scoring
//! one reading: the reading's values are taken by the model's feature names,
//! in its order, and scored as `anomaly_model('name', …)` scores a row in
//! SQL (`spindle_anomaly::trained`). Files are read through the crate's
//! [`ModelStore`], so a changed file is re-read and a broken new version is
//! refused while the old one keeps scoring.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use spindle_anomaly::trained::model::LoadedModel;
use spindle_anomaly::trained::store::ModelStore;

use super::{Prediction, Reading, ReadingModel};
use crate::server::error::ApiError;
use crate::server::query::QueryLimits;

/// A trained model, loaded.
#[derive(Debug)]
pub struct TrainedModel {
    model: Arc<LoadedModel>,
}

/// Model `name` from `store`; 422 when the file cannot be used.
pub fn load(store: &ModelStore, name: &str) -> Result<Arc<dyn ReadingModel>, ApiError> {
    let model = store
        .get(name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(Arc::new(TrainedModel { model }))
}

#[async_trait]
impl ReadingModel for TrainedModel {
    fn kind(&self) -> &'static str {
        self.model.file.kind()
    }

    fn description(&self) -> String {
        let file = &self.model.file;
        format!(
            "{} trained by spindle train (version {}) on {} rows of {}; features {}",
            file.kind,
            file.version,
            file.training.rows,
            file.training.source,
            file.features.join(", ")
        )
    }

    async fn score(
        &self,
        reading: &Reading,
        options: &Map<String, Value>,
        _limits: QueryLimits,
    ) -> Result<Prediction, ApiError> {
        if let Some(option) = options.keys().next() {
            return Err(ApiError::bad_request(format!(
                "unknown option {option:?}; trained models take no options"
            )));
        }
        let features = &self.model.file.features;
        let missing: Vec<&str> = features
            .iter()
            .filter(|f| !reading.values.contains_key(*f))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the reading lacks {} that model {:?} needs (it takes {})",
                missing.join(", "),
                self.model.file.name,
                features.join(", ")
            )));
        }
        let values: Vec<Option<f64>> = features
            .iter()
            .map(|f| reading.values.get(f).copied())
            .collect();
        let verdict = self.model.verdict(&values);
        let unused: Vec<&String> = reading
            .values
            .keys()
            .filter(|k| !features.contains(k))
            .collect();
        let mut details = Map::new();
        details.insert("features".into(), json!(features));
        details.insert("version".into(), json!(self.model.file.version));
        details.insert("unused".into(), json!(unused));
        Ok(Prediction {
            anomaly: verdict.flag == Some(true),
            score: verdict.score,
            threshold: verdict.threshold,
            reason: verdict.reason,
            details,
        })
    }
}
