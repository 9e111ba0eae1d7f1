//! The in-control baseline the control charts compare against: mean and
//! standard deviation of a source's first `warmup` readings (phase I), then
//! frozen (phase II), so a slow drift cannot teach the chart that it is
//! normal.

use crate::welford::Welford;

/// In-control mean and standard deviation.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    warmup: u64,
    stats: Welford,
}

impl Baseline {
    /// A baseline needing `warmup` readings (at least 2).
    pub fn new(warmup: u64) -> Self {
        Self {
            warmup: warmup.max(2),
            stats: Welford::default(),
        }
    }

    /// Mean and standard deviation once warmed up (σ > 0).
    pub fn ready(&self) -> Option<(f64, f64)> {
        let sd = self.stats.std_dev()?;
        (self.stats.count() >= self.warmup && sd > 0.0).then(|| (self.stats.mean(), sd))
    }

    /// Learns a reading while warming up.
    pub fn learn(&mut self, x: f64) {
        if self.ready().is_none() {
            self.stats.update(x);
        }
    }

    /// Readings learnt and needed.
    pub fn progress(&self) -> (u64, u64) {
        (self.stats.count(), self.warmup)
    }
}
