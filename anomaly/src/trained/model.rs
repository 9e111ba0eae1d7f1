//! The model file (`<models dir>/<name>.json`): metadata, the alarm
//! threshold, training metrics and feature profiles, and the fitted body.
//! Written whole to a temporary file and renamed, so a reader never sees
//! half a model.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::drift::{FeatureProfile, profile};
use super::hotelling::{self, HotellingT2, upper_limit};
use super::iforest::{self, IforestParams, IforestScorer, IsolationForest};
use super::pca::{self, PcaModel, PcaParams};
use super::{Matrix, quantile, sorted};
use crate::verdict::Verdict;
use crate::{AnomalyError, Result};

/// The `format` of files this version reads and writes.
pub const FORMAT: &str = "spindle-model/1";

/// Where the training rows came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Training {
    /// The history path or table.
    pub source: String,
    /// The `--where` filter, if any.
    pub filter: Option<String>,
    /// Rows used.
    pub rows: usize,
    /// Rows left out for a missing or non-finite feature.
    pub skipped: usize,
    /// Earliest and latest event time of the rows, if known.
    pub from: Option<String>,
    /// Latest event time.
    pub to: Option<String>,
}

/// The training scores' distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// Mean training score.
    pub score_mean: f64,
    /// Median.
    pub score_p50: f64,
    /// 99th percentile.
    pub score_p99: f64,
    /// Largest.
    pub score_max: f64,
    /// Share of training rows above the threshold.
    pub flagged_fraction: f64,
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Body {
    /// Isolation Forest: score s ∈ (0, 1].
    Iforest(IsolationForest),
    /// Hotelling T².
    T2(HotellingT2),
    /// PCA: max(T²/limit, Q/limit).
    Pca(PcaModel),
}

/// A model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The name SQL uses.
    pub name: String,
    /// `iforest`, `t2` or `pca` (the body's kind, repeated at the top so
    /// readers can dispatch without parsing the body).
    pub kind: String,
    /// Incremented by each `spindle train` of the same name.
    pub version: u64,
    /// Input features, in argument order.
    pub features: Vec<String>,
    /// When it was trained (RFC 3339), if recorded.
    pub trained_at: Option<String>,
    /// Its training data.
    pub training: Training,
    /// Scores above this are flagged.
    pub threshold: f64,
    /// The training share flagged by construction (`None`: the kind's
    /// default threshold).
    pub contamination: Option<f64>,
    /// Training score summary.
    pub metrics: Metrics,
    /// Per-feature training distributions, for drift.
    pub profiles: Vec<FeatureProfile>,
    /// The fitted model.
    pub model: Body,
}

/// Which model to fit, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fit {
    /// Isolation Forest.
    Iforest(IforestParams),
    /// Hotelling T², limit at this probability.
    T2 {
        /// Probability inside the limit (default 0.999999).
        probability: f64,
    },
    /// PCA T² + Q.
    Pca(PcaParams),
}

/// scikit-learn's rule: the threshold flags a `contamination` share of the
/// training scores (its `offset_` is the negated percentile of −s).
pub fn threshold_at_contamination(scores: &[f64], contamination: f64) -> Result<f64> {
    if !(contamination > 0.0 && contamination <= 0.5) {
        return Err(AnomalyError::Parameter(format!(
            "contamination must be in (0, 0.5], got {contamination}"
        )));
    }
    let negated = sorted(&scores.iter().map(|s| -s).collect::<Vec<_>>());
    quantile(&negated, contamination)
        .map(|q| -q)
        .ok_or_else(|| AnomalyError::Parameter("no training scores".into()))
}

