//! Gaussian limits for one reading: each sensor value is scored against its
//! baseline mean μ and standard deviation σ as |x − μ| / σ and flagged
//! outside μ ± q·σ, q the two-sided normal quantile of `probability` — the
//! maths of `gaussian_anomaly` (`spindle_anomaly::gaussian`), with the
//! baseline taken from somewhere else than the stream: fitted from the
//! history ([`super::history`], the built-in model `gaussian`) or read from a
//! model file of kind `gaussian_limits` ([`FileGaussian`]: μ and σ per
//! sensor, optionally per machine).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use spindle_anomaly::Verdict;
use spindle_anomaly::gaussian::two_sided_quantile;

use super::{Prediction, Reading, ReadingModel};
use crate::server::error::ApiError;
use crate::server::query::QueryLimits;

/// The kind of model file [`load_file`] reads.
pub const FILE_KIND: &str = "gaussian_limits";
const DEFAULT_PROBABILITY: f64 = 0.999_999;
const DEFAULT_BASELINE: &str = "24h";
const DEFAULT_MIN_READINGS: f64 = 100.0;

/// One sensor's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorBaseline {
    /// Mean μ.
    pub mean: f64,
    /// Standard deviation σ.
    pub std_dev: f64,
    /// Readings it was learnt from (unknown for file models).
    #[serde(default)]
    pub readings: Option<f64>,
}

/// The request's options, checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// Probability mass inside the limits.
    pub(super) probability: f64,
    /// How far back from the machine's newest window a fitted baseline reaches.
    pub(super) baseline: Duration,
    /// Readings a baseline needs before it scores.
    pub(super) min_readings: f64,
}

pub(super) fn options(given: &Map<String, Value>, allowed: &[&str]) -> Result<Options, ApiError> {
    if let Some(unknown) = given.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown option {unknown:?}; this model takes {}",
            allowed.join(", ")
        )));
    }
    let number = |name: &str, default: f64| match given.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| ApiError::bad_request(format!("option {name} must be a number"))),
    };
    let probability = number("probability", DEFAULT_PROBABILITY)?;
    if !(probability > 0.0 && probability < 1.0) {
        return Err(ApiError::bad_request(format!(
            "option probability must be in (0, 1), got {probability}"
        )));
    }
    let baseline = given
        .get("baseline")
        .map_or(Some(DEFAULT_BASELINE), Value::as_str)
        .ok_or_else(|| ApiError::bad_request("option baseline must be a duration like \"24h\""))?;
    let baseline = humantime::parse_duration(baseline)
        .map_err(|e| ApiError::bad_request(format!("option baseline {baseline:?}: {e}")))?;
    let min_readings = number("min_readings", DEFAULT_MIN_READINGS)?;
    Ok(Options {
        probability,
        baseline,
        min_readings,
    })
}

/// Scores every value of `reading` that has a baseline.
pub(super) fn judge(
    reading: &Reading,
    baselines: &BTreeMap<String, SensorBaseline>,
    options: Options,
    baseline_info: Value,
) -> Result<Prediction, ApiError> {
    let q = two_sided_quantile(options.probability)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (mut scored, mut unscored, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    let mut top: Option<f64> = None;
    for (sensor, &x) in &reading.values {
        let Some(b) = baselines.get(sensor) else {
            unscored.push(json!({"sensor": sensor, "reason": "no baseline for this sensor"}));
            continue;
        };
        if b.readings.is_some_and(|n| n < options.min_readings) {
            let n = b.readings.unwrap_or_default();
            let reason = format!("baseline of {n} readings; needs {}", options.min_readings);
            unscored.push(json!({"sensor": sensor, "reason": reason}));
            continue;
        }
        if !(b.std_dev > 0.0 && b.std_dev.is_finite()) {
            unscored.push(json!({"sensor": sensor, "reason": "the baseline has no spread"}));
            continue;
        }
        let (lo, hi) = (b.mean - q * b.std_dev, b.mean + q * b.std_dev);
        let verdict = Verdict::scored((x - b.mean).abs() / b.std_dev, q, || {
            format!("value out of limits ({lo:.6}, {hi:.6})")
        });
        if let Some(reason) = &verdict.reason {
            reasons.push(format!("{sensor}: {reason}"));
        }
        if let Some(score) = verdict.score {
            top = Some(top.map_or(score, |t| t.max(score)));
        }
        scored.push(json!({
            "sensor": sensor, "value": x, "score": verdict.score, "threshold": q,
            "flag": verdict.flag, "reason": verdict.reason,
            "mean": b.mean, "std_dev": b.std_dev, "readings": b.readings,
        }));
    }
    if scored.is_empty() {
        let why: Vec<String> = unscored
            .iter()
            .map(|u| format!("{}: {}", u["sensor"], u["reason"]))
            .collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "no value of the reading could be scored ({})",
                why.join("; ")
            ),
        ));
    }
    let mut details = Map::new();
    details.insert("sensors".into(), Value::Array(scored));
    details.insert("unscored".into(), Value::Array(unscored));
    details.insert("baseline".into(), baseline_info);
    Ok(Prediction {
        anomaly: !reasons.is_empty(),
        score: top,
        threshold: Some(q),
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        details,
    })
}

/// A model file of kind `gaussian_limits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGaussian {
    #[serde(skip)]
    name: String,
    /// Always `gaussian_limits`.
    kind: String,
    /// What the file is (shown by `GET /api/models`).
    #[serde(default)]
    description: Option<String>,
    /// The default probability inside the limits.
    #[serde(default)]
    probability: Option<f64>,
    /// Baselines of every machine, by sensor.
    #[serde(default)]
    sensors: BTreeMap<String, SensorBaseline>,
    /// Baselines of single machines, by machine and sensor (before `sensors`).
    #[serde(default)]
    machines: BTreeMap<String, BTreeMap<String, SensorBaseline>>,
}

/// The [`super::Loader`] of `gaussian_limits` files.
pub fn load_file(name: &str, body: &Value) -> std::result::Result<Arc<dyn ReadingModel>, String> {
    let mut model = FileGaussian::deserialize(body).map_err(|e| e.to_string())?;
    if model.kind != FILE_KIND {
        return Err(format!("kind {:?} is not {FILE_KIND}", model.kind));
    }
    if model.sensors.is_empty() && model.machines.is_empty() {
        return Err("no \"sensors\" or \"machines\" baselines".into());
    }
    model.name = name.to_string();
    Ok(Arc::new(model))
}

#[async_trait]
impl ReadingModel for FileGaussian {
    fn kind(&self) -> &'static str {
        FILE_KIND
    }

    fn description(&self) -> String {
        self.description.clone().unwrap_or_else(|| {
            format!(
                "per-sensor Gaussian limits from the model file {}.json",
                self.name
            )
        })
    }

    async fn score(
        &self,
        reading: &Reading,
        given: &Map<String, Value>,
        _limits: QueryLimits,
    ) -> Result<Prediction, ApiError> {
        let mut options = options(given, &["probability"])?;
        if !given.contains_key("probability")
            && let Some(p) = self.probability
        {
            options.probability = p;
        }
        options.min_readings = 0.0;
        let own = reading
            .machine_id
            .as_ref()
            .and_then(|m| self.machines.get(m));
        let mut baselines = self.sensors.clone();
        if let Some(own) = own {
            baselines.extend(own.iter().map(|(s, b)| (s.clone(), *b)));
        }
        let info = json!({"source": "file", "model": self.name, "machine_specific": own.is_some()});
        judge(reading, &baselines, options, info)
    }
}
