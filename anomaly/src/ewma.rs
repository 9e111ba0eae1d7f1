//! Control charts for drift on a source's standardised prediction errors
//! eₜ (see [`crate::baseline`]: mean 0, variance 1 in control). With
//! λ = 1 − 2^(−1/half_life):
//!
//! - **EWMA** (Roberts 1959): zₜ = λeₜ + (1−λ)zₜ₋₁; in control zₜ has
//!   standard deviation √(λ/(2−λ)); score = |zₜ| / √(λ/(2−λ)), flagged above
//!   `limit`. Small sustained shifts add up.
//! - **EW variance** (MacGregor & Harris 1993): vₜ = λeₜ² + (1−λ)vₜ₋₁
//!   (v₀ = 1); in control vₜ has mean 1 and standard deviation about
//!   √(2λ/(2−λ)); score = (vₜ − 1)/√(2λ/(2−λ)), flagged above `limit`.
//!   Catches a sensor that starts to fluctuate without changing its mean.

use crate::baseline::Baseline;
use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// Which statistic the chart watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Statistic {
    /// The weighted mean.
    Mean,
    /// The weighted squared deviation.
    Variance,
}

/// Parameters of [`EwmaChart`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EwmaChart {
    statistic: Statistic,
    lambda: f64,
    limit: f64,
    baseline: Baseline,
    state: f64,
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
            state: match statistic {
                Statistic::Mean => 0.0,
                Statistic::Variance => 1.0,
            },
        })
    }

    /// The smoothing weight λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The chart's score after updating its state with the error `e`.
    fn score(&mut self, e: f64) -> f64 {
        let l = self.lambda;
        match self.statistic {
            Statistic::Mean => {
                self.state = l * e + (1.0 - l) * self.state;
                self.state.abs() / (l / (2.0 - l)).sqrt()
            }
            Statistic::Variance => {
                self.state = l * e * e + (1.0 - l) * self.state;
                (self.state - 1.0) / (2.0 * l / (2.0 - l)).sqrt()
            }
        }
    }
}

impl Detector for EwmaChart {
    fn save_state(&self) -> crate::Result<String> {
        crate::verdict::to_state(self)
    }

    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        let Some(e) = self.baseline.residual(x) else {
            let (seen, needed) = self.baseline.progress();
            return Verdict::warming_up(seen - 1, needed);
        };
        let score = self.score(e);
        let what = match self.statistic {
            Statistic::Mean => "weighted mean drifted",
            Statistic::Variance => "weighted variance grew",
        };
        let limit = self.limit;
        Verdict::scored(score, limit, || {
            format!("{what}: {score:.2} σ beyond the baseline (limit {limit})")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn warmed(statistic: Statistic) -> EwmaChart {
        let params = EwmaParams {
            half_life: 1.0,
            limit: 3.0,
            warmup: 4,
        };
        let mut chart = EwmaChart::new(statistic, params).unwrap();
        // The tests compare with a Baseline fed the same readings, so they
        // hold for whatever μ, σ and φ it learns from 9, 11, 9, 11.
        for x in [9.0, 11.0, 9.0, 11.0] {
            assert!(
                chart
                    .observe(Some(x))
                    .reason
                    .unwrap()
                    .starts_with("unknown source")
            );
        }
        chart
    }

    #[test]
    fn half_life_one_weighs_the_newest_reading_one_half() {
        assert!((warmed(Statistic::Mean).lambda() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ewma_score_is_the_smoothed_error_over_its_in_control_sd() {
        let mut chart = warmed(Statistic::Mean);
        let mut baseline = Baseline::new(4);
        for x in [9.0, 11.0, 9.0, 11.0] {
            baseline.residual(x);
        }
        let e1 = baseline.residual(12.0).unwrap();
        let e2 = baseline.residual(13.0).unwrap();
        let s1 = chart.observe(Some(12.0)).score.unwrap();
        let s2 = chart.observe(Some(13.0)).score.unwrap();
        let sd = (0.5f64 / 1.5).sqrt();
        assert!((s1 - (0.5 * e1).abs() / sd).abs() < 1e-9);
        assert!((s2 - (0.5 * e2 + 0.25 * e1).abs() / sd).abs() < 1e-9);
    }

    #[test]
    fn ew_variance_flags_fluctuation_around_the_same_mean() {
        let mut chart = warmed(Statistic::Variance);
        let flags: Vec<bool> = [4.0, 16.0, 4.0, 16.0]
            .iter()
            .map(|x| chart.observe(Some(*x)).flag.unwrap())
            .collect();
        assert!(flags.iter().any(|f| *f), "{flags:?}");
    }
}
