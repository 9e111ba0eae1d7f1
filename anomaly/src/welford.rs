//! Running mean and variance in one pass (Welford 1962), mergeable across
//! partitions (Chan, Golub & LeVeque 1979), so per-source statistics can be
//! split and combined without a second pass or loss of precision.

/// Count, mean and sum of squared deviations of the values seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds one value.
    pub fn update(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Folds in the statistics of another, disjoint set of values.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        self.m2 +=
            other.m2 + delta * delta * (self.count as f64 * other.count as f64) / count as f64;
        self.mean += delta * other.count as f64 / count as f64;
        self.count = count;
    }

    /// Values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their mean (0 before any).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (n − 1), from two values on.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// Sample standard deviation, from two values on.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn two_pass(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    fn values() -> Vec<f64> {
        // Large offset, small spread: where naive sum-of-squares fails.
        (0..1000)
            .map(|i| 1e6 + ((i * 7919) % 101) as f64 * 0.01)
            .collect()
    }

    #[test]
    fn matches_the_two_pass_mean_and_variance() {
        let values = values();
        let mut w = Welford::default();
        values.iter().for_each(|x| w.update(*x));
        let (mean, var) = two_pass(&values);
        assert!((w.mean() - mean).abs() <= 1e-12 * mean.abs());
        assert!((w.variance().unwrap() - var).abs() <= 1e-7 * var);
    }

    #[test]
    fn merging_partitions_equals_one_pass() {
        let values = values();
        let (mut all, mut left, mut right) =
            (Welford::default(), Welford::default(), Welford::default());
        for (i, x) in values.iter().enumerate() {
            all.update(*x);
            if i % 3 == 0 {
                left.update(*x)
            } else {
                right.update(*x)
            }
        }
        left.merge(&right);
        assert_eq!(left.count(), all.count());
        assert!((left.mean() - all.mean()).abs() <= 1e-12 * all.mean());
        assert!(
            (left.variance().unwrap() - all.variance().unwrap()).abs()
                <= 1e-7 * all.variance().unwrap()
        );
    }

    #[test]
    fn variance_needs_two_values() {
        let mut w = Welford::default();
        assert_eq!(w.variance(), None);
        w.update(3.0);
        assert_eq!(w.variance(), None);
        w.update(5.0);
        assert_eq!(w.variance(), Some(2.0));
    }
}
