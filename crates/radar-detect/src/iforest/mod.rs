//! Isolation Forest (Liu, Ting & Zhou, 2008) with scikit-learn's semantics.
//!
//! Scores follow radar's convention, higher = more anomalous: `score(x)` is
//! scikit-learn's `-score_samples(x)`, i.e. `2^(-E[h(x)] / c(ψ))` in (0, 1).
//! The threshold is 0.5 for `contamination = auto` (scikit-learn's offset
//! −0.5), or the `1 − contamination` quantile of the training scores.

mod build;
mod explain;
mod layout;
mod serial;

use std::hash::{BuildHasher, Hasher};

use radar_core::matrix::MatrixView;
use radar_core::{Rng, rng::derive_seed};
use rayon::prelude::*;

use crate::error::{DetectError, invalid};
use crate::metrics::quantile;
use layout::Layout;

pub(crate) use build::sample_without_replacement;

/// Number of rows drawn to grow each tree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum MaxSamples {
    /// min(256, n_rows)
    #[default]
    Auto,
    /// That many rows (at most n_rows).
    Count(usize),
    /// This share of the rows, in (0, 1].
    Fraction(f64),
}

/// Number of features each tree may split on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    Count(usize),
    /// This share of the features, in (0, 1] (at least one).
    Fraction(f64),
}

impl Default for MaxFeatures {
    fn default() -> Self {
        MaxFeatures::Fraction(1.0)
    }
}

/// How the decision threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Contamination {
    /// Threshold 0.5 on the score, as in the original paper.
    #[default]
    Auto,
    /// Expected share of anomalies in the training data, in (0, 0.5]: the
    /// threshold is that upper quantile of the training scores.
    Fraction(f64),
}

/// Parameters, named and defaulted as scikit-learn's `IsolationForest`.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForestParams {
    pub n_estimators: usize,
    pub max_samples: MaxSamples,
    pub max_features: MaxFeatures,
    pub bootstrap: bool,
    pub contamination: Contamination,
    /// Seed of every random choice. `None` draws one, which the fitted model
    /// records (see [`IsolationForest::seed`]) so any fit can be reproduced.
    pub random_state: Option<u64>,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: MaxSamples::Auto,
            max_features: MaxFeatures::default(),
            bootstrap: false,
            contamination: Contamination::Auto,
            random_state: None,
        }
    }
}

impl IsolationForestParams {
    /// Checks what can be checked without the data (every range but those
    /// of counts against the data's size), so a bad parameter fails before
    /// any data is read.
    pub fn validate(&self) -> Result<(), DetectError> {
        // A data set large enough for any count leaves only the ranges.
        let cols = match self.max_features {
            MaxFeatures::Count(k) => k.max(1),
            MaxFeatures::Fraction(_) => 1 << 20,
        };
        self.resolve(u32::MAX as usize, cols).map(|_| ())
    }

    /// Checks the parameters and resolves sample and feature counts for a
    /// data set of `rows` × `cols`.
    fn resolve(&self, rows: usize, cols: usize) -> Result<(usize, usize), DetectError> {
        if self.n_estimators == 0 {
            return Err(invalid("n_estimators", "must be at least 1, got 0"));
        }
        if self.n_estimators > u32::MAX as usize {
            return Err(invalid("n_estimators", "must fit in 32 bits"));
        }
        if rows > u32::MAX as usize {
            return Err(invalid(
                "max_samples",
                format!("{rows} rows exceed the 2^32 rows one fit can take"),
            ));
        }
        let max_samples = match self.max_samples {
            MaxSamples::Auto => rows.min(256),
            MaxSamples::Count(0) => {
                return Err(invalid("max_samples", "must be at least 1, got 0"));
            }
            // As scikit-learn: a count above the data size uses all rows.
            MaxSamples::Count(k) => k.min(rows),
            MaxSamples::Fraction(f) => {
                if !(f > 0.0 && f <= 1.0) {
                    return Err(invalid(
                        "max_samples",
                        format!("a fraction must be in (0, 1], got {f}"),
                    ));
                }
                let k = (f * rows as f64) as usize;
                if k == 0 {
                    return Err(invalid(
                        "max_samples",
                        format!("fraction {f} of {rows} rows is less than one row"),
                    ));
                }
                k
            }
        };
        let max_features = match self.max_features {
            MaxFeatures::Count(k) if k == 0 || k > cols => {
                return Err(invalid(
                    "max_features",
                    format!("must be between 1 and the {cols} features, got {k}"),
                ));
            }
            MaxFeatures::Count(k) => k,
            MaxFeatures::Fraction(f) => {
                if !(f > 0.0 && f <= 1.0) {
                    return Err(invalid(
                        "max_features",
                        format!("a fraction must be in (0, 1], got {f}"),
                    ));
                }
                ((f * cols as f64) as usize).max(1)
            }
        };
        if let Contamination::Fraction(c) = self.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(invalid(
                "contamination",
                format!("must be in (0, 0.5] or auto, got {c}"),
            ));
        }
        Ok((max_samples, max_features))
    }
}

