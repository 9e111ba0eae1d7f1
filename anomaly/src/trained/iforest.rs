//! Isolation Forest (Liu, Ting & Zhou, ICDM 2008) with scikit-learn's
//! semantics, so its models, scores and thresholds mean the same:
//!
//! - each of `n_estimators` trees is grown on `max_samples` rows drawn without
//!   replacement (default min(256, n)); a node splits on a feature drawn
//!   uniformly among those not constant in it, at a threshold uniform in
//!   [min, max) (`x ≤ t` goes left), until one row is left or the depth
//!   reaches ⌈log₂ max_samples⌉;
//! - a row's path length in a tree is the depth of its leaf plus c(size of
//!   the leaf), with c(n) = 2H(n − 1) − 2(n − 1)/n, H(i) = ln i + γ, the
//!   average path length of an unsuccessful search in a binary search tree
//!   (c(1) = 0, c(2) = 1);
//! - score s(x) = 2^(−E[h(x)] / c(max_samples)), in (0, 1]: near 1 isolated
//!   quickly (anomalous), ≤ 0.5 normal. scikit-learn's `score_samples` is −s.
//!
//! Trees are stored in scikit-learn's array layout ([`TreeArrays`]), so a
//! fitted `sklearn.ensemble.IsolationForest` can be imported exactly.

use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::Matrix;
use crate::{AnomalyError, Result};

/// Euler–Mascheroni constant γ.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// c(n): the average path length of an unsuccessful search in a binary
/// search tree of n nodes, which normalises path lengths.
pub fn average_path_length(n: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else if n <= 2.0 {
        1.0
    } else {
        2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
    }
}

/// Fitting parameters (scikit-learn's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IforestParams {
    /// Trees (default 100).
    pub n_estimators: usize,
    /// Rows per tree (`None`: min(256, n)).
    pub max_samples: Option<usize>,
    /// Seed of the row and split draws (default 0).
    pub seed: u64,
}

impl Default for IforestParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            max_samples: None,
            seed: 0,
        }
    }
}

/// One tree as scikit-learn's `tree_` arrays: per node its children (−1 at a
/// leaf), split feature and threshold (−2 at a leaf) and training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TreeArrays {
    /// Left child per node (rows with `x[feature] ≤ threshold`).
    pub left: Vec<i64>,
    /// Right child per node.
    pub right: Vec<i64>,
    /// Split feature per node.
    pub feature: Vec<i64>,
    /// Split threshold per node.
    pub threshold: Vec<f64>,
    /// Training rows that reached the node.
    pub samples: Vec<u64>,
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    /// Rows each tree was grown on (ψ in c(ψ)).
    pub max_samples: usize,
    /// The trees.
    pub trees: Vec<TreeArrays>,
}

const LEAF: i64 = -1;

/// Grows a forest on `data` (rows must be finite).
pub fn fit(data: &Matrix, params: &IforestParams) -> Result<IsolationForest> {
    let n = data.rows();
    if n < 2 {
        return Err(AnomalyError::Parameter(format!(
            "isolation forest needs at least 2 rows, got {n}"
        )));
    }
    if params.n_estimators == 0 {
        return Err(AnomalyError::Parameter("n_estimators must be ≥ 1".into()));
    }
    let max_samples = params.max_samples.unwrap_or(256).clamp(2, n);
    let max_depth = (max_samples as f64).log2().ceil() as usize;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
    let trees = (0..params.n_estimators)
        .map(|_| {
            let rows = index::sample(&mut rng, n, max_samples).into_vec();
            grow(data, rows, max_depth, &mut rng)
        })
        .collect();
    Ok(IsolationForest { max_samples, trees })
}

