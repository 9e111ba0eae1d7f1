//! The built-in model `gaussian`: per-sensor Gaussian limits whose
//! baseline is fitted on request from the machine's own windowed features in
//! the history (the table `jobs/factory_features.sql` writes: per window
//! `readings` and every sensor's `<sensor>_avg` and `<sensor>_stddev`). The
//! windows of the last `baseline` before the machine's newest window are
//! pooled exactly (Chan's formula; each window's count is its `readings`);
//! fitted baselines are kept for [`CACHE_TTL`]. Scoring is
//! [`super::gaussian`]'s.

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
use serde_json::{Map, Value, json};

use super::gaussian::{FILE_KIND, SensorBaseline, judge, options};
use super::{Prediction, Reading, ReadingModel};
use crate::error::{EngineError, Result};
use crate::server::anomalies::time_literal;
use crate::server::error::ApiError;
use crate::server::query::{QueryLimits, bounded, table_at};

/// The built-in model's name.
pub const BUILT_IN: &str = "gaussian";
/// How long a baseline fitted from the history is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

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
