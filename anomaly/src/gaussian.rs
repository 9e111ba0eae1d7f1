//! Gaussian limits: per source, the running mean and standard deviation of
//! its readings (Welford); a reading outside mean ± q·σ, with q the
//! two-sided normal quantile of probability p (p = 0.999999 → ±4.89σ), is
//! flagged. Flagged readings do not move the limits, so a lasting fault stays
//! flagged instead of being learnt as normal.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::verdict::{Detector, Verdict, finite};
use crate::welford::Welford;
use crate::{AnomalyError, Result};

/// Parameters of [`GaussianLimits`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianParams {
    /// Probability mass inside the limits (default 0.999999).
    pub probability: f64,
    /// Readings before a source is scored (default 100).
    pub warmup: u64,
}

impl Default for GaussianParams {
    fn default() -> Self {
        Self {
            probability: 0.999_999,
            warmup: 100,
        }
    }
}

/// The two-sided normal quantile: P(|Z| ≤ q) = `probability`.
pub fn two_sided_quantile(probability: f64) -> Result<f64> {
    if !(probability > 0.0 && probability < 1.0) {
        return Err(AnomalyError::Parameter(format!(
            "probability must be in (0, 1), got {probability}"
        )));
    }
    let normal = Normal::standard();
    Ok(normal.inverse_cdf(0.5 + probability / 2.0))
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GaussianLimits {
    warmup: u64,
    q: f64,
    stats: Welford,
}

impl GaussianLimits {
    /// A detector with `params`.
    pub fn new(params: GaussianParams) -> Result<Self> {
        Ok(Self {
            warmup: params.warmup.max(2),
            q: two_sided_quantile(params.probability)?,
            stats: Welford::default(),
        })
    }

    /// The statistics learnt so far.
    pub fn stats(&self) -> &Welford {
        &self.stats
    }
}

impl Detector for GaussianLimits {
    fn save_state(&self) -> crate::Result<String> {
        crate::verdict::to_state(self)
    }

    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        let (Some(sd), true) = (self.stats.std_dev(), self.stats.count() >= self.warmup) else {
            self.stats.update(x);
            return Verdict::warming_up(self.stats.count() - 1, self.warmup);
        };
        let mean = self.stats.mean();
        let (lo, hi) = (mean - self.q * sd, mean + self.q * sd);
        let score = if sd > 0.0 {
            (x - mean).abs() / sd
        } else if x == mean {
            0.0
        } else {
            f64::INFINITY
        };
        let verdict = Verdict::scored(score, self.q, || {
            format!("value out of limits ({lo:.6}, {hi:.6})")
        });
        if verdict.flag == Some(false) {
            self.stats.update(x);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantile_of_0_999999_is_4_89_sigma() {
        let q = two_sided_quantile(0.999_999).unwrap();
        assert!((q - 4.891_638_5).abs() < 1e-6, "{q}");
        assert!((two_sided_quantile(0.95).unwrap() - 1.959_964).abs() < 1e-6);
        assert!(two_sided_quantile(1.0).is_err());
    }

    #[test]
    fn warms_up_then_flags_values_outside_the_limits() {
        let mut d = GaussianLimits::new(GaussianParams {
            probability: 0.999_999,
            warmup: 4,
        })
        .unwrap();
        for x in [9.0, 11.0, 9.0, 11.0] {
            let v = d.observe(Some(x));
            assert_eq!(v.flag, Some(false));
            assert!(v.reason.unwrap().starts_with("unknown source"));
        }
        // mean 10, sample sd = sqrt(4/3) = 1.1547; limits 10 ± 5.648
        let inside = d.observe(Some(15.0));
        assert_eq!(inside.flag, Some(false));
        assert!((inside.score.unwrap() - 5.0 / (4.0f64 / 3.0).sqrt()).abs() < 1e-9);
        let count = d.stats().count();
        let outside = d.observe(Some(30.0));
        assert_eq!(outside.flag, Some(true));
        assert!(outside.reason.unwrap().starts_with("value out of limits ("));
        assert_eq!(
            d.stats().count(),
            count,
            "a flagged reading does not move the limits"
        );
    }

    #[test]
    fn missing_and_non_finite_values_are_reported_not_learnt() {
        let mut d = GaussianLimits::new(GaussianParams::default()).unwrap();
        assert_eq!(d.observe(None).reason.as_deref(), Some("missing value"));
        assert_eq!(
            d.observe(Some(f64::NAN)).reason.as_deref(),
            Some("not a finite value (NaN)")
        );
        assert_eq!(d.stats().count(), 0);
    }
}
