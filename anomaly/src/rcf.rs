//! Random Cut Forest (Guha, Mishra, Roy & Schrijvers, ICML 2016), streaming:
//! AWS's reference Rust implementation (`krcflib`, imported as `rcflib`),
//! one forest per key. Each reading is scored against the forest, then
//! inserted (reservoir sampling with time decay), so the model follows slow
//! change. Scores are the reference implementation's: about 1 or below for
//! normal points, larger for points that would be isolated by few cuts.
//! Before `2 + sample_size/4` readings the forest gives no score (warming up).
//!
//! ```sql
//! rcf_anomaly(value_or_array [, trees [, sample_size [, shingle_size [, time_decay [, threshold]]]]])
//!   OVER (PARTITION BY machine_id ORDER BY ts)
//! ```
//!
//! The state of a key's forest serialises with serde ([`Rcf::to_json`],
//! [`Rcf::from_json`]), for checkpoints; a restored forest continues with
//! the same scores.

use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFMedium, RCFOptionsBuilder};
use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;
use crate::{AnomalyError, Result};

/// Parameters (Kinesis' and the reference implementation's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RcfParams {
    /// Trees (default 50).
    pub trees: usize,
    /// Points each tree samples (default 256).
    pub sample_size: usize,
    /// Consecutive readings concatenated into one point (default 1).
    pub shingle_size: usize,
    /// Reservoir time decay λ (default 0.1/sample_size: a point's weight
    /// halves in about 7·sample_size readings).
    pub time_decay: Option<f64>,
    /// Score above which a reading is flagged (default 3).
    pub threshold: f64,
    /// Seed (default 17: results repeat).
    pub seed: u64,
}

impl Default for RcfParams {
    fn default() -> Self {
        Self {
            trees: 50,
            sample_size: 256,
            shingle_size: 1,
            time_decay: None,
            threshold: 3.0,
            seed: 17,
        }
    }
}

/// One key's forest, created at its first reading (which fixes the
/// number of values).
#[derive(Debug, Serialize, Deserialize)]
pub struct Rcf {
    params: RcfParams,
    forest: Option<RCFMedium<u64, u64>>,
    dimensions: usize,
    seen: u64,
}

fn rcf_error(e: impl std::fmt::Debug) -> AnomalyError {
    AnomalyError::Parameter(format!("random cut forest: {e:?}"))
}

impl Rcf {
    /// Checks the parameters.
    pub fn new(params: RcfParams) -> Result<Self> {
        if params.trees == 0 || params.sample_size < 2 || params.shingle_size == 0 {
            return Err(AnomalyError::Parameter(format!(
                "trees ≥ 1, sample_size ≥ 2 and shingle_size ≥ 1, got {}, {}, {}",
                params.trees, params.sample_size, params.shingle_size
            )));
        }
        if params.time_decay.is_some_and(|d| !(0.0..1.0).contains(&d))
            || !params.threshold.is_finite()
        {
            return Err(AnomalyError::Parameter(
                "time_decay must be in [0, 1) and threshold finite".into(),
            ));
        }
        Ok(Self {
            params,
            forest: None,
            dimensions: 0,
            seen: 0,
        })
    }

    fn build(&self, dimensions: usize) -> Result<RCFMedium<u64, u64>> {
        let p = &self.params;
        let mut builder = RCFBuilder::new(dimensions, p.shingle_size);
        builder
            .tree_capacity(p.sample_size)
            .number_of_trees(p.trees)
            .random_seed(p.seed)
            .parallel_enabled(false)
            .internal_shingling(true);
        if let Some(decay) = p.time_decay {
            builder.time_decay(decay);
        }
        builder.build_medium_simple::<u64>().map_err(rcf_error)
    }

    /// Scores `values` (one reading), then learns it.
    pub fn observe(&mut self, values: &[Option<f64>]) -> Verdict {
        let mut point = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(x) if x.is_finite() => point.push(*x as f32),
                Some(x) => {
                    return Verdict {
                        reason: Some(format!("value {} is not finite ({x})", i + 1)),
                        ..Verdict::default()
                    };
                }
                None => {
                    return Verdict {
                        reason: Some(format!("missing value {}", i + 1)),
                        ..Verdict::default()
                    };
                }
            }
        }
        match self.score_and_update(&point) {
            Ok(v) => v,
            Err(e) => Verdict {
                reason: Some(e.to_string()),
                ..Verdict::default()
            },
        }
    }

    fn score_and_update(&mut self, point: &[f32]) -> Result<Verdict> {
        if self.forest.is_none() {
            self.forest = Some(self.build(point.len())?);
            self.dimensions = point.len();
        }
        if point.len() != self.dimensions {
            return Err(AnomalyError::Parameter(format!(
                "{} values, this key's forest has {}",
                point.len(),
                self.dimensions
            )));
        }
        let (base, threshold) = (self.dimensions, self.params.threshold);
        let warmup = 2 + self.params.sample_size as u64 / 4;
        let Some(forest) = self.forest.as_mut() else {
            return Err(AnomalyError::Parameter("no forest".into()));
        };
        let warm = forest.is_output_ready();
        let verdict = if warm {
            let score = forest.score(point).map_err(rcf_error)?;
            let explain = || -> String {
                let attribution = forest.attribution(point).ok();
                let why = attribution
                    .filter(|_| base > 1)
                    .map(|a| {
                        let mut per = vec![0.0; base];
                        for (i, (h, l)) in a.high.iter().zip(&a.low).enumerate() {
                            per[i % base] += h + l;
                        }
                        let total: f64 = per.iter().sum();
                        let top = (0..base)
                            .max_by(|&x, &y| per[x].total_cmp(&per[y]))
                            .unwrap_or(0);
                        format!(
                            "; mostly value {} ({:.0}%)",
                            top + 1,
                            100.0 * per[top] / total.max(f64::MIN_POSITIVE)
                        )
                    })
                    .unwrap_or_default();
                format!("rcf score {score:.4} > {threshold:.4}{why}")
            };
            Verdict::scored(score, threshold, explain)
        } else {
            Verdict::warming_up(self.seen, warmup)
        };
        forest.update(point, 0).map_err(rcf_error)?;
        self.seen += 1;
        Ok(verdict)
    }

    /// Per-value attribution of the score `values` would get (high + low
    /// directions summed over shingle positions), or `None` while warming up.
    pub fn attribution(&self, values: &[f64]) -> Option<Vec<f64>> {
        let forest = self.forest.as_ref().filter(|f| f.is_output_ready())?;
        let point: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        let a = forest.attribution(&point).ok()?;
        let mut per = vec![0.0; self.dimensions];
        for (i, (h, l)) in a.high.iter().zip(&a.low).enumerate() {
            per[i % self.dimensions] += h + l;
        }
        Some(per)
    }

    /// The state, for a checkpoint.
    pub fn to_json(&self) -> Result<String> {
        crate::state::encode(self)
    }

    /// A forest from a checkpoint.
    pub fn from_json(text: &str) -> Result<Self> {
        crate::state::decode(text)
    }
}

#[cfg(test)]
#[path = "rcf_tests.rs"]
mod tests;