fn grow(
    data: &Matrix,
    mut rows: Vec<usize>,
    max_depth: usize,
    rng: &mut impl RngExt,
) -> TreeArrays {
    let mut tree = TreeArrays::default();
    // (node, rows range, depth)
    let mut stack = vec![(new_node(&mut tree, rows.len()), 0, rows.len(), 0)];
    let mut candidates = Vec::with_capacity(data.cols());
    while let Some((node, start, end, depth)) = stack.pop() {
        if depth >= max_depth || end - start <= 1 {
            continue;
        }
        let part = &mut rows[start..end];
        candidates.clear();
        for f in 0..data.cols() {
            let (lo, hi) = range(data, part, f);
            if lo < hi {
                candidates.push((f, lo, hi));
            }
        }
        if candidates.is_empty() {
            continue;
        }
        let (f, lo, hi) = candidates[rng.random_range(0..candidates.len())];
        let mut t = lo + (hi - lo) * rng.random::<f64>();
        if t >= hi {
            t = lo;
        }
        let mut split = 0;
        for i in 0..part.len() {
            if data.row(part[i])[f] <= t {
                part.swap(i, split);
                split += 1;
            }
        }
        let left = new_node(&mut tree, split);
        let right = new_node(&mut tree, part.len() - split);
        tree.left[node] = left as i64;
        tree.right[node] = right as i64;
        tree.feature[node] = f as i64;
        tree.threshold[node] = t;
        stack.push((right, start + split, end, depth + 1));
        stack.push((left, start, start + split, depth + 1));
    }
    tree
}

fn new_node(tree: &mut TreeArrays, samples: usize) -> usize {
    tree.left.push(LEAF);
    tree.right.push(LEAF);
    tree.feature.push(-2);
    tree.threshold.push(-2.0);
    tree.samples.push(samples as u64);
    tree.left.len() - 1
}

fn range(data: &Matrix, rows: &[usize], f: usize) -> (f64, f64) {
    rows.iter()
        .map(|&r| data.row(r)[f])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
}

/// A node ready for scoring, 16 bytes: children are adjacent (`left`,
/// `left + 1`), so a step is `left + (x > threshold)`; a leaf points at
/// itself with an infinite threshold, so every row takes the same number of
/// steps (no branch on leaf-ness).
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    feature: u32,
    left: u32,
}

impl Node {
    fn next(self, x: &[f64]) -> usize {
        self.left as usize + usize::from(x[self.feature as usize] > self.threshold)
    }
}

/// A validated node in the file's numbering.
#[derive(Debug, Clone, Copy)]
struct Checked {
    threshold: f64,
    feature: u32,
    children: Option<(usize, usize)>,
}

#[derive(Debug, Clone)]
struct CompiledTree {
    nodes: Vec<Node>,
    /// Path length at each leaf: depth + c(samples).
    value: Vec<f64>,
    depth: usize,
}

/// A forest checked against its feature count and laid out for scoring.
#[derive(Debug, Clone)]
pub struct IforestScorer {
    trees: Vec<CompiledTree>,
    normaliser: f64,
}

