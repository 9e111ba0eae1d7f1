//! Two-sided tabular CUSUM (Page 1954) on standardised readings
//! zₜ = (xₜ − μ₀)/σ₀ against the source's in-control baseline:
//! S⁺ₜ = max(0, S⁺ₜ₋₁ + zₜ − k), S⁻ₜ = max(0, S⁻ₜ₋₁ − zₜ − k); score =
//! max(S⁺, S⁻), flagged above h, after which both sums restart. `k` (slack,
//! default 0.5σ) is half the shift to detect; `h` (default 10σ) trades
//! detection delay for false alarms.

use crate::baseline::Baseline;
use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// Parameters of [`Cusum`].
#[derive(Debug, Clone, Copy, PartialEq)]
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
#[derive(Debug, Clone)]
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
    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        let Some((mean, sd)) = self.baseline.ready() else {
            self.baseline.learn(x);
            let (seen, needed) = self.baseline.progress();
            return Verdict::warming_up(seen - 1, needed);
        };
        let z = (x - mean) / sd;
        self.upper = (self.upper + z - self.params.slack).max(0.0);
        self.lower = (self.lower - z - self.params.slack).max(0.0);
        let (upper, lower) = (self.upper, self.lower);
        let verdict = Verdict::scored(upper.max(lower), self.params.threshold, || {
            let side = if upper >= lower { "above" } else { "below" };
            format!("cumulative shift {side} the baseline mean {mean:.6}")
        });
        if verdict.flag == Some(true) {
            self.upper = 0.0;
            self.lower = 0.0;
        } else {
            self.baseline.learn(x);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sums_by_hand_and_restart_after_an_alarm() {
        let params = CusumParams {
            slack: 0.5,
            threshold: 3.0,
            warmup: 4,
        };
        let mut c = Cusum::new(params).unwrap();
        for x in [9.0, 11.0, 9.0, 11.0] {
            c.observe(Some(x));
        }
        let sd = (4.0f64 / 3.0).sqrt();
        // z = 2/sd = 1.732 → S⁺ = 1.232
        let first = c.observe(Some(12.0)).score.unwrap();
        assert!((first - (2.0 / sd - 0.5)).abs() < 1e-12);
        // The baseline is frozen after the warm-up.
        let second = c.observe(Some(12.0));
        assert!((second.score.unwrap() - 2.0 * first).abs() < 1e-9);
        let third = c.observe(Some(14.0));
        assert_eq!(third.flag, Some(true));
        assert!(third.reason.unwrap().contains("above"));
        assert!(
            c.observe(Some(10.0)).score.unwrap() < 1e-9,
            "sums restart after an alarm"
        );
    }
}
