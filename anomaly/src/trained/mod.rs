//! Trained models: fitted offline from history (`spindle train`), stored as
//! model files, scored in SQL with `anomaly_model('name', f1, f2, …)`.
//!
//! | file | what |
//! |---|---|
//! | [`iforest`] | Isolation Forest (Liu, Ting & Zhou 2008; scikit-learn semantics) |
//! | [`hotelling`] | Hotelling T² over all features |
//! | [`pca`] | PCA T² and Q (squared prediction error) |
//! | [`linalg`] | the small dense linear algebra T² and PCA need |
//! | [`model`] | the model file: metadata, thresholds, the fitted body |
//! | [`drift`] | feature profiles, PSI and KS against recent data |
//! | [`store`] | a model directory, reloaded when a file changes |
//! | [`udf`] | the SQL function |
//!
//! Maths, parameters and defaults: `docs/models.md`.

pub mod drift;
pub mod hotelling;
pub mod iforest;
pub mod linalg;
pub mod model;
pub mod pca;
pub mod store;
pub mod udf;

use crate::{AnomalyError, Result};

/// Rows of features, row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// `data` holds `rows × cols` values, row by row.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(AnomalyError::Parameter(format!(
                "{rows} × {cols} matrix from {} values",
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// From rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        let data: Vec<f64> = rows.iter().flatten().copied().collect();
        Self::new(rows.len(), cols, data)
    }

    /// Row count.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Column count.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// All values, row by row.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Column `j` as a vector.
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows)
            .map(|i| self.data[i * self.cols + j])
            .collect()
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of `sorted` (ascending) with linear
/// interpolation between closest ranks, as numpy's default `percentile`.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let position = q * (n - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(n - 1);
    let fraction = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// Sorts finite values ascending.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [0, 25, 50, 90, 100])
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn matrix_shape_is_checked() {
        assert!(Matrix::new(2, 2, vec![1.0; 3]).is_err());
        let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.column(0), vec![1.0, 3.0]);
    }
}
