//! One sensor's readings: a random walk that recalibrates toward its
//! configured distribution.
//!
//! The walk works on the deviation `d = x − mean`. Each step starts from the
//! average of the past `n` deviations, shrinks it by `φ = 1 − recalibration`
//! and adds a step from the configured family:
//!
//! ```text
//! d(t) = φ · mean(d(t−1) … d(t−n)) + s · z(t),     z ~ family, E z = 0, Var z = 1
//! ```
//!
//! That is an AR(n) process with equal coefficients `φ/n`; it is stationary
//! because the coefficients are positive and sum to `φ < 1`. The step size `s`
//! is solved from the Yule–Walker equations so that the long-run standard
//! deviation is exactly the configured `std` (see [`step_scale`]), which is
//! what "recalibration keeps readings aligned with the configured
//! distribution" means in numbers.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, StudentT, Triangular, Uniform};

use crate::spec::{DistributionFamily, SensorSpec};

/// Unit-variance, zero-mean steps of one family.
#[derive(Debug, Clone)]
pub enum Innovation {
    /// Standard normal.
    Normal,
    /// Student's t rescaled to unit variance.
    StudentT(StudentT<f64>, f64),
    /// Uniform on ±√3.
    Uniform(Uniform<f64>),
    /// Triangular on ±√6.
    Triangular(Triangular<f64>),
}

impl Innovation {
    /// The unit-variance innovation of a family (`dof` is used by `student_t`).
    pub fn new(family: DistributionFamily, dof: f64) -> Self {
        // The spec is validated before we get here; fall back to normal
        // rather than panic if a constructor still refuses its parameters.
        match family {
            DistributionFamily::Normal => Self::Normal,
            DistributionFamily::StudentT => StudentT::new(dof)
                .map(|t| Self::StudentT(t, ((dof - 2.0) / dof).sqrt()))
                .unwrap_or(Self::Normal),
            DistributionFamily::Uniform => Uniform::new_inclusive(-3f64.sqrt(), 3f64.sqrt())
                .map(Self::Uniform)
                .unwrap_or(Self::Normal),
            DistributionFamily::Triangular => Triangular::new(-6f64.sqrt(), 6f64.sqrt(), 0.0)
                .map(Self::Triangular)
                .unwrap_or(Self::Normal),
        }
    }

    /// One draw.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Self::Normal => StandardNormal.sample(rng),
            Self::StudentT(t, scale) => t.sample(rng) * scale,
            Self::Uniform(u) => u.sample(rng),
            Self::Triangular(t) => t.sample(rng),
        }
    }
}

/// The immutable part of a sensor, shared by all machines.
#[derive(Debug, Clone)]
pub struct SensorModel {
    /// Configured long-run mean.
    pub mean: f64,
    /// Configured long-run standard deviation.
    pub std: f64,
    /// Lower clamp.
    pub min: f64,
    /// Upper clamp.
    pub max: f64,
    window: usize,
    /// `φ / n`: weight of each past deviation.
    coefficient: f64,
    /// `s`: the step scale that yields `std`.
    step: f64,
    innovation: Innovation,
}

impl SensorModel {
    /// Builds the model of a validated sensor spec.
    pub fn new(spec: &SensorSpec) -> Self {
        let phi = 1.0 - spec.recalibration;
        let window = spec.walk_window;
        Self {
            mean: spec.mean,
            std: spec.std,
            min: spec.min,
            max: spec.max,
            window,
            coefficient: phi / window as f64,
            step: spec.std * step_scale(phi, window),
            innovation: Innovation::new(spec.distribution, spec.dof),
        }
    }

    /// Fresh per-machine state, already run in so the first readings are
    /// drawn from the long-run distribution rather than sitting on the mean.
    pub fn initial_state<R: Rng + ?Sized>(&self, rng: &mut R) -> SensorState {
        let mut state = SensorState {
            history: vec![0.0; self.window],
            next: 0,
            sum: 0.0,
        };
        let burn_in = (20.0 / (1.0 - self.coefficient * self.window as f64)).min(2000.0) as usize;
        for _ in 0..burn_in.max(2 * self.window) {
            self.step(&mut state, rng);
        }
        state
    }

    /// Advances the walk one step and returns the new deviation from the mean.
    #[inline]
    pub fn step<R: Rng + ?Sized>(&self, state: &mut SensorState, rng: &mut R) -> f64 {
        let deviation = self.coefficient * state.sum + self.step * self.innovation.sample(rng);
        let slot = &mut state.history[state.next];
        state.sum += deviation - *slot;
        *slot = deviation;
        state.next = (state.next + 1) % self.window;
        deviation
    }

    /// Clamps a value to the physical bounds.
    #[inline]
    pub fn clamp(&self, value: f64) -> f64 {
        value.clamp(self.min, self.max)
    }
}

/// One machine's walk of one sensor: the last `n` deviations in a ring.
#[derive(Debug, Clone)]
pub struct SensorState {
    history: Vec<f64>,
    next: usize,
    sum: f64,
}

/// Step scale `s / σ` of the AR(n) walk with coefficients `φ/n` whose
/// stationary standard deviation is `σ`.
///
/// Yule–Walker: the autocorrelations satisfy `ρ(k) = Σᵢ aᵢ ρ(|k − i|)` for
/// k = 1…n with ρ(0) = 1, and the stationary variance is
/// `s² / (1 − Σᵢ aᵢ ρ(i))`. We solve the n×n linear system for ρ(1…n).
pub fn step_scale(phi: f64, n: usize) -> f64 {
    let a = phi / n as f64;
    let rho = solve_autocorrelations(a, n);
    let explained: f64 = rho.iter().map(|r| a * r).sum();
    (1.0 - explained).max(0.0).sqrt()
}

/// Solves the Yule–Walker system for ρ(1…n) by Gaussian elimination.
fn solve_autocorrelations(a: f64, n: usize) -> Vec<f64> {
    // Row k (1-based): ρ(k) − a Σ_{i≠k} ρ(|k−i|) = a   (the i = k term is a·ρ(0)).
    let mut m = vec![vec![0.0; n + 1]; n];
    for k in 1..=n {
        let row = &mut m[k - 1];
        row[k - 1] += 1.0;
        for i in 1..=n {
            let lag = k.abs_diff(i);
            if lag >= 1 {
                row[lag - 1] -= a;
            }
        }
        row[n] = a;
    }
    gaussian_elimination(m)
}

fn gaussian_elimination(mut m: Vec<Vec<f64>>) -> Vec<f64> {
    let n = m.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
            .unwrap_or(col);
        m.swap(col, pivot);
        let pivot_row = m[col].clone();
        for (row, values) in m.iter_mut().enumerate() {
            if row != col && pivot_row[col] != 0.0 {
                let factor = values[col] / pivot_row[col];
                for (value, pivot) in values[col..].iter_mut().zip(&pivot_row[col..]) {
                    *value -= factor * pivot;
                }
            }
        }
    }
    (0..n).map(|i| m[i][n] / m[i][i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar1_step_scale_matches_closed_form() {
        // AR(1): Var = s² / (1 − φ²).
        let phi: f64 = 0.9;
        assert!((step_scale(phi, 1) - (1.0 - phi * phi).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn independent_samples_need_full_step() {
        assert!((step_scale(0.0, 7) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn longer_memory_needs_smaller_steps() {
        assert!(step_scale(0.95, 10) < step_scale(0.5, 10));
    }
}
