//! The dense linear algebra T² and PCA need, for a handful of features
//! (p ≲ 50): mean and covariance, Cholesky factorisation and solves, and the
//! symmetric eigendecomposition by cyclic Jacobi rotations (slow in p³ per
//! sweep but accurate to machine precision, and p is small). Square
//! matrices are row-major `Vec<f64>` of p × p.

use super::Matrix;

/// Column means and the sample covariance (divisor n − 1), two-pass.
pub fn mean_covariance(data: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, p) = (data.rows(), data.cols());
    let mut mean = vec![0.0; p];
    for i in 0..n {
        for (m, x) in mean.iter_mut().zip(data.row(i)) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let mut cov = vec![0.0; p * p];
    let mut d = vec![0.0; p];
    for i in 0..n {
        for ((d, x), m) in d.iter_mut().zip(data.row(i)).zip(&mean) {
            *d = x - m;
        }
        for a in 0..p {
            for b in a..p {
                cov[a * p + b] += d[a] * d[b];
            }
        }
    }
    let divisor = n.saturating_sub(1).max(1) as f64;
    for a in 0..p {
        for b in a..p {
            let v = cov[a * p + b] / divisor;
            cov[a * p + b] = v;
            cov[b * p + a] = v;
        }
    }
    (mean, cov)
}

/// The lower-triangular L with A = L Lᵀ, or the first pivot that is not
/// positive (A not positive definite), counting a pivot below 10⁻¹⁰ of its
/// diagonal entry as zero (a feature that is, up to rounding, a linear
/// combination of the ones before it).
pub fn cholesky(a: &[f64], p: usize) -> Result<Vec<f64>, usize> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut sum = a[i * p + j];
            for k in 0..j {
                sum -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if sum <= 1e-10 * a[i * p + i] || !sum.is_finite() {
                    return Err(i);
                }
                l[i * p + i] = sum.sqrt();
            } else {
                l[i * p + j] = sum / l[j * p + j];
            }
        }
    }
    Ok(l)
}

/// Solves L y = b (forward substitution) in place.
pub fn forward_substitute(l: &[f64], p: usize, b: &mut [f64]) {
    for i in 0..p {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * p + k] * b[k];
        }
        b[i] = sum / l[i * p + i];
    }
}

/// Solves Lᵀ x = y (back substitution) in place.
pub fn back_substitute(l: &[f64], p: usize, y: &mut [f64]) {
    for i in (0..p).rev() {
        let mut sum = y[i];
        for k in i + 1..p {
            sum -= l[k * p + i] * y[k];
        }
        y[i] = sum / l[i * p + i];
    }
}

/// A⁻¹ from A's Cholesky factor L.
pub fn inverse_from_cholesky(l: &[f64], p: usize) -> Vec<f64> {
    let mut inv = vec![0.0; p * p];
    let mut column = vec![0.0; p];
    for j in 0..p {
        column.iter_mut().for_each(|c| *c = 0.0);
        column[j] = 1.0;
        forward_substitute(l, p, &mut column);
        back_substitute(l, p, &mut column);
        for i in 0..p {
            inv[i * p + j] = column[i];
        }
    }
    inv
}

/// Eigenvalues (descending) and unit eigenvectors (column k of the
/// returned p × p matrix belongs to value k) of a symmetric matrix.
pub fn symmetric_eigen(a: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..p)
            .flat_map(|i| (0..p).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * p + j].powi(2))
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum::<f64>();
        if off <= 1e-30 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for q in 1..p {
            for r in 0..q {
                rotate(&mut m, &mut v, p, r, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&x, &y| m[y * p + y].total_cmp(&m[x * p + x]));
    let values = order.iter().map(|&k| m[k * p + k]).collect();
    let mut vectors = vec![0.0; p * p];
    for (new, &old) in order.iter().enumerate() {
        for i in 0..p {
            vectors[i * p + new] = v[i * p + old];
        }
    }
    (values, vectors)
}

/// One Jacobi rotation zeroing m[r][q].
fn rotate(m: &mut [f64], v: &mut [f64], p: usize, r: usize, q: usize) {
    let apq = m[r * p + q];
    if apq == 0.0 {
        return;
    }
    let theta = (m[q * p + q] - m[r * p + r]) / (2.0 * apq);
    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
    let t = if theta == 0.0 { 1.0 } else { t };
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    for k in 0..p {
        let (mkr, mkq) = (m[k * p + r], m[k * p + q]);
        m[k * p + r] = c * mkr - s * mkq;
        m[k * p + q] = s * mkr + c * mkq;
    }
    for k in 0..p {
        let (mrk, mqk) = (m[r * p + k], m[q * p + k]);
        m[r * p + k] = c * mrk - s * mqk;
        m[q * p + k] = s * mrk + c * mqk;
    }
    for k in 0..p {
        let (vkr, vkq) = (v[k * p + r], v[k * p + q]);
        v[k * p + r] = c * vkr - s * vkq;
        v[k * p + q] = s * vkr + c * vkq;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn multiply(a: &[f64], b: &[f64], p: usize) -> Vec<f64> {
        let mut c = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..p {
                c[i * p + j] = (0..p).map(|k| a[i * p + k] * b[k * p + j]).sum();
            }
        }
        c
    }

    const A: [f64; 9] = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];

    #[test]
    fn covariance_by_hand() {
        let data = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 6.0], vec![5.0, 7.0]]).unwrap();
        let (mean, cov) = mean_covariance(&data);
        assert_eq!(mean, vec![3.0, 5.0]);
        // deviations (−2, −3), (0, 1), (2, 2): sums 8, 10, 14 over n − 1 = 2
        assert_eq!(cov, vec![4.0, 5.0, 5.0, 7.0]);
    }

    #[test]
    fn cholesky_inverse_times_matrix_is_identity() {
        let l = cholesky(&A, 3).unwrap();
        let llt = multiply(
            &l,
            &(0..9).map(|k| l[(k % 3) * 3 + k / 3]).collect::<Vec<_>>(),
            3,
        );
        for (x, y) in llt.iter().zip(A) {
            assert!((x - y).abs() < 1e-12);
        }
        let inv = inverse_from_cholesky(&l, 3);
        let id = multiply(&A, &inv, 3);
        for i in 0..3 {
            for j in 0..3 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * 3 + j] - expected).abs() < 1e-12);
            }
        }
        // 2 × 2 by hand: [[2, 1], [1, 2]]⁻¹ = [[2, −1], [−1, 2]] / 3
        let inv2 = inverse_from_cholesky(&cholesky(&[2.0, 1.0, 1.0, 2.0], 2).unwrap(), 2);
        for (x, y) in inv2
            .iter()
            .zip([2.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0])
        {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn a_singular_matrix_has_no_cholesky_factor() {
        assert_eq!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2), Err(1));
    }

    #[test]
    fn eigenpairs_satisfy_a_v_equals_lambda_v() {
        let (values, vectors) = symmetric_eigen(&A, 3);
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        let trace: f64 = values.iter().sum();
        assert!((trace - 12.0).abs() < 1e-10);
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| A[i * 3 + j] * vectors[j * 3 + k]).sum();
                assert!((av - values[k] * vectors[i * 3 + k]).abs() < 1e-10);
            }
        }
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1.
        let (v2, _) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((v2[0] - 3.0).abs() < 1e-12 && (v2[1] - 1.0).abs() < 1e-12);
    }
}
