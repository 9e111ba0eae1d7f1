//! Control charts for drift, on exponentially weighted statistics of a
//! source's readings against its in-control baseline (mean μ₀, σ₀ learnt
//! from unflagged readings after a warm-up). With λ = 1 − 2^(−1/half_life):
//!
//! - **EWMA** (Roberts 1959): zₜ = λxₜ + (1−λ)zₜ₋₁; in control zₜ has
//!   standard deviation σ₀·√(λ/(2−λ)); score = |zₜ − μ₀| / that, flagged
//!   above `limit` (default 4). Small sustained shifts add up.
//! - **EW variance** (MacGregor & Harris 1993): vₜ = λ(xₜ−μ₀)² + (1−λ)vₜ₋₁;
//!   in control vₜ/σ₀² has mean 1 and standard deviation ≈ √(2λ/(2−λ));
//!   score = (vₜ/σ₀² − 1) / that, flagged above `limit`. Catches a sensor
//!   that starts to fluctuate without changing its mean.

use crate::baseline::Baseline;
use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// Which statistic the chart watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The weighted mean.
    Mean,
    /// The weighted squared deviation.
    Variance,
}

/// Parameters of [`EwmaChart`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EwmaParams {
    /// Readings after which an observation's weight has halved (default 10).
    pub half_life: f64,
    /// Score above which a reading is flagged (default 4).
    pub limit: f64,
    /// Readings in the baseline (default 300).
    pub warmup: u64,
}

impl Default for EwmaParams {
    fn default() -> Self {
        Self {
            half_life: 10.0,
            limit: 4.0,
            warmup: 300,
        }
    }
}

/// The detector.
#[derive(Debug, Clone)]
pub struct EwmaChart {
    statistic: Statistic,
    lambda: f64,
    limit: f64,
    baseline: Baseline,
    state: Option<f64>,
}

impl EwmaChart {
    /// A chart of `statistic` with `params`.
    pub fn new(statistic: Statistic, params: EwmaParams) -> Result<Self> {
        if !(params.half_life > 0.0 && params.limit > 0.0) {
            return Err(AnomalyError::Parameter(format!(
                "half_life and limit must be positive, got {} and {}",
                params.half_life, params.limit
            )));
        }
        Ok(Self {
            statistic,
            lambda: 1.0 - 0.5f64.powf(1.0 / params.half_life),
            limit: params.limit,
            baseline: Baseline::new(params.warmup),
            state: None,
        })
    }

    /// The smoothing weight λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    fn score(&mut self, x: f64, mean: f64, sd: f64) -> f64 {
        let l = self.lambda;
        match self.statistic {
            Statistic::Mean => {
                let z = l * x + (1.0 - l) * self.state.unwrap_or(mean);
                self.state = Some(z);
                (z - mean).abs() / (sd * (l / (2.0 - l)).sqrt())
            }
            Statistic::Variance => {
                let v = l * (x - mean).powi(2) + (1.0 - l) * self.state.unwrap_or(sd * sd);
                self.state = Some(v);
                (v / (sd * sd) - 1.0) / (2.0 * l / (2.0 - l)).sqrt()
            }
        }
    }
}

impl Detector for EwmaChart {
    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        let Some((mean, sd)) = self.baseline.ready() else {
            self.baseline.learn(x);
            let (seen, needed) = self.baseline.progress();
            return Verdict::warming_up(seen - 1, needed);
        };
        let score = self.score(x, mean, sd);
        let what = match self.statistic {
            Statistic::Mean => "weighted mean drifted",
            Statistic::Variance => "weighted variance grew",
        };
        let limit = self.limit;
        let verdict = Verdict::scored(score, limit, || {
            format!("{what}: {score:.2} σ above the baseline (limit {limit})")
        });
        if verdict.flag == Some(false) {
            self.baseline.learn(x);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn warmed(statistic: Statistic) -> EwmaChart {
        let params = EwmaParams {
            half_life: 1.0,
            limit: 4.0,
            warmup: 4,
        };
        let mut chart = EwmaChart::new(statistic, params).unwrap();
        for x in [9.0, 11.0, 9.0, 11.0] {
            assert_eq!(chart.observe(Some(x)).flag, Some(false));
        }
        chart
    }

    #[test]
    fn half_life_one_weighs_the_newest_reading_one_half() {
        assert!((warmed(Statistic::Mean).lambda() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ewma_score_by_hand() {
        // μ₀ = 10, σ₀ = √(4/3); λ = ½ → sd of z = σ₀·√(1/3).
        let mut chart = warmed(Statistic::Mean);
        let v = chart.observe(Some(12.0)).score.unwrap(); // z = 11
        let expected = 1.0 / ((4.0f64 / 3.0).sqrt() * (1.0f64 / 3.0).sqrt());
        assert!((v - expected).abs() < 1e-12, "{v} vs {expected}");
        let sustained: Vec<bool> = (0..6)
            .map(|_| chart.observe(Some(14.0)).flag.unwrap())
            .collect();
        assert!(sustained.iter().any(|f| *f), "a sustained shift is flagged");
    }

    #[test]
    fn ew_variance_flags_fluctuation_around_the_same_mean() {
        let mut chart = warmed(Statistic::Variance);
        let flags: Vec<bool> = [4.0, 16.0, 4.0, 16.0]
            .iter()
            .map(|x| chart.observe(Some(*x)).flag.unwrap())
            .collect();
        assert!(flags.iter().any(|f| *f), "{flags:?}");
        // (v/σ² − 1)/√(2λ/(2−λ)) for the first: v = ½·36 + ½·(4/3)
        let mut fresh = warmed(Statistic::Variance);
        let v = 0.5 * 36.0 + 0.5 * (4.0 / 3.0);
        let expected = (v / (4.0 / 3.0) - 1.0) / (1.0f64 / 1.5).sqrt();
        assert!((fresh.observe(Some(4.0)).score.unwrap() - expected).abs() < 1e-9);
    }
}
