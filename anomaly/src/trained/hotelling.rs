//! Hotelling's T² over all of a machine's features: with the training mean
//! μ and sample covariance S, T²(x) = (x − μ)ᵀ S⁻¹ (x − μ). One statistic
//! sees every sensor and their correlations, so a reading whose sensors
//! disagree with each other is caught even when each is inside its own
//! limits. Per-feature contributions dⱼ·(S⁻¹d)ⱼ (d = x − μ) sum to T² and
//! name the sensors behind an alarm.
//!
//! Limit for a new observation (phase II, Montgomery §11.3):
//! UCL = p(n + 1)(n − 1) / (n(n − p)) · F⁻¹(probability; p, n − p).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::Matrix;
use super::linalg::{cholesky, inverse_from_cholesky, mean_covariance};
use crate::{AnomalyError, Result};

/// A fitted T² model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotellingT2 {
    /// Training mean per feature.
    pub mean: Vec<f64>,
    /// S⁻¹, row-major p × p.
    pub inverse_covariance: Vec<f64>,
    /// Training rows (n in the limit).
    pub rows: usize,
}

/// Fits μ and S⁻¹; `names` name the features in errors.
pub fn fit(data: &Matrix, names: &[String]) -> Result<HotellingT2> {
    enough_rows("T²", data)?;
    let (mean, cov) = mean_covariance(data);
    let p = data.cols();
    let l = factor(&cov, p, names)?;
    Ok(HotellingT2 {
        mean,
        inverse_covariance: inverse_from_cholesky(&l, p),
        rows: data.rows(),
    })
}

/// A covariance of p features needs more than p + 1 rows.
pub(crate) fn enough_rows(model: &str, data: &Matrix) -> Result<()> {
    let (n, p) = (data.rows(), data.cols());
    if n <= p + 1 {
        return Err(AnomalyError::Parameter(format!(
            "{model} over {p} features needs more than {} rows, got {n}",
            p + 1
        )));
    }
    Ok(())
}

/// The Cholesky factor of a covariance, or an error naming the constant or
/// collinear feature.
pub(crate) fn factor(cov: &[f64], p: usize, names: &[String]) -> Result<Vec<f64>> {
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    if let Some(i) = (0..p).find(|&i| cov[i * p + i] <= 0.0) {
        return Err(AnomalyError::Parameter(format!(
            "feature {} is constant in the training data",
            name(i)
        )));
    }
    cholesky(cov, p).map_err(|i| {
        AnomalyError::Parameter(format!(
            "feature {} is a linear combination of the features before it in the training data",
            name(i)
        ))
    })
}

/// The phase-II upper control limit of T² at `probability` for a model of
/// `p` features fitted on `n` rows.
pub fn upper_limit(probability: f64, n: usize, p: usize) -> Result<f64> {
    if !(probability > 0.0 && probability < 1.0) || n <= p {
        return Err(AnomalyError::Parameter(format!(
            "T² limit needs probability in (0, 1) and n > p, got {probability}, n = {n}, p = {p}"
        )));
    }
    let (n, pf) = (n as f64, p as f64);
    let f = FisherSnedecor::new(pf, n - pf)
        .map_err(|e| AnomalyError::Parameter(format!("F({pf}, {}): {e}", n - pf)))?;
    Ok(pf * (n + 1.0) * (n - 1.0) / (n * (n - pf)) * f.inverse_cdf(probability))
}

impl HotellingT2 {
    /// Checks the shapes against `features`.
    pub fn check(&self, features: usize) -> std::result::Result<(), String> {
        if self.mean.len() != features {
            return Err(format!(
                "mean has {} values for {features} features",
                self.mean.len()
            ));
        }
        if self.inverse_covariance.len() != features * features {
            return Err(format!(
                "inverse_covariance has {} values, expected {features} × {features}",
                self.inverse_covariance.len()
            ));
        }
        if self
            .mean
            .iter()
            .chain(&self.inverse_covariance)
            .any(|v| !v.is_finite())
        {
            return Err("non-finite values in mean or inverse_covariance".into());
        }
        Ok(())
    }

    /// T²(x) and each feature's contribution dⱼ·(S⁻¹d)ⱼ.
    pub fn score_with_contributions(&self, x: &[f64], contributions: &mut Vec<f64>) -> f64 {
        let p = self.mean.len();
        contributions.clear();
        let d: Vec<f64> = x.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        for j in 0..p {
            let row = &self.inverse_covariance[j * p..(j + 1) * p];
            let sd: f64 = row.iter().zip(&d).map(|(a, b)| a * b).sum();
            contributions.push(d[j] * sd);
        }
        contributions.iter().sum()
    }

