//! The in-control baseline the control charts compare against, learnt from
//! a source's first `warmup` readings (phase I) and then frozen (phase II),
//! so a slow drift cannot teach a chart that it is normal.
//!
//! Sensors are autocorrelated (a reading is close to the previous one), which
//! breaks the independence every textbook control chart assumes: measured on
//! the simulator, charts on raw readings raise 20+ false alarms per
//! machine-day. So the baseline also learns the lag-1 autocorrelation φ and
//! hands the charts standardised one-step prediction errors
//! eₜ = ((xₜ − μ) − φ(xₜ₋₁ − μ)) / (σ√(1 − φ²)), close to independent with
//! mean 0 and variance 1 in control (AR(1) pre-whitening, Montgomery,
//! *Statistical Quality Control*, ch. 10). A sustained shift δ shows in eₜ
//! as δ(1 − φ)/(σ√(1 − φ²)).

use crate::welford::Welford;

/// In-control mean, standard deviation and lag-1 autocorrelation.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    warmup: u64,
    stats: Welford,
    /// Co-moment Σ(xₜ − x̄)(xₜ₋₁ − x̄) accumulated online.
    lag_comoment: f64,
    previous: Option<f64>,
    frozen: Option<Frozen>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Frozen {
    mean: f64,
    phi: f64,
    innovation_sd: f64,
}

impl Baseline {
    /// A baseline needing `warmup` readings (at least 3).
    pub fn new(warmup: u64) -> Self {
        Self {
            warmup: warmup.max(3),
            ..Self::default()
        }
    }

    /// Learns `x` while warming up (returns `None`), afterwards returns its
    /// standardised prediction error.
    pub fn residual(&mut self, x: f64) -> Option<f64> {
        let previous = self.previous.replace(x);
        if let Some(f) = self.frozen {
            let prev = previous.unwrap_or(f.mean);
            return Some(((x - f.mean) - f.phi * (prev - f.mean)) / f.innovation_sd);
        }
        let old_mean = self.stats.mean();
        self.stats.update(x);
        if let Some(prev) = previous {
            // Deviations from the running mean: the online co-moment update.
            self.lag_comoment += (x - self.stats.mean()) * (prev - old_mean);
        }
        if self.stats.count() >= self.warmup {
            self.freeze();
        }
        None
    }

    fn freeze(&mut self) {
        let Some(var) = self.stats.variance().filter(|v| *v > 0.0) else {
            return;
        };
        let n = self.stats.count() as f64;
        let phi = (self.lag_comoment / (n - 1.0) / var).clamp(-0.99, 0.99);
        self.frozen = Some(Frozen {
            mean: self.stats.mean(),
            phi,
            innovation_sd: (var * (1.0 - phi * phi)).sqrt(),
        });
    }

    /// The learnt mean and lag-1 autocorrelation, once frozen.
    pub fn learnt(&self) -> Option<(f64, f64)> {
        self.frozen.map(|f| (f.mean, f.phi))
    }

    /// Readings learnt and needed.
    pub fn progress(&self) -> (u64, u64) {
        (self.stats.count(), self.warmup)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn learns_the_lag_one_autocorrelation_of_an_ar1_series() {
        // xₜ = 0.8 xₜ₋₁ + εₜ with a deterministic ±1 innovation pattern.
        let mut b = Baseline::new(20_000);
        let mut x = 0.0;
        let mut seed = 12345u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = if (seed >> 33) & 1 == 0 { 1.0 } else { -1.0 };
            x = 0.8 * x + e;
            assert!(b.residual(x).is_none() || b.learnt().is_some());
        }
        let (mean, phi) = b.learnt().unwrap();
        assert!(mean.abs() < 0.2, "mean {mean}");
        assert!((phi - 0.8).abs() < 0.02, "phi {phi}");
        // Residual of the next step: (x' − μ − φ(x − μ)) / (σ√(1−φ²)) ≈ ε/1.
        let next = 0.8 * x + 1.0;
        let r = b.residual(next).unwrap();
        assert!((r - 1.0).abs() < 0.15, "residual {r}");
    }
}
