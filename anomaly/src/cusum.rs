//! Two-sided tabular CUSUM (Page 1954) on the source's standardised
//! prediction errors zₜ (see [`crate::baseline`]):
//! S⁺ₜ = max(0, S⁺ₜ₋₁ + zₜ − k), S⁻ₜ = max(0, S⁻ₜ₋₁ − zₜ − k); score =
//! max(S⁺, S⁻), flagged above h, after which both sums restart. `k` (slack,
//! default 0.5σ) is half the shift to detect; `h` (default 10σ) trades
//! detection delay for false alarms.

use crate::baseline::Baseline;
use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// Parameters of [`Cusum`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CusumParams {
    /// Slack k, in σ (default 0.5).
    pub slack: f64,
    /// Decision interval h, in σ (default 10).
    pub threshold: f64,
    /// Readings in the baseline (default 300).
    pub warmup: u64,
}

impl Default for CusumParams {
    fn default() -> Self {
        Self {
            slack: 0.5,
            threshold: 10.0,
            warmup: 300,
        }
    }
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cusum {
    params: CusumParams,
    baseline: Baseline,
    upper: f64,
    lower: f64,
}

impl Cusum {
    /// A detector with `params`.
    pub fn new(params: CusumParams) -> Result<Self> {
        if !(params.slack.is_finite() && params.slack >= 0.0 && params.threshold > 0.0) {
            return Err(AnomalyError::Parameter(format!(
                "slack must be ≥ 0 and threshold > 0, got {} and {}",
                params.slack, params.threshold
            )));
        }
        Ok(Self {
            params,
            baseline: Baseline::new(params.warmup),
            upper: 0.0,
            lower: 0.0,
        })
    }
}

impl Detector for Cusum {
    fn save_state(&self) -> crate::Result<String> {
        crate::verdict::to_state(self)
    }

    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        let Some(z) = self.baseline.residual(x) else {
            let (seen, needed) = self.baseline.progress();
            return Verdict::warming_up(seen - 1, needed);
        };
        self.upper = (self.upper + z - self.params.slack).max(0.0);
        self.lower = (self.lower - z - self.params.slack).max(0.0);
        let (upper, lower) = (self.upper, self.lower);
        let verdict = Verdict::scored(upper.max(lower), self.params.threshold, || {
            let side = if upper >= lower { "above" } else { "below" };
            format!("cumulative shift {side} the expected value")
        });
        if verdict.flag == Some(true) {
            self.upper = 0.0;
            self.lower = 0.0;
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sums_the_errors_and_restarts_after_an_alarm() {
        let params = CusumParams {
            slack: 0.5,
            threshold: 3.0,
            warmup: 4,
        };
        let mut c = Cusum::new(params).unwrap();
        let mut b = Baseline::new(4);
        for x in [9.0, 11.0, 9.0, 11.0] {
            c.observe(Some(x));
            b.residual(x);
        }
        let mut upper = 0.0f64;
        let mut lower = 0.0f64;
        let mut alarmed = false;
        for x in [12.0, 13.0, 14.0, 15.0, 16.0] {
            let e = b.residual(x).unwrap();
            upper = (upper + e - 0.5).max(0.0);
            lower = (lower - e - 0.5).max(0.0);
            let v = c.observe(Some(x));
            assert!((v.score.unwrap() - upper.max(lower)).abs() < 1e-9, "{v:?}");
            if v.flag == Some(true) {
                alarmed = true;
                upper = 0.0;
                lower = 0.0;
            }
        }
        assert!(alarmed, "a rising series alarms");
    }
}
