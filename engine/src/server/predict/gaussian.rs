//! Gaussian limits for one reading: each sensor value is scored against its
//! baseline mean μ and standard deviation σ as |x − μ| / σ and flagged
//! outside μ ± q·σ, q the two-sided normal quantile of `probability` — the
//! maths of `gaussian_anomaly` (`spindle_anomaly::gaussian`), with the
//! baseline taken from somewhere else than the stream:
//!
//! - [`HistoryGaussian`] (the built-in model `gaussian`) fits it on request
//!   from the machine's own windowed features in the history (the table
//!   `jobs/factory_features.sql` writes: per window `readings` and every
//!   sensor's `<sensor>_avg` and `<sensor>_stddev`), pooling the windows of
//!   the last `baseline` before the machine's newest window exactly (Chan's
//!   formula; each window's count is its `readings`). Fitted baselines are
//!   kept for [`CACHE_TTL`].
//! - [`FileGaussian`] (model files of kind `gaussian_limits`) reads μ and σ
//!   per sensor, optionally per machine, from the file.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::array::{Array, Float64Array, Int64Array};
use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::prelude::{cast, col, lit};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use spindle_anomaly::Verdict;
use spindle_anomaly::gaussian::two_sided_quantile;

use super::{Prediction, Reading, ReadingModel};
use crate::error::{EngineError, Result};
use crate::server::anomalies::time_literal;
use crate::server::error::ApiError;
use crate::server::query::{QueryLimits, bounded, table_at};

/// The built-in model's name.
pub const BUILT_IN: &str = "gaussian";
/// The kind of model file [`load_file`] reads.
pub const FILE_KIND: &str = "gaussian_limits";
/// How long a baseline fitted from the history is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
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

/// Count, mean and sum of squared deviations, merged window by window.
#[derive(Debug, Clone, Copy, Default)]
struct Pool {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Pool {
    /// Adds a window of `n` readings with mean `mean` and sample standard
    /// deviation `sd` (Chan, Golub & LeVeque).
    fn add(&mut self, n: f64, mean: f64, sd: Option<f64>) {
        if !(n > 0.0 && mean.is_finite()) {
            return;
        }
        let m2 = sd
            .filter(|s| s.is_finite())
            .map_or(0.0, |s| s * s * (n - 1.0));
        let total = self.n + n;
        let delta = mean - self.mean;
        self.m2 += m2 + delta * delta * self.n * n / total;
        self.mean += delta * n / total;
        self.n = total;
    }

    fn baseline(&self) -> Option<SensorBaseline> {
        (self.n > 1.0).then(|| SensorBaseline {
            mean: self.mean,
            std_dev: (self.m2 / (self.n - 1.0)).sqrt(),
            readings: Some(self.n),
        })
    }
}

/// The request's options, checked.
#[derive(Debug, Clone, Copy)]
struct Options {
    probability: f64,
    baseline: Duration,
    min_readings: f64,
}

fn options(given: &Map<String, Value>, allowed: &[&str]) -> Result<Options, ApiError> {
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
fn judge(
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

/// Baselines fitted from one machine's windows.
#[derive(Debug)]
struct Fitted {
    sensors: BTreeMap<String, SensorBaseline>,
    windows: usize,
    newest: DateTime<Utc>,
}

/// Fitted baselines by (machine, span), with when they were fitted.
type Cache = HashMap<(String, Duration), (Instant, Arc<Fitted>)>;

/// The built-in model: Gaussian limits fitted from the features history.
#[derive(Debug)]
pub struct HistoryGaussian {
    features: String,
    cache: Mutex<Cache>,
}

impl HistoryGaussian {
    /// Fits from the features table at `features` (a directory or `s3://…`).
    pub fn new(features: &str) -> Self {
        Self {
            features: features.to_string(),
            cache: Mutex::default(),
        }
    }

    async fn fitted(
        &self,
        machine: &str,
        window: Duration,
        limits: QueryLimits,
    ) -> Result<Option<Arc<Fitted>>> {
        let key = (machine.to_string(), window);
        if let Some((at, fitted)) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(Arc::clone(fitted)));
        }
        let (location, id) = (self.features.clone(), machine.to_string());
        let work = async move { fit(&location, &id, window, limits.memory).await };
        let Some(fitted) = bounded("fitting the baseline", limits.timeout, work).await? else {
            return Ok(None);
        };
        let fitted = Arc::new(fitted);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), Arc::clone(&fitted)));
        Ok(Some(fitted))
    }
}