/// c(n): the average path length of an unsuccessful search in a binary
/// search tree of n points, which a leaf holding n training rows adds to the
/// depth at which a row lands in it.
pub fn path_length_correction(n: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// The trees of a forest, flat (struct of arrays). Each tree is in preorder:
/// an internal node's left child is the node after it, its right child is
/// `right[i]`; `right[i] == 0` marks a leaf. `x <= threshold` goes left.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Trees {
    /// Start of each tree in the node arrays, plus the end of the last.
    tree_start: Vec<u32>,
    feature: Vec<u32>,
    threshold: Vec<f32>,
    right: Vec<u32>,
    /// Training rows (with repeats, when bootstrapping) that reached the node.
    n_samples: Vec<u32>,
}

impl Trees {
    fn len(&self) -> usize {
        self.tree_start.len().saturating_sub(1)
    }

    fn range(&self, t: usize) -> (usize, usize) {
        (self.tree_start[t] as usize, self.tree_start[t + 1] as usize)
    }

    fn depth(&self, t: usize) -> u32 {
        let (lo, _) = self.range(t);
        let mut max = 0;
        let mut stack = vec![(lo, 0u32)];
        while let Some((i, d)) = stack.pop() {
            max = max.max(d);
            if self.right[i] != 0 {
                stack.push((i + 1, d + 1));
                stack.push((self.right[i] as usize, d + 1));
            }
        }
        max
    }
}

/// A fitted Isolation Forest.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    params: IsolationForestParams,
    max_samples: usize,
    max_features: usize,
    n_features: usize,
    threshold: f64,
    trees: Trees,
    layout: Layout,
}

impl PartialEq for IsolationForest {
    fn eq(&self, other: &Self) -> bool {
        // The layout is derived from the rest.
        self.params == other.params
            && self.max_samples == other.max_samples
            && self.max_features == other.max_features
            && self.n_features == other.n_features
            && self.threshold.to_bits() == other.threshold.to_bits()
            && self.trees == other.trees
    }
}

/// Rows per parallel task (a multiple of the scoring block).
const PAR_CHUNK: usize = 64 * layout::BLOCK;