    /// T²(x).
    pub fn score(&self, x: &[f64]) -> f64 {
        let p = self.mean.len();
        let mut total = 0.0;
        for j in 0..p {
            let dj = x[j] - self.mean[j];
            let row = &self.inverse_covariance[j * p..(j + 1) * p];
            let sd: f64 = row
                .iter()
                .zip(x.iter().zip(&self.mean))
                .map(|(a, (x, m))| a * (x - m))
                .sum();
            total += dj * sd;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data() -> Matrix {
        // Two correlated features and a third, 8 rows.
        Matrix::from_rows(&[
            vec![1.0, 2.0, 0.5],
            vec![2.0, 2.9, 0.1],
            vec![3.0, 4.2, 0.7],
            vec![4.0, 5.1, 0.2],
            vec![5.0, 5.8, 0.9],
            vec![6.0, 7.2, 0.4],
            vec![7.0, 8.1, 0.3],
            vec![8.0, 8.8, 0.8],
        ])
        .unwrap()
    }

    /// T² by the textbook route: the covariance inverted by Gauss–Jordan
    /// elimination, then the quadratic form.
    fn direct(data: &Matrix, x: &[f64]) -> f64 {
        let (n, p) = (data.rows(), data.cols());
        let mean: Vec<f64> = (0..p)
            .map(|j| data.column(j).iter().sum::<f64>() / n as f64)
            .collect();
        let mut a = vec![vec![0.0; 2 * p]; p];
        for i in 0..p {
            for j in 0..p {
                a[i][j] = (0..n)
                    .map(|r| (data.row(r)[i] - mean[i]) * (data.row(r)[j] - mean[j]))
                    .sum::<f64>()
                    / (n - 1) as f64;
            }
            a[i][p + i] = 1.0;
        }
        for c in 0..p {
            let pivot = (c..p)
                .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
                .unwrap();
            a.swap(c, pivot);
            let v = a[c][c];
            a[c].iter_mut().for_each(|x| *x /= v);
            for r in 0..p {
                if r != c {
                    let f = a[r][c];
                    let row_c = a[c].clone();
                    a[r].iter_mut().zip(row_c).for_each(|(x, y)| *x -= f * y);
                }
            }
        }
        let d: Vec<f64> = x.iter().zip(&mean).map(|(x, m)| x - m).collect();
        (0..p)
            .map(|i| (0..p).map(|j| d[i] * a[i][p + j] * d[j]).sum::<f64>())
            .sum()
    }

    #[test]
    fn t2_equals_the_direct_matrix_computation() {
        let data = data();
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let model = fit(&data, &names).unwrap();
        let mut contributions = Vec::new();
        for x in [[4.5, 5.0, 0.5], [2.0, 7.0, 0.5], [9.0, 1.0, 2.0]] {
            let expected = direct(&data, &x);
            let t2 = model.score(&x);
            assert!(
                (t2 - expected).abs() < 1e-9 * expected.max(1.0),
                "{t2} vs {expected}"
            );
            let total = model.score_with_contributions(&x, &mut contributions);
            assert!((total - t2).abs() < 1e-9 * t2.max(1.0));
        }
        // Breaking the a–b correlation costs more than moving along it.
        assert!(model.score(&[2.0, 7.0, 0.5]) > model.score(&[7.0, 8.0, 0.5]));
    }

    #[test]
    fn the_limit_follows_the_f_distribution() {
        // p = 2, n = 30, 0.99: 2·31·29/(30·28) · F₀.₉₉(2, 28) = 2.140476 · 5.452937
        let ucl = upper_limit(0.99, 30, 2).unwrap();
        assert!(
            (ucl - 2.140_476_190_476 * 5.452_937_4).abs() < 1e-4,
            "{ucl}"
        );
        assert!(upper_limit(1.0, 30, 2).is_err());
    }

    #[test]
    fn constant_or_collinear_features_are_named() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let constant = Matrix::from_rows(&[
            vec![1.0, 3.0],
            vec![2.0, 3.0],
            vec![4.0, 3.0],
            vec![5.0, 3.0],
        ])
        .unwrap();
        let e = fit(&constant, &names).unwrap_err().to_string();
        assert!(e.contains("feature b is constant"), "{e}");
        let collinear = Matrix::from_rows(&[
            vec![1.0, 2.0],
            vec![2.0, 4.0],
            vec![4.0, 8.0],
            vec![5.0, 10.0],
        ])
        .unwrap();
        let e = fit(&collinear, &names).unwrap_err().to_string();
        assert!(e.contains("feature b is a linear combination"), "{e}");
    }
}
