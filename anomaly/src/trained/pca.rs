//! PCA monitoring with T² and Q (MacGregor & Kourti 1995): features are
//! standardised with the training mean and standard deviation,
//! z = (x − μ)/σ; the correlation matrix's k leading eigenvectors P (k chosen
//! to explain `variance` of the total, or given) span normal variation.
//!
//! - T² = Σᵢ tᵢ²/λᵢ with t = Pᵀz: how far along the normal directions;
//! - Q = ‖z − P t‖²: the squared prediction error, variation the normal
//!   directions cannot explain (a broken correlation);
//! - limits at `probability`: T² by the F distribution (as Hotelling's, with
//!   k), Q by Jackson & Mudholkar (1979) from the discarded eigenvalues.
//!
//! score = max(T²/T²_limit, Q/Q_limit): 1 is the edge of either limit.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::Matrix;
use super::hotelling::{enough_rows, factor, upper_limit};
use super::linalg::{mean_covariance, symmetric_eigen};
use crate::{AnomalyError, Result};

/// Fitting parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcaParams {
    /// Components kept (`None`: the fewest explaining `variance`).
    pub components: Option<usize>,
    /// Share of the total variance the kept components explain (default 0.9).
    pub variance: f64,
    /// Probability inside the T² and Q limits (default 0.999999).
    pub probability: f64,
}

impl Default for PcaParams {
    fn default() -> Self {
        Self {
            components: None,
            variance: 0.9,
            probability: 0.999_999,
        }
    }
}

/// A fitted PCA model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaModel {
    /// Training mean per feature.
    pub mean: Vec<f64>,
    /// Training standard deviation per feature.
    pub scale: Vec<f64>,
    /// Eigenvalues of the correlation matrix, descending (all p).
    pub eigenvalues: Vec<f64>,
    /// The k kept eigenvectors, row-major p × k (column i is component i).
    pub components: Vec<f64>,
    /// k.
    pub kept: usize,
    /// T² limit.
    pub t2_limit: f64,
    /// Q limit (`f64::MAX` when every component is kept: no residual, Q = 0).
    pub q_limit: f64,
}

/// Fits the model; `names` name features in errors.
pub fn fit(data: &Matrix, names: &[String], params: &PcaParams) -> Result<PcaModel> {
    enough_rows("PCA", data)?;
    let (n, p) = (data.rows(), data.cols());
    let (mean, cov) = mean_covariance(data);
    factor(&cov, p, names)?;
    let scale: Vec<f64> = (0..p).map(|i| cov[i * p + i].sqrt()).collect();
    let corr: Vec<f64> = (0..p * p)
        .map(|k| cov[k] / (scale[k / p] * scale[k % p]))
        .collect();
    let (eigenvalues, vectors) = symmetric_eigen(&corr, p);
    let total: f64 = eigenvalues.iter().sum();
    let kept = match params.components {
        Some(k) if k == 0 || k > p => {
            return Err(AnomalyError::Parameter(format!(
                "components must be in 1..={p}, got {k}"
            )));
        }
        Some(k) => k,
        None => {
            let mut sum = 0.0;
            eigenvalues
                .iter()
                .position(|l| {
                    sum += l;
                    sum >= params.variance * total
                })
                .map_or(p, |i| i + 1)
        }
    };
    let components = (0..p * kept)
        .map(|k| vectors[(k / kept) * p + k % kept])
        .collect();
    let t2_limit = upper_limit(params.probability, n, kept)?;
    let q_limit = q_limit(&eigenvalues[kept..], params.probability);
    Ok(PcaModel {
        mean,
        scale,
        eigenvalues,
        components,
        kept,
        t2_limit,
        q_limit,
    })
}

/// Jackson–Mudholkar: with θᵢ = Σ λʲ (j > k) for i = 1, 2, 3 and
/// h₀ = 1 − 2θ₁θ₃/(3θ₂²), Q_α = θ₁ [c_α √(2θ₂h₀²)/θ₁ + 1 + θ₂h₀(h₀ − 1)/θ₁²]^(1/h₀).
pub fn q_limit(discarded: &[f64], probability: f64) -> f64 {
    let theta = |i: i32| discarded.iter().map(|l| l.max(0.0).powi(i)).sum::<f64>();
    let (t1, t2, t3) = (theta(1), theta(2), theta(3));
    if t1 <= 0.0 {
        // JSON has no ∞; Q is 0 anyway.
        return f64::MAX;
    }
    let h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2);
    let c = Normal::standard().inverse_cdf(probability);
    t1 * (c * (2.0 * t2 * h0 * h0).sqrt() / t1 + 1.0 + t2 * h0 * (h0 - 1.0) / (t1 * t1))
        .powf(1.0 / h0)
}

/// One row's statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcaScore {
    /// T² in the kept components.
    pub t2: f64,
    /// Q, the squared residual.
    pub q: f64,
    /// max(T²/T²_limit, Q/Q_limit).
    pub score: f64,
}

