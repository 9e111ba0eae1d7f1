//! Feature drift: a model file keeps, per feature, a profile of its training
//! distribution (101 quantiles, and decile bins with the share of training
//! rows in each); `spindle drift` compares recent values with it:
//!
//! - PSI, the population stability index over the training deciles:
//!   Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ), shares floored at 10⁻⁴. Rule of thumb: < 0.1
//!   stable, 0.1–0.25 moderate shift, > 0.25 drifted.
//! - KS, the two-sample Kolmogorov–Smirnov distance D = sup |F_train − F_recent|,
//!   F_train interpolated linearly between the stored percentiles (so D is
//!   exact to about 0.01), with the 5 % critical value 1.358·√((n + m)/(nm)).

use serde::{Deserialize, Serialize};

use super::{quantile, sorted};

/// The training distribution of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// Its name.
    pub feature: String,
    /// Training rows.
    pub rows: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (n − 1).
    pub std_dev: f64,
    /// The 0th to 100th percentiles.
    pub percentiles: Vec<f64>,
    /// Interior bin edges (the distinct deciles); bin i is (edge i−1, edge i].
    pub edges: Vec<f64>,
    /// Share of training rows per bin (edges + 1 values).
    pub shares: Vec<f64>,
}

/// Profiles `values` (non-finite values are left out).
pub fn profile(feature: &str, values: &[f64]) -> FeatureProfile {
    let s = sorted(values);
    let n = s.len();
    let mean = s.iter().sum::<f64>() / n.max(1) as f64;
    let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.saturating_sub(1).max(1) as f64;
    let percentiles: Vec<f64> = (0..=100)
        .filter_map(|i| quantile(&s, i as f64 / 100.0))
        .collect();
    let mut edges: Vec<f64> = (1..10)
        .filter_map(|i| quantile(&s, i as f64 / 10.0))
        .collect();
    edges.dedup();
    let shares = shares(&edges, &s);
    FeatureProfile {
        feature: feature.to_string(),
        rows: n,
        mean,
        std_dev: var.sqrt(),
        percentiles,
        edges,
        shares,
    }
}

/// Share of `sorted` values in each bin of `edges`.
fn shares(edges: &[f64], sorted: &[f64]) -> Vec<f64> {
    let n = sorted.len().max(1) as f64;
    let mut counts = vec![0usize; edges.len() + 1];
    let mut below = 0;
    for (i, edge) in edges.iter().enumerate() {
        let upto = sorted.partition_point(|x| x <= edge);
        counts[i] = upto - below;
        below = upto;
    }
    counts[edges.len()] = sorted.len() - below;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// One feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The feature.
    pub feature: String,
    /// Recent finite values compared.
    pub rows: usize,
    /// Recent mean.
    pub mean: f64,
    /// Population stability index.
    pub psi: f64,
    /// Kolmogorov–Smirnov distance.
    pub ks: f64,
    /// D above which the distributions differ at the 5 % level.
    pub ks_critical: f64,
    /// `stable`, `moderate` or `drifted` (by PSI).
    pub verdict: &'static str,
}

const FLOOR: f64 = 1e-4;

/// Compares recent `values` with the training `profile`.
pub fn compare(profile: &FeatureProfile, values: &[f64]) -> Drift {
    let s = sorted(values);
    let recent = shares(&profile.edges, &s);
    let psi = recent
        .iter()
        .zip(&profile.shares)
        .map(|(a, e)| {
            let (a, e) = (a.max(FLOOR), e.max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum::<f64>();
    let m = s.len();
    let ks = (0..m)
        .map(|j| {
            let f = train_cdf(&profile.percentiles, s[j]);
            (f - j as f64 / m as f64)
                .abs()
                .max((f - (j + 1) as f64 / m as f64).abs())
        })
        .fold(0.0, f64::max);
    let (n, mf) = (profile.rows as f64, m as f64);
    Drift {
        feature: profile.feature.clone(),
        rows: m,
        mean: s.iter().sum::<f64>() / mf.max(1.0),
        psi: if m == 0 { f64::NAN } else { psi },
        ks: if m == 0 { f64::NAN } else { ks },
        ks_critical: 1.358 * ((n + mf) / (n * mf)).sqrt(),
        verdict: match psi {
            _ if m == 0 => "no data",
            p if p < 0.1 => "stable",
            p if p <= 0.25 => "moderate",
            _ => "drifted",
        },
    }
}

/// The training CDF at `x`, linear between percentiles.
fn train_cdf(percentiles: &[f64], x: f64) -> f64 {
    let last = percentiles.len().saturating_sub(1);
    if last == 0 {
        return 0.5;
    }
    let upto = percentiles.partition_point(|p| *p <= x);
    if upto == 0 {
        return 0.0;
    }
    if upto > last {
        return 1.0;
    }
    let (lo, hi) = (percentiles[upto - 1], percentiles[upto]);
    let within = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
    ((upto - 1) as f64 + within) / last as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: usize, shift: f64) -> Vec<f64> {
        (0..n).map(|i| i as f64 / n as f64 + shift).collect()
    }

    #[test]
    fn the_same_distribution_is_stable() {
        let p = profile("x", &uniform(10_000, 0.0));
        assert_eq!(p.shares.len(), 10);
        assert!(p.shares.iter().all(|s| (s - 0.1).abs() < 1e-3));
        let d = compare(&p, &uniform(5_000, 0.0));
        assert!(d.psi < 0.01 && d.ks < 0.01, "{d:?}");
        assert_eq!(d.verdict, "stable");
    }

    #[test]
    fn a_shift_is_measured_by_hand() {
        let p = profile("x", &uniform(10_000, 0.0));
        // Shifted by 0.25: KS distance 0.25 exactly.
        let d = compare(&p, &uniform(10_000, 0.25));
        assert!((d.ks - 0.25).abs() < 0.01, "{d:?}");
        // Bins: 0.0 for the first two deciles, 0.05 for the third, 0.1 for
        // the next six and 0.35 above the top one.
        let expected: f64 = [0.0, 0.0, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.35]
            .iter()
            .map(|&a: &f64| (a.max(FLOOR) - 0.1) * (a.max(FLOOR) / 0.1).ln())
            .sum();
        assert!((d.psi - expected).abs() < 0.02, "{} vs {expected}", d.psi);
        assert_eq!(d.verdict, "drifted");
        assert!(d.ks > d.ks_critical);
    }

    #[test]
    fn no_recent_data_is_reported() {
        let p = profile("x", &uniform(100, 0.0));
        let d = compare(&p, &[f64::NAN]);
        assert_eq!(d.verdict, "no data");
        assert!(d.psi.is_nan());
    }
}
