//! Anomaly likelihood (Ahmad, Lavin, Purdy & Agha 2017, Numenta): turns any
//! detector's raw score stream into the probability that the *recent*
//! scores are abnormal for this source. Keep the last `long_window` scores
//! (the source's normal score distribution, mean μ and σ) and the mean m of
//! the last `short_window` scores; likelihood = 1 − Q((m − μ)/σ), where Q
//! is the Gaussian tail. A single spike barely moves m; a run of high scores
//! does. Flagged at `threshold` (default 0.99999, Numenta's suggestion).

use std::collections::VecDeque;

use statrs::distribution::{ContinuousCDF, Normal};

use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// Parameters of [`AnomalyLikelihood`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LikelihoodParams {
    /// Recent scores averaged (default 10).
    pub short_window: usize,
    /// Scores describing normal (default 1000).
    pub long_window: usize,
    /// Likelihood above which a reading is flagged (default 0.99999).
    pub threshold: f64,
}

impl Default for LikelihoodParams {
    fn default() -> Self {
        Self {
            short_window: 10,
            long_window: 1000,
            threshold: 0.99999,
        }
    }
}

/// The post-processor.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnomalyLikelihood {
    params: LikelihoodParams,
    long: VecDeque<f64>,
    long_sum: f64,
    long_sum_sq: f64,
    short: VecDeque<f64>,
    short_sum: f64,
    /// The standard normal (rebuilt on restore, not state).
    #[serde(skip, default = "Normal::standard")]
    normal: Normal,
}

/// Below this spread, scores count as constant (avoids dividing by ~0).
const MIN_STD_DEV: f64 = 1e-6;

impl AnomalyLikelihood {
    /// A post-processor with `params`.
    pub fn new(params: LikelihoodParams) -> Result<Self> {
        if params.short_window == 0 || params.long_window < params.short_window.max(2) {
            return Err(AnomalyError::Parameter(format!(
                "need 1 ≤ short_window ≤ long_window and long_window ≥ 2, got {} and {}",
                params.short_window, params.long_window
            )));
        }
        if !(params.threshold > 0.0 && params.threshold < 1.0) {
            return Err(AnomalyError::Parameter(format!(
                "threshold must be in (0, 1), got {}",
                params.threshold
            )));
        }
        Ok(Self {
            params,
            long: VecDeque::with_capacity(params.long_window),
            long_sum: 0.0,
            long_sum_sq: 0.0,
            short: VecDeque::with_capacity(params.short_window),
            short_sum: 0.0,
            normal: Normal::standard(),
        })
    }

    fn push(&mut self, score: f64) {
        if self.long.len() == self.params.long_window
            && let Some(old) = self.long.pop_front()
        {
            self.long_sum -= old;
            self.long_sum_sq -= old * old;
        }
        self.long.push_back(score);
        self.long_sum += score;
        self.long_sum_sq += score * score;
        if self.short.len() == self.params.short_window
            && let Some(old) = self.short.pop_front()
        {
            self.short_sum -= old;
        }
        self.short.push_back(score);
        self.short_sum += score;
    }
}

impl Detector for AnomalyLikelihood {
    fn save_state(&self) -> crate::Result<String> {
        crate::verdict::to_state(self)
    }

    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(score) = finite(value) else {
            return Verdict::missing(value);
        };
        // The distribution of normal scores is the one before this score.
        let n = self.long.len() as f64;
        let learnt = self.long.len()
            >= self
                .params
                .long_window
                .min(100)
                .max(self.params.short_window);
        let (mean, var) = (
            self.long_sum / n,
            self.long_sum_sq / n - (self.long_sum / n).powi(2),
        );
        self.push(score);
        if !learnt {
            return Verdict::warming_up(
                self.long.len() as u64 - 1,
                self.params.long_window.min(100) as u64,
            );
        }
        let sd = var.max(0.0).sqrt().max(MIN_STD_DEV);
        let recent = self.short_sum / self.short.len() as f64;
        let likelihood = self.normal.cdf((recent - mean) / sd);
        let threshold = self.params.threshold;
        Verdict::scored(likelihood, threshold, || {
            format!("recent scores {recent:.4} unusual against {mean:.4} ± {sd:.4}")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params() -> LikelihoodParams {
        LikelihoodParams {
            short_window: 3,
            long_window: 100,
            threshold: 0.999,
        }
    }

    #[test]
    fn a_run_of_high_scores_is_likely_abnormal_a_single_spike_is_not() {
        let mut l = AnomalyLikelihood::new(params()).unwrap();
        for i in 0..100 {
            let v = l.observe(Some(1.0 + (i % 5) as f64));
            if i < 99 {
                assert!(v.reason.unwrap().starts_with("unknown source"), "{i}");
            }
        }
        // Normal scores: 1..5, mean 3, sd √2.
        let spike = l.observe(Some(8.0));
        assert_eq!(spike.flag, Some(false), "{spike:?}");
        l.observe(Some(3.0));
        l.observe(Some(3.0));
        let run: Vec<bool> = (0..3)
            .map(|_| l.observe(Some(12.0)).flag.unwrap())
            .collect();
        assert_eq!(run, vec![false, true, true]);
    }

    #[test]
    fn likelihood_by_hand() {
        let mut l = AnomalyLikelihood::new(params()).unwrap();
        let scores: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
        scores.iter().for_each(|s| {
            l.observe(Some(*s));
        });
        // normal: mean ½, population sd ½; recent = (1, 0, 2)/3 = 1 → z = 1
        let v = l.observe(Some(2.0));
        let expected = Normal::standard().cdf(1.0);
        assert!((v.score.unwrap() - expected).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(
            AnomalyLikelihood::new(LikelihoodParams {
                short_window: 0,
                ..params()
            })
            .is_err()
        );
        assert!(
            AnomalyLikelihood::new(LikelihoodParams {
                threshold: 1.0,
                ..params()
            })
            .is_err()
        );
    }
}