impl IsolationForest {
    /// Checks every tree's shape (array lengths, children in range and
    /// after their parent, features < `features`) and compiles it.
    pub fn compile(&self, features: usize) -> std::result::Result<IforestScorer, String> {
        if self.trees.is_empty() {
            return Err("the forest has no trees".into());
        }
        if self.max_samples < 1 {
            return Err("max_samples must be ≥ 1".into());
        }
        let trees = self
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| compile_tree(t, features).map_err(|e| format!("tree {i}: {e}")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(IforestScorer {
            normaliser: self.trees.len() as f64 * average_path_length(self.max_samples as f64),
            trees,
        })
    }
}

fn compile_tree(t: &TreeArrays, features: usize) -> std::result::Result<CompiledTree, String> {
    let n = t.left.len();
    if n == 0 {
        return Err("no nodes".into());
    }
    if [
        t.right.len(),
        t.feature.len(),
        t.threshold.len(),
        t.samples.len(),
    ] != [n; 4]
    {
        return Err("node arrays of different lengths".into());
    }
    let mut nodes = Vec::with_capacity(n);
    let mut value = vec![0.0; n];
    let mut depth_of = vec![usize::MAX; n];
    depth_of[0] = 0;
    let mut depth = 0;
    for i in 0..n {
        let d = depth_of[i];
        if d == usize::MAX {
            return Err(format!("node {i} is not reachable from the root"));
        }
        let (l, r) = (t.left[i], t.right[i]);
        if l == LEAF && r == LEAF {
            value[i] = d as f64 + average_path_length(t.samples[i] as f64);
            nodes.push(Checked {
                threshold: f64::INFINITY,
                feature: 0,
                children: None,
            });
            continue;
        }
        let child = |c: i64| -> std::result::Result<usize, String> {
            if c <= i as i64 || c >= n as i64 {
                return Err(format!("node {i} has child {c} (of {n} nodes)"));
            }
            Ok(c as usize)
        };
        let (l, r) = (child(l)?, child(r)?);
        let f = t.feature[i];
        if f < 0 || f >= features as i64 {
            return Err(format!(
                "node {i} splits on feature {f}, but the model has {features} features"
            ));
        }
        if !t.threshold[i].is_finite() {
            return Err(format!("node {i} has threshold {}", t.threshold[i]));
        }
        for c in [l, r] {
            if depth_of[c] != usize::MAX {
                return Err(format!("node {c} has two parents"));
            }
            depth_of[c] = d + 1;
        }
        depth = depth.max(d + 1);
        nodes.push(Checked {
            threshold: t.threshold[i],
            feature: f as u32,
            children: Some((l, r)),
        });
    }
    let (nodes, value) = relayout(&nodes, &value);
    Ok(CompiledTree {
        nodes,
        value,
        depth,
    })
}

/// Renumbers nodes breadth-first so each node's children are adjacent.
fn relayout(nodes: &[Checked], value: &[f64]) -> (Vec<Node>, Vec<f64>) {
    let n = nodes.len();
    let mut new_of = vec![0usize; n];
    let mut queue = std::collections::VecDeque::from([0usize]);
    let mut next = 1;
    let mut order = Vec::with_capacity(n);
    while let Some(old) = queue.pop_front() {
        order.push(old);
        if let Some((l, r)) = nodes[old].children {
            new_of[l] = next;
            new_of[r] = next + 1;
            next += 2;
            queue.extend([l, r]);
        }
    }
    let mut packed = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for old in order {
        let node = nodes[old];
        let left = node.children.map_or(new_of[old], |(l, _)| new_of[l]);
        packed.push(Node {
            threshold: node.threshold,
            feature: node.feature,
            left: left as u32,
        });
        values.push(value[old]);
    }
    (packed, values)
}

/// Rows scored together: their tree walks are independent, so the CPU
/// overlaps their memory loads.
const BLOCK: usize = 16;

impl IforestScorer {
    /// s(x) for one row of finite features.
    pub fn score(&self, x: &[f64]) -> f64 {
        let mut total = 0.0;
        for tree in &self.trees {
            let mut i = 0usize;
            for _ in 0..tree.depth {
                i = tree.nodes[i].next(x);
            }
            total += tree.value[i];
        }
        self.to_score(total)
    }

    fn to_score(&self, total_path: f64) -> f64 {
        if self.normaliser > 0.0 {
            (-total_path / self.normaliser).exp2()
        } else {
            1.0
        }
    }

    /// Scores every row of `rows` (finite features) into `out`.
    pub fn score_rows(&self, rows: &Matrix, out: &mut Vec<f64>) {
        out.clear();
        let mut start = 0;
        while start < rows.rows() {
            let count = BLOCK.min(rows.rows() - start);
            let block: Vec<&[f64]> = (start..start + count).map(|r| rows.row(r)).collect();
            let mut totals = [0.0; BLOCK];
            for tree in &self.trees {
                let mut at = [0usize; BLOCK];
                for _ in 0..tree.depth {
                    for (i, x) in at.iter_mut().zip(&block) {
                        *i = tree.nodes[*i].next(x);
                    }
                }
                for (total, i) in totals.iter_mut().zip(at).take(count) {
                    *total += tree.value[i];
                }
            }
            out.extend(totals[..count].iter().map(|&t| self.to_score(t)));
            start += count;
        }
    }
}

#[cfg(test)]
#[path = "iforest_tests.rs"]
mod tests;