impl PcaModel {
    /// Checks the shapes against `features`.
    pub fn check(&self, features: usize) -> std::result::Result<(), String> {
        let p = features;
        let k = self.kept;
        for (what, len, expected) in [
            ("mean", self.mean.len(), p),
            ("scale", self.scale.len(), p),
            ("eigenvalues", self.eigenvalues.len(), p),
            ("components", self.components.len(), p * k),
        ] {
            if len != expected {
                return Err(format!("{what} has {len} values, expected {expected}"));
            }
        }
        if k == 0 || k > p {
            return Err(format!("kept = {k} components of {p} features"));
        }
        let positive = |v: f64| v > 0.0 && !v.is_nan();
        if !self.scale.iter().all(|s| positive(*s) && s.is_finite())
            || !self.eigenvalues[..k].iter().all(|l| positive(*l))
            || !positive(self.t2_limit)
            || !positive(self.q_limit)
        {
            return Err("non-positive scale, eigenvalue or limit".into());
        }
        Ok(())
    }

    /// Standardised row, scores and the residual per feature.
    pub fn score_with_residual(&self, x: &[f64], residual: &mut Vec<f64>) -> PcaScore {
        let (p, k) = (self.mean.len(), self.kept);
        residual.clear();
        residual.extend(
            x.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .map(|((x, m), s)| (x - m) / s),
        );
        let mut t2 = 0.0;
        let mut t = vec![0.0; k];
        for (i, ti) in t.iter_mut().enumerate() {
            *ti = (0..p)
                .map(|j| self.components[j * k + i] * residual[j])
                .sum();
            t2 += *ti * *ti / self.eigenvalues[i];
        }
        for (j, r) in residual.iter_mut().enumerate() {
            *r -= (0..k)
                .map(|i| self.components[j * k + i] * t[i])
                .sum::<f64>();
        }
        let q: f64 = residual.iter().map(|r| r * r).sum();
        PcaScore {
            t2,
            q,
            score: (t2 / self.t2_limit).max(q / self.q_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data() -> Matrix {
        // a and b move together, c is independent.
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let t = i as f64;
                let a = (t * 0.37).sin() * 3.0 + 10.0;
                let b = 2.0 * a + (t * 1.91).cos() * 0.3;
                let c = (t * 0.73).cos() * 1.5;
                vec![a, b, c]
            })
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    fn names() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    #[test]
    fn t2_plus_q_equals_the_full_standardised_distance() {
        // With all components kept, T² is Hotelling's T² of the
        // standardised data, i.e. of the raw data: a direct cross-check.
        let data = data();
        let all = fit(
            &data,
            &names(),
            &PcaParams {
                components: Some(3),
                ..PcaParams::default()
            },
        )
        .unwrap();
        let hotelling = crate::trained::hotelling::fit(&data, &names()).unwrap();
        let mut r = Vec::new();
        for x in [[10.0, 20.0, 0.0], [12.0, 19.0, 1.0], [8.0, 16.5, -2.0]] {
            let s = all.score_with_residual(&x, &mut r);
            let t2 = hotelling.score(&x);
            assert!((s.t2 - t2).abs() < 1e-8 * t2.max(1.0), "{} vs {t2}", s.t2);
            assert!(s.q.abs() < 1e-18 + 1e-12 * t2);
        }
        assert_eq!(all.q_limit, f64::MAX);
    }

    #[test]
    fn a_broken_correlation_shows_in_q() {
        let model = fit(&data(), &names(), &PcaParams::default()).unwrap();
        assert_eq!(model.kept, 2, "{:?}", model.eigenvalues);
        let mut r = Vec::new();
        let along = model.score_with_residual(&[11.0, 22.0, 0.0], &mut r);
        let across = model.score_with_residual(&[11.0, 18.0, 0.0], &mut r);
        assert!(across.q > 50.0 * along.q, "{across:?} vs {along:?}");
        assert!(across.score > 1.0 && along.score < 1.0);
        // The residual points at a and b, not c.
        assert!(r[2].abs() < r[0].abs() && r[2].abs() < r[1].abs());
    }

    #[test]
    fn q_limit_by_hand() {
        // One discarded eigenvalue λ: θ₁ = λ, θ₂ = λ², θ₃ = λ³, h₀ = 1/3.
        let (l, p) = (0.5f64, 0.99f64);
        let c = Normal::standard().inverse_cdf(p);
        let h0 = 1.0 / 3.0;
        let expected = l
            * (c * (2.0 * l * l * h0 * h0).sqrt() / l + 1.0 + l * l * h0 * (h0 - 1.0) / (l * l))
                .powf(3.0);
        assert!((q_limit(&[l], p) - expected).abs() < 1e-12);
        // ≈ λ·χ²₁ quantile scale: between the mean and 10× it.
        assert!(expected > l && expected < 10.0 * l);
    }
}