/// Pools `machine`'s windows of the last `window` before its newest one.
async fn fit(
    location: &str,
    machine: &str,
    window: Duration,
    memory: usize,
) -> Result<Option<Fitted>> {
    let Some(frame) = table_at(location, memory).await? else {
        return Ok(None);
    };
    let schema = frame.schema().clone();
    let has = |c: &str| schema.field_with_unqualified_name(c).is_ok();
    if let Some(missing) = ["machine_id", "window_start", "readings"]
        .into_iter()
        .find(|c| !has(c))
    {
        return Err(EngineError::Internal(format!(
            "the features table at {location} has no column {missing}; Gaussian limits need machine_id, window_start, readings and <sensor>_avg, <sensor>_stddev"
        )));
    }
    let sensors: Vec<String> = schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_avg").map(str::to_string))
        .filter(|s| has(&format!("{s}_stddev")))
        .collect();
    let utc_micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let of_machine = col("machine_id").eq(lit(machine));
    let newest = frame
        .clone()
        .filter(of_machine.clone())
        .and_then(|f| {
            let newest = cast(cast(max(col("window_start")), utc_micros), DataType::Int64);
            f.aggregate(vec![], vec![newest.alias("newest")])
        })
        .map_err(EngineError::datafusion(
            "finding the machine's newest window",
        ))?
        .collect()
        .await
        .map_err(EngineError::datafusion(
            "finding the machine's newest window",
        ))?;
    let newest = newest
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
        .filter(|a| !a.is_empty() && a.is_valid(0))
        .and_then(|a| DateTime::from_timestamp_micros(a.value(0)));
    let Some(newest) = newest else {
        return Ok(None);
    };
    let from = newest - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let ts_type = schema
        .field_with_unqualified_name("window_start")
        .map(|f| f.data_type().clone())
        .map_err(EngineError::datafusion("reading the features table"))?;
    let mut columns = vec![cast(col("readings"), DataType::Float64)];
    for s in &sensors {
        columns.push(cast(col(format!("{s}_avg")), DataType::Float64));
        columns.push(cast(col(format!("{s}_stddev")), DataType::Float64));
    }
    let batches = frame
        .filter(of_machine.and(col("window_start").gt_eq(time_literal(from, &ts_type))))
        .and_then(|f| f.select(columns))
        .map_err(EngineError::datafusion("reading the machine's windows"))?
        .collect()
        .await
        .map_err(EngineError::datafusion("reading the machine's windows"))?;
    let mut pools = vec![Pool::default(); sensors.len()];
    let mut windows = 0;
    for batch in &batches {
        let column = |i: usize| batch.column(i).as_any().downcast_ref::<Float64Array>();
        let Some(counts) = column(0) else { continue };
        windows += batch.num_rows();
        for (k, pool) in pools.iter_mut().enumerate() {
            let (Some(means), Some(sds)) = (column(1 + 2 * k), column(2 + 2 * k)) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                if counts.is_valid(row) && means.is_valid(row) {
                    let sd = sds.is_valid(row).then(|| sds.value(row));
                    pool.add(counts.value(row), means.value(row), sd);
                }
            }
        }
    }
    let sensors = sensors
        .into_iter()
        .zip(pools)
        .filter_map(|(s, pool)| Some((s, pool.baseline()?)))
        .collect();
    Ok(Some(Fitted {
        sensors,
        windows,
        newest,
    }))
}

#[async_trait]
impl ReadingModel for HistoryGaussian {
    fn kind(&self) -> &'static str {
        FILE_KIND
    }

    fn description(&self) -> String {
        format!(
            "per-sensor Gaussian limits fitted on request from the machine's windows in the features table at {}",
            self.features
        )
    }

    async fn score(
        &self,
        reading: &Reading,
        given: &Map<String, Value>,
        limits: QueryLimits,
    ) -> Result<Prediction, ApiError> {
        let options = options(given, &["probability", "baseline", "min_readings"])?;
        let machine = reading.machine_id.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "reading.machine_id is needed: the baseline is the machine's own history",
            )
        })?;
        let fitted = self
            .fitted(machine, options.baseline, limits)
            .await
            .map_err(|e| ApiError::from_engine(&e, str::to_string))?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "no baseline for machine {machine:?}: the features table at {} has no windows of it",
                        self.features
                    ),
                )
            })?;
        let info = json!({
            "source": "history",
            "table": self.features,
            "windows": fitted.windows,
            "newest_window": fitted.newest.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "span": humantime::format_duration(options.baseline).to_string(),
        });
        judge(reading, &fitted.sensors, options, info)
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pooled_windows_equal_one_pass_over_their_readings() {
        let windows: [&[f64]; 3] = [&[1.0, 2.0, 4.0], &[10.0, 11.0], &[5.0]];
        let mut pool = Pool::default();
        for w in windows {
            let n = w.len() as f64;
            let mean = w.iter().sum::<f64>() / n;
            let sd = (n > 1.0)
                .then(|| (w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
            pool.add(n, mean, sd);
        }
        let all: Vec<f64> = windows.concat();
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let sd = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let b = pool.baseline().unwrap();
        assert!(
            (b.mean - mean).abs() < 1e-12 && (b.std_dev - sd).abs() < 1e-12,
            "{b:?}"
        );
        assert_eq!(b.readings, Some(6.0));
    }
}
