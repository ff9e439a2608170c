//! Per-feature explanations of a score.
//!
//! Along a row's path in each tree, a split on feature f that sends the row
//! into a child holding m of the node's n training rows isolates it by
//! log2(n / m) bits; the bits are credited to f. Summed over trees and
//! normalised, this says which features set the row apart from the data the
//! forest was grown on: an anomaly isolated by one lopsided split on one
//! feature credits almost everything to that feature, while a normal row
//! spreads small, balanced splits across many. (Close in spirit to DIFFI,
//! Carletti et al. 2020, which also weighs splits by how unbalanced they are
//! for the row.)

use super::IsolationForest;
use super::build::to_f32;
use crate::error::{DetectError, check_row};

/// Share of the isolation of one row owed to each feature; sums to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub contributions: Vec<f64>,
}

impl Explanation {
    /// (feature index, share), largest share first; ties by feature index.
    pub fn ranked(&self) -> Vec<(usize, f64)> {
        let mut r: Vec<(usize, f64)> = self.contributions.iter().copied().enumerate().collect();
        r.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        r
    }
}

impl IsolationForest {
    /// Explains the score of one row.
    pub fn explain_row(&self, row: &[f64]) -> Result<Explanation, DetectError> {
        check_row(row, self.n_features)?;
        let x: Vec<f32> = row.iter().map(|&v| to_f32(v)).collect();
        let trees = &self.trees;
        let mut bits = vec![0.0f64; row.len()];
        for t in 0..trees.len() {
            let (mut i, _) = trees.range(t);
            while trees.right[i] != 0 {
                let f = trees.feature[i] as usize;
                let child = if x[f] <= trees.threshold[i] {
                    i + 1
                } else {
                    trees.right[i] as usize
                };
                bits[f] += log2_of(trees.n_samples[i]) - log2_of(trees.n_samples[child]);
                i = child;
            }
        }
        let total: f64 = bits.iter().sum();
        if total > 0.0 {
            bits.iter_mut().for_each(|b| *b /= total);
        } else {
            // No tree could split (e.g. all training rows equal): nothing
            // singles out a feature, so each gets an equal share.
            let share = 1.0 / row.len() as f64;
            bits.iter_mut().for_each(|b| *b = share);
        }
        Ok(Explanation {
            contributions: bits,
        })
    }
}

/// `n`'s base-2 logarithm, from a table for the sample counts trees hold
/// (`max_samples` rarely passes a few thousand): explaining an alert takes
/// one per node on its path in every tree, and `log2` was most of its time.
fn log2_of(n: u32) -> f64 {
    const TABLED: usize = 8192;
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..TABLED).map(|n| (n as f64).log2()).collect());
    match table.get(n as usize) {
        Some(&v) => v,
        None => (n as f64).log2(),
    }
}