/// Fits a model named `name` on `data` (finite rows; columns are
/// `features`). The version, time and training source are the caller's.
pub fn train(
    name: &str,
    features: &[String],
    data: &Matrix,
    fit: &Fit,
    contamination: Option<f64>,
) -> Result<ModelFile> {
    if features.len() != data.cols() || features.is_empty() {
        return Err(AnomalyError::Parameter(format!(
            "{} feature names for {} columns",
            features.len(),
            data.cols()
        )));
    }
    let (model, default_threshold) = match fit {
        Fit::Iforest(params) => (Body::Iforest(iforest::fit(data, params)?), 0.5),
        Fit::T2 { probability } => (
            Body::T2(hotelling::fit(data, features)?),
            upper_limit(*probability, data.rows(), data.cols())?,
        ),
        Fit::Pca(params) => (Body::Pca(pca::fit(data, features, params)?), 1.0),
    };
    let mut file = ModelFile {
        format: FORMAT.into(),
        name: name.into(),
        kind: String::new(),
        version: 1,
        features: features.to_vec(),
        trained_at: None,
        training: Training {
            rows: data.rows(),
            ..Training::default()
        },
        threshold: default_threshold,
        contamination,
        metrics: Metrics::default(),
        profiles: (0..data.cols())
            .map(|j| profile(&features[j], &data.column(j)))
            .collect(),
        model,
    };
    file.kind = file.kind().into();
    let scorer = file.compile()?;
    let scores = scorer.score_all(data);
    if let Some(c) = contamination {
        file.threshold = threshold_at_contamination(&scores, c)?;
    }
    let s = sorted(&scores);
    file.metrics = Metrics {
        score_mean: s.iter().sum::<f64>() / s.len().max(1) as f64,
        score_p50: quantile(&s, 0.5).unwrap_or(f64::NAN),
        score_p99: quantile(&s, 0.99).unwrap_or(f64::NAN),
        score_max: s.last().copied().unwrap_or(f64::NAN),
        flagged_fraction: s.iter().filter(|&&x| x > file.threshold).count() as f64
            / s.len().max(1) as f64,
    };
    Ok(file)
}

/// A model checked and ready to score.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The file.
    pub file: ModelFile,
    scorer: Scorer,
}

#[derive(Debug, Clone)]
enum Scorer {
    Iforest(IforestScorer),
    T2(HotellingT2),
    Pca(PcaModel),
}

impl ModelFile {
    /// Parses and checks a model file's text; errors name the problem.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let file: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format != FORMAT {
            return Err(format!(
                "format {:?}, this version reads {FORMAT:?}",
                file.format
            ));
        }
        Ok(file)
    }

    /// Reads and checks `path`, then compiles it.
    pub fn load(path: &Path) -> Result<LoadedModel> {
        let fail = |message: String| AnomalyError::ModelFile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file = Self::parse(&text).map_err(fail)?;
        file.compile().map_err(|e| fail(e.to_string()))
    }

    /// Writes the model to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let fail = |e: std::io::Error| AnomalyError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let text = serde_json::to_string(self).map_err(|e| AnomalyError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        // JSON writes NaN and ∞ as null: refuse what would not load back.
        Self::parse(&text).map_err(|e| AnomalyError::ModelFile {
            path: path.display().to_string(),
            message: format!("not saved, it would not load back: {e}"),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text + "\n").map_err(fail)?;
        std::fs::rename(&temporary, path).map_err(fail)
    }

    /// Checks the body against the features and compiles it.
    pub fn compile(&self) -> Result<LoadedModel> {
        let p = self.features.len();
        let bad = |message: String| AnomalyError::Model {
            name: self.name.clone(),
            message,
        };
        if p == 0 {
            return Err(bad("no features".into()));
        }
        if self.kind != self.kind() {
            return Err(bad(format!(
                "kind {:?} but the body is {:?}",
                self.kind,
                self.kind()
            )));
        }
        if !self.threshold.is_finite() {
            return Err(bad(format!("threshold {}", self.threshold)));
        }
        let scorer = match &self.model {
            Body::Iforest(f) => Scorer::Iforest(f.compile(p).map_err(bad)?),
            Body::T2(t) => {
                t.check(p).map_err(bad)?;
                Scorer::T2(t.clone())
            }
            Body::Pca(m) => {
                m.check(p).map_err(bad)?;
                Scorer::Pca(m.clone())
            }
        };
        Ok(LoadedModel {
            file: self.clone(),
            scorer,
        })
    }

    /// `iforest`, `t2` or `pca`.
    pub fn kind(&self) -> &'static str {
        match self.model {
            Body::Iforest(_) => "iforest",
            Body::T2(_) => "t2",
            Body::Pca(_) => "pca",
        }
    }
}