impl IsolationForest {
    /// Grows the forest on `x` (one row per sample). Trees are grown in
    /// parallel; the result depends only on the data and the seed.
    pub fn fit(params: &IsolationForestParams, x: MatrixView<'_>) -> Result<Self, DetectError> {
        let (rows, cols) = (x.rows(), x.cols());
        if rows == 0 {
            return Err(DetectError::Empty);
        }
        // A MatrixView holds finite values only: nothing to re-check here.
        let (max_samples, max_features) = params.resolve(rows, cols)?;
        if cols >= 1 << 26 {
            return Err(invalid(
                "n_features",
                format!("{cols} features exceed the 2^26 supported"),
            ));
        }
        let seed = params.random_state.unwrap_or_else(|| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            h.finish()
        });
        let max_depth = (max_samples.max(2) as f64).log2().ceil() as u32;
        let grown: Vec<build::Tree> = (0..params.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = Rng::seed_from_u64(derive_seed(seed, t as u64));
                let features: Vec<u32> = if max_features == cols {
                    (0..cols as u32).collect()
                } else {
                    build::sample_without_replacement(cols, max_features, &mut rng)
                };
                let rows_drawn = if params.bootstrap {
                    (0..max_samples)
                        .map(|_| rng.below(rows as u64) as u32)
                        .collect()
                } else {
                    build::sample_without_replacement(rows, max_samples, &mut rng)
                };
                let spec = build::TreeSpec {
                    x,
                    rows: rows_drawn,
                    features,
                    max_depth,
                };
                build::grow(&spec, &mut rng)
            })
            .collect();
        let mut trees = Trees {
            tree_start: vec![0],
            ..Trees::default()
        };
        for tree in grown {
            build::append(&mut trees, tree);
        }
        let layout = Layout::compile(&trees);
        let mut model = IsolationForest {
            params: IsolationForestParams {
                random_state: Some(seed),
                ..params.clone()
            },
            max_samples,
            max_features,
            n_features: cols,
            threshold: 0.5,
            trees,
            layout,
        };
        if let Contamination::Fraction(c) = params.contamination {
            let scores = model.score(x)?;
            // scikit-learn's offset_ is the `c` quantile of score_samples,
            // which is the `1 - c` quantile of our negated scores.
            model.threshold = quantile(&scores, 1.0 - c).unwrap_or(0.5);
        }
        Ok(model)
    }

    /// The parameters, with `random_state` set to the seed actually used.
    pub fn params(&self) -> &IsolationForestParams {
        &self.params
    }

    pub fn seed(&self) -> u64 {
        self.params.random_state.unwrap_or(0)
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Rows each tree was grown on (scikit-learn's `max_samples_`).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    pub fn max_features(&self) -> usize {
        self.max_features
    }

    /// Scores above this are anomalies.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Replaces the threshold (e.g. one calibrated to an alert budget).
    pub fn set_threshold(&mut self, threshold: f64) -> Result<(), DetectError> {
        if !(threshold.is_finite()) {
            return Err(invalid(
                "threshold",
                format!("must be finite, got {threshold}"),
            ));
        }
        self.threshold = threshold;
        Ok(())
    }

    #[inline]
    fn score_from_path_sum(&self, sum: f64) -> f64 {
        let denominator = self.trees.len() as f64 * path_length_correction(self.max_samples);
        if denominator == 0.0 {
            // One-row samples: every row is as isolated as any other.
            return 0.5;
        }
        (-sum / denominator).exp2()
    }

    fn check_width(&self, cols: usize) -> Result<(), DetectError> {
        if cols != self.n_features {
            return Err(DetectError::FeatureCount {
                expected: self.n_features,
                got: cols,
            });
        }
        Ok(())
    }

    /// Anomaly scores of all rows, in parallel over row chunks.
    pub fn score(&self, x: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        let mut out = vec![0.0; x.rows()];
        self.score_into(x, &mut out)?;
        Ok(out)
    }

    /// As [`score`](Self::score), writing into `out` (one slot per row).
    pub fn score_into(&self, x: MatrixView<'_>, out: &mut [f64]) -> Result<(), DetectError> {
        self.check_width(x.cols())?;
        if out.len() != x.rows() {
            return Err(invalid(
                "out",
                format!("has {} slots for {} rows", out.len(), x.rows()),
            ));
        }
        out.par_chunks_mut(PAR_CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let start = c * PAR_CHUNK;
                self.layout
                    .path_sums(x.slice_rows(start, start + out.len()), out);
                for o in out.iter_mut() {
                    *o = self.score_from_path_sum(*o);
                }
            });
        Ok(())
    }

    /// The anomaly score of one row, without touching the thread pool.
    pub fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.check_width(row.len())?;
        let keys = layout::row_keys(row).map_err(|(column, value)| DetectError::NonFinite {
            row: 0,
            column,
            value,
        })?;
        Ok(self.score_from_path_sum(self.layout.path_sum(&keys)))
    }

    /// scikit-learn's `decision_function`: threshold − score, negative for
    /// anomalies.
    pub fn decision_function(&self, x: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        let mut scores = self.score(x)?;
        for s in scores.iter_mut() {
            *s = self.threshold - *s;
        }
        Ok(scores)
    }

    /// `true` for rows scored strictly above the threshold (scikit-learn's
    /// `predict` == -1).
    pub fn predict(&self, x: MatrixView<'_>) -> Result<Vec<bool>, DetectError> {
        Ok(self
            .score(x)?
            .into_iter()
            .map(|s| s > self.threshold)
            .collect())
    }
}

#[cfg(test)]
mod tests;