impl LoadedModel {
    /// The score of one row of finite features.
    pub fn score(&self, x: &[f64]) -> f64 {
        match &self.scorer {
            Scorer::Iforest(f) => f.score(x),
            Scorer::T2(t) => t.score(x),
            Scorer::Pca(m) => m.score_with_residual(x, &mut Vec::new()).score,
        }
    }

    /// Scores every row (finite features).
    pub fn score_all(&self, data: &Matrix) -> Vec<f64> {
        match &self.scorer {
            Scorer::Iforest(f) => {
                let mut out = Vec::with_capacity(data.rows());
                f.score_rows(data, &mut out);
                out
            }
            _ => (0..data.rows()).map(|i| self.score(data.row(i))).collect(),
        }
    }

    /// The verdict on one row: `values[j]` is feature j (`None`: NULL).
    pub fn verdict(&self, values: &[Option<f64>]) -> Verdict {
        match self.finite(values) {
            Ok(x) => self.scored(&x, self.score(&x)),
            Err(missing) => missing,
        }
    }

    /// The row's features if all are present and finite, else the verdict
    /// saying which is not.
    pub fn finite(&self, values: &[Option<f64>]) -> std::result::Result<Vec<f64>, Verdict> {
        let mut x = Vec::with_capacity(values.len());
        for (v, name) in values.iter().zip(&self.file.features) {
            let reason = match v {
                Some(v) if v.is_finite() => {
                    x.push(*v);
                    continue;
                }
                Some(v) => format!("feature {name} is not finite ({v})"),
                None => format!("missing feature {name}"),
            };
            return Err(Verdict {
                reason: Some(reason),
                ..Verdict::default()
            });
        }
        Ok(x)
    }

    /// The verdict on row `x` whose score is `score`.
    pub fn scored(&self, x: &[f64], score: f64) -> Verdict {
        let threshold = self.file.threshold;
        let (name, version) = (&self.file.name, self.file.version);
        Verdict::scored(score, threshold, || {
            format!(
                "{name} v{version}: score {score:.4} > {threshold:.4}{}",
                self.why(x)
            )
        })
    }

    /// For T² and PCA, the features behind a score.
    fn why(&self, x: &[f64]) -> String {
        let mut parts = Vec::new();
        let why = match &self.scorer {
            Scorer::Iforest(_) => return String::new(),
            Scorer::T2(t) => {
                t.score_with_contributions(x, &mut parts);
                "T² mostly from"
            }
            Scorer::Pca(m) => {
                let s = m.score_with_residual(x, &mut parts);
                parts.iter_mut().for_each(|r| *r = *r * *r);
                if s.q / m.q_limit >= s.t2 / m.t2_limit {
                    "Q mostly from"
                } else {
                    parts = x
                        .iter()
                        .zip(&m.mean)
                        .zip(&m.scale)
                        .map(|((x, mu), sd)| ((x - mu) / sd).powi(2))
                        .collect();
                    "T² along the model; largest deviations"
                }
            }
        };
        format!("; {why} {}", top(&parts, &self.file.features))
    }
}

/// The two largest shares of `parts`, named.
fn top(parts: &[f64], names: &[String]) -> String {
    let total: f64 = parts.iter().map(|p| p.max(0.0)).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].total_cmp(&parts[a]));
    order
        .iter()
        .take(2)
        .filter(|&&i| total > 0.0 && parts[i] >= 0.005 * total)
        .map(|&i| format!("{} {:.0}%", names[i], 100.0 * parts[i] / total))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
