//! Extended Isolation Forest (Hariri, Carrasco Kind & Brunner, 2021):
//! an Isolation Forest whose splits are random hyperplanes instead of
//! axis-parallel cuts, so the score has no axis-aligned artefacts and
//! anomalies that only a combination of features gives away are isolated
//! early.
//!
//! Each split draws a normal vector over `extension_level + 1` features
//! (all of them by default; 0 is the classic forest) with N(0, 1)
//! components divided by each feature's standard deviation in the node
//! (as isotree's `standardize_data`: without it, a feature counted in
//! thousands sets every direction and the others are never looked at),
//! and a cut drawn uniformly between the smallest and the largest
//! projection `Σ w_j (x_j − c_j)` of the node's rows (c: the node's mean);
//! a row goes left when its projection is at most the cut. (Hariri et al.
//! draw an intercept point in the node's bounding box instead; in many
//! dimensions that hyperplane mostly misses the rows and the split is
//! wasted — isotree cuts the projection, and so does radar.) Scores are
//! `2^(−E[h(x)] / c(ψ))`, higher = more anomalous, as the Isolation
//! Forest's.
//!
//! Invariants: each tree is stored in preorder (an internal node's left
//! child follows it, its right child is `right[i]`, strictly after it and
//! inside the tree; `right[i] == 0` marks a leaf), every internal node has
//! exactly `k = extension_level + 1` (feature, weight, centre) triples and
//! a cut,
//! features are distinct and in range, and every number is finite. Model
//! files are checked against all of this when read.

use radar_core::{MatrixView, Rng, rng::derive_seed};
use rayon::prelude::*;

use crate::codec::{self, DecodeError, ModelKind, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};
use crate::iforest::{Contamination, path_length_correction, sample_without_replacement};
use crate::metrics::quantile;

#[derive(Debug, Clone, PartialEq)]
pub struct EifParams {
    pub n_trees: usize,
    /// Rows drawn (without replacement) to grow each tree; at most the
    /// data's.
    pub sample_size: usize,
    /// Features a split combines, minus one; `None`: all of them.
    pub extension_level: Option<usize>,
    pub contamination: Contamination,
    pub seed: u64,
}

impl Default for EifParams {
    fn default() -> Self {
        EifParams {
            n_trees: 100,
            sample_size: 256,
            extension_level: None,
            contamination: Contamination::Auto,
            seed: 0,
        }
    }
}

impl EifParams {
    /// Checks what does not depend on the data.
    pub fn validate(&self) -> Result<(), DetectError> {
        if self.n_trees == 0 || self.n_trees > 100_000 {
            return Err(invalid(
                "n_trees",
                format!("must be in 1..=100000, got {}", self.n_trees),
            ));
        }
        if self.sample_size < 2 || self.sample_size > u32::MAX as usize {
            return Err(invalid(
                "sample_size",
                format!("must be at least 2, got {}", self.sample_size),
            ));
        }
        if let Contamination::Fraction(c) = self.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(invalid(
                "contamination",
                format!("must be in (0, 0.5] or auto, got {c}"),
            ));
        }
        Ok(())
    }

    /// Features per split for `d` features.
    fn per_split(&self, d: usize) -> Result<usize, DetectError> {
        match self.extension_level {
            None => Ok(d),
            Some(e) if e < d => Ok(e + 1),
            Some(e) => Err(invalid(
                "extension_level",
                format!("must be below the {d} features, got {e}"),
            )),
        }
    }
}

/// The forest's nodes, flat.
#[derive(Debug, Clone, PartialEq, Default)]
struct Nodes {
    /// Start of each tree, plus the end of the last.
    tree_start: Vec<u32>,
    right: Vec<u32>,
    /// Training rows that reached the node.
    n: Vec<u32>,
    /// Per node (leaves too, unused there): `k` features, weights and
    /// centre coordinates, and the cut on the projection.
    feature: Vec<u32>,
    weight: Vec<f32>,
    point: Vec<f32>,
    cut: Vec<f32>,
}

/// A fitted (or, before `fit`, empty) Extended Isolation Forest.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedIsolationForest {
    params: EifParams,
    n_features: usize,
    /// Features per split.
    k: usize,
    /// Rows each tree was grown on (ψ).
    psi: usize,
    threshold: f64,
    nodes: Nodes,
}

/// One tree while it grows.
struct Grower<'a> {
    x: MatrixView<'a>,
    k: usize,
    max_depth: u32,
    rng: Rng,
    nodes: Nodes,
}

impl Grower<'_> {
    fn grow(&mut self, rows: &mut [u32], depth: u32) {
        let at = self.nodes.right.len();
        let d = self.x.cols();
        self.nodes.right.push(0);
        self.nodes.n.push(rows.len() as u32);
        let features: Vec<u32> = if self.k == d {
            (0..d as u32).collect()
        } else {
            sample_without_replacement(d, self.k, &mut self.rng)
        };
        let mut weight = Vec::with_capacity(self.k);
        let mut point = Vec::with_capacity(self.k);
        let mut spread = false;
        for &f in &features {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for &r in rows.iter() {
                let v = self.x.row(r as usize)[f as usize];
                lo = lo.min(v);
                hi = hi.max(v);
                sum += v;
                sum_sq += v * v;
            }
            spread |= hi > lo;
            // Each coefficient over the node's deviation of its feature, so
            // the hyperplane's direction does not follow the features'
            // units; a feature constant here takes no part.
            let n = rows.len().max(1) as f64;
            let sd = (sum_sq / n - (sum / n).powi(2)).max(0.0).sqrt();
            let w = if hi > lo && sd > 0.0 {
                self.rng.normal() / sd
            } else {
                self.rng.normal();
                0.0
            };
            weight.push(if (w as f32).is_finite() {
                w as f32
            } else {
                0.0
            });
            let centre = sum / n;
            point.push(if (centre as f32).is_finite() {
                centre as f32
            } else {
                0.0
            });
        }
        // The cut, uniform over the projections of the node's rows (as
        // stored, so scoring routes training rows as growing did).
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        if spread {
            for &r in rows.iter() {
                let v = side(self.x.row(r as usize), &features, &weight, &point);
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let cut = (lo + (hi - lo) * self.rng.next_f64()) as f32;
        let cut = if cut.is_finite() { cut } else { 0.0 };
        self.nodes.feature.extend_from_slice(&features);
        self.nodes.weight.extend_from_slice(&weight);
        self.nodes.point.extend_from_slice(&point);
        self.nodes.cut.push(cut);
        if depth >= self.max_depth || rows.len() <= 1 || !spread || hi <= lo {
            return;
        }
        // Partition: rows at or below the cut first.
        let mut split = 0;
        for i in 0..rows.len() {
            let row = self.x.row(rows[i] as usize);
            if side(row, &features, &weight, &point) <= cut as f64 {
                rows.swap(i, split);
                split += 1;
            }
        }
        let (left, right) = rows.split_at_mut(split);
        self.grow(left, depth + 1);
        self.nodes.right[at] = self.nodes.right.len() as u32;
        self.grow(right, depth + 1);
    }
}

/// Σ w_j (x_j − c_j): the row's projection, compared with the node's cut.
#[inline]
fn side(row: &[f64], features: &[u32], weight: &[f32], point: &[f32]) -> f64 {
    features
        .iter()
        .zip(weight)
        .zip(point)
        .map(|((&f, &w), &p)| w as f64 * (row[f as usize] - p as f64))
        .sum()
}

impl ExtendedIsolationForest {
    /// An unfitted forest over `n_features` columns.
    pub fn new(params: EifParams, n_features: usize) -> Result<Self, DetectError> {
        params.validate()?;
        if n_features == 0 {
            return Err(invalid("n_features", "must be at least 1"));
        }
        let k = params.per_split(n_features)?;
        Ok(ExtendedIsolationForest {
            params,
            n_features,
            k,
            psi: 0,
            threshold: 0.5,
            nodes: Nodes::default(),
        })
    }

    pub fn fit(params: &EifParams, data: MatrixView<'_>) -> Result<Self, DetectError> {
        let mut f = ExtendedIsolationForest::new(params.clone(), data.cols())?;
        f.refit(data)?;
        Ok(f)
    }

    pub fn params(&self) -> &EifParams {
        &self.params
    }

    fn refit(&mut self, x: MatrixView<'_>) -> Result<(), DetectError> {
        if x.rows() == 0 {
            return Err(DetectError::Empty);
        }
        if x.cols() != self.n_features {
            return Err(DetectError::FeatureCount {
                expected: self.n_features,
                got: x.cols(),
            });
        }
        let psi = self.params.sample_size.min(x.rows());
        let max_depth = (psi.max(2) as f64).log2().ceil() as u32;
        let (k, seed) = (self.k, self.params.seed);
        let trees: Vec<Nodes> = (0..self.params.n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = Rng::seed_from_u64(derive_seed(seed, t as u64));
                let mut rows = sample_without_replacement(x.rows(), psi, &mut rng);
                let mut g = Grower {
                    x,
                    k,
                    max_depth,
                    rng,
                    nodes: Nodes::default(),
                };
                g.grow(&mut rows, 0);
                g.nodes
            })
            .collect();
        let mut nodes = Nodes {
            tree_start: vec![0],
            ..Nodes::default()
        };
        for t in trees {
            let base = nodes.right.len() as u32;
            nodes
                .right
                .extend(t.right.iter().map(|&r| if r == 0 { 0 } else { r + base }));
            nodes.n.extend_from_slice(&t.n);
            nodes.feature.extend_from_slice(&t.feature);
            nodes.weight.extend_from_slice(&t.weight);
            nodes.point.extend_from_slice(&t.point);
            nodes.cut.extend_from_slice(&t.cut);
            nodes.tree_start.push(nodes.right.len() as u32);
        }
        self.nodes = nodes;
        self.psi = psi;
        self.threshold = 0.5;
        if let Contamination::Fraction(c) = self.params.contamination {
            let scores: Vec<f64> = (0..x.rows())
                .into_par_iter()
                .map(|i| self.score_unchecked(x.row(i)))
                .collect();
            self.threshold = quantile(&scores, 1.0 - c).unwrap_or(0.5);
        }
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.nodes.tree_start.len() > 1
    }

    /// The node triples of node `i`.
    #[inline]
    fn split(&self, i: usize) -> (&[u32], &[f32], &[f32]) {
        let r = i * self.k..(i + 1) * self.k;
        (
            &self.nodes.feature[r.clone()],
            &self.nodes.weight[r.clone()],
            &self.nodes.point[r],
        )
    }

    /// Walks tree `t` with `row`, calling `visit(node, went_to)` at every
    /// internal node; returns the leaf.
    #[inline]
    fn walk(&self, t: usize, row: &[f64], mut visit: impl FnMut(usize, usize)) -> usize {
        let mut i = self.nodes.tree_start[t] as usize;
        while self.nodes.right[i] != 0 {
            let (f, w, p) = self.split(i);
            let next = if side(row, f, w, p) <= self.nodes.cut[i] as f64 {
                i + 1
            } else {
                self.nodes.right[i] as usize
            };
            visit(i, next);
            i = next;
        }
        i
    }

    fn score_unchecked(&self, row: &[f64]) -> f64 {
        let trees = self.nodes.tree_start.len() - 1;
        let mut total = 0.0;
        for t in 0..trees {
            let mut depth = 0u32;
            let leaf = self.walk(t, row, |_, _| depth += 1);
            total += depth as f64 + path_length_correction(self.nodes.n[leaf] as usize);
        }
        let mean = total / trees as f64;
        let c = path_length_correction(self.psi).max(f64::MIN_POSITIVE);
        (-mean / c).exp2()
    }

    /// Per-feature shares of the row's isolation: at each split on the
    /// row's path, the bits it isolated the row by (log2 of the node's rows
    /// over the child's, an empty child counting half a row) are shared
    /// among the split's features by |w_j (x_j − c_j)|, each one's pull on
    /// which side the row fell.
    fn explain_unchecked(&self, row: &[f64]) -> Vec<f64> {
        let mut bits = vec![0.0; self.n_features];
        for t in 0..self.nodes.tree_start.len() - 1 {
            self.walk(t, row, |node, child| {
                let n = self.nodes.n[node] as f64;
                let m = (self.nodes.n[child] as f64).max(0.5);
                let gained = (n / m).log2().max(0.0);
                let (features, w, p) = self.split(node);
                let pulls: Vec<f64> = features
                    .iter()
                    .zip(w)
                    .zip(p)
                    .map(|((&f, &w), &p)| (w as f64 * (row[f as usize] - p as f64)).abs())
                    .collect();
                let total: f64 = pulls.iter().sum();
                for (&f, pull) in features.iter().zip(&pulls) {
                    bits[f as usize] += if total > 0.0 {
                        gained * pull / total
                    } else {
                        gained / features.len() as f64
                    };
                }
            });
        }
        let sum: f64 = bits.iter().sum();
        if sum > 0.0 {
            bits.iter_mut().for_each(|b| *b /= sum);
        }
        bits
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let p = &self.params;
        w.u64(p.n_trees as u64);
        w.u64(p.sample_size as u64);
        w.u64(p.extension_level.map_or(u64::MAX, |e| e as u64));
        w.f64(match p.contamination {
            Contamination::Auto => -1.0,
            Contamination::Fraction(c) => c,
        });
        w.u64(p.seed);
        w.u64(self.n_features as u64);
        w.u64(self.psi as u64);
        w.f64(self.threshold);
        w.u32s(&self.nodes.tree_start);
        w.u32s(&self.nodes.right);
        w.u32s(&self.nodes.n);
        w.u32s(&self.nodes.feature);
        w.f32s(&self.nodes.weight);
        w.f32s(&self.nodes.point);
        w.f32s(&self.nodes.cut);
        codec::seal(ModelKind::ExtendedIsolationForest, &w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DetectError> {
        let (kind, payload) = codec::open(bytes)?;
        if kind != ModelKind::ExtendedIsolationForest {
            return Err(DecodeError::Invalid(format!(
                "expected an extended isolation forest, found {}",
                kind.name()
            ))
            .into());
        }
        let bad = |m: &str| DetectError::from(DecodeError::Invalid(m.to_owned()));
        let mut r = Reader::new(payload);
        let n_trees = r.u64()? as usize;
        let sample_size = r.u64()? as usize;
        let extension_level = match r.u64()? {
            u64::MAX => None,
            e => Some(e as usize),
        };
        let c = r.f64()?;
        // −1 marks `auto` in the file.
        let contamination = if c < 0.0 {
            Contamination::Auto
        } else {
            Contamination::Fraction(c)
        };
        let seed = r.u64()?;
        let n_features = r.u64()? as usize;
        if n_features == 0 || n_features > 1 << 26 {
            return Err(bad("feature count out of range"));
        }
        let params = EifParams {
            n_trees,
            sample_size,
            extension_level,
            contamination,
            seed,
        };
        let mut out = ExtendedIsolationForest::new(params, n_features)?;
        out.psi = r.u64()? as usize;
        out.threshold = r.f64()?;
        let nodes = Nodes {
            tree_start: r.u32s()?,
            right: r.u32s()?,
            n: r.u32s()?,
            feature: r.u32s()?,
            weight: r.f32s()?,
            point: r.f32s()?,
            cut: r.f32s()?,
        };
        r.finish()?;
        let len = nodes.right.len();
        let k = out.k;
        let fitted = nodes.tree_start.len() > 1;
        if fitted && nodes.tree_start.len() != n_trees + 1 {
            return Err(bad("the tree count disagrees with the parameters"));
        }
        if !out.threshold.is_finite() || (fitted && out.psi < 1) || out.psi > sample_size {
            return Err(bad("threshold or sample size out of range"));
        }
        if nodes.n.len() != len
            || nodes.feature.len() != len * k
            || nodes.weight.len() != len * k
            || nodes.point.len() != len * k
            || nodes.cut.len() != len
        {
            return Err(bad("node arrays of different lengths"));
        }
        if nodes.feature.iter().any(|&f| f as usize >= n_features)
            || nodes
                .weight
                .iter()
                .chain(&nodes.point)
                .chain(&nodes.cut)
                .any(|v| !v.is_finite())
        {
            return Err(bad("a split names a missing feature or is not finite"));
        }
        if fitted {
            if nodes.tree_start[0] != 0 || nodes.tree_start.last().copied() != Some(len as u32) {
                return Err(bad("trees do not cover the nodes"));
            }
            for t in nodes.tree_start.windows(2) {
                let (lo, hi) = (t[0] as usize, t[1] as usize);
                if lo >= hi || hi > len {
                    return Err(bad("trees out of order"));
                }
                for i in lo..hi {
                    let right = nodes.right[i] as usize;
                    // Children strictly after the node and inside its
                    // tree: every walk ends at a leaf.
                    if right != 0 && (right <= i + 1 || right >= hi) {
                        return Err(bad("a child outside its tree"));
                    }
                }
                // Preorder: the last node of a tree is a leaf.
                if nodes.right[hi - 1] != 0 {
                    return Err(bad("a tree ends on a split"));
                }
            }
        } else if len != 0 {
            return Err(bad("nodes without trees"));
        }
        out.nodes = nodes;
        Ok(out)
    }
}

impl crate::Detector for ExtendedIsolationForest {
    fn kind(&self) -> ModelKind {
        ModelKind::ExtendedIsolationForest
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn is_online(&self) -> bool {
        false
    }

    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        self.refit(data)
    }

    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        check_row(row, self.n_features)?;
        if !self.is_fitted() {
            return Ok(0.0);
        }
        Ok(self.score_unchecked(row))
    }

    fn score_batch(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        if data.cols() != self.n_features {
            return Err(DetectError::FeatureCount {
                expected: self.n_features,
                got: data.cols(),
            });
        }
        if !self.is_fitted() {
            return Ok(vec![0.0; data.rows()]);
        }
        Ok((0..data.rows())
            .into_par_iter()
            .map(|i| self.score_unchecked(data.row(i)))
            .collect())
    }

    fn fitted_threshold(&self) -> Option<f64> {
        self.is_fitted().then_some(self.threshold)
    }

    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        check_row(row, self.n_features)
    }

    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        check_row(row, self.n_features)?;
        if !self.is_fitted() {
            return Ok(vec![0.0; self.n_features]);
        }
        Ok(self.explain_unchecked(row))
    }

    fn to_bytes(&self) -> Vec<u8> {
        ExtendedIsolationForest::to_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use radar_core::Matrix;

    use super::*;
    use crate::Detector;

    /// A ring: points on a circle of radius 1 with noise. Its centre is far
    /// from every point yet inside the range of both coordinates, the case
    /// axis-parallel cuts handle badly (Hariri et al.'s figure).
    fn ring(n: usize, seed: u64) -> Matrix {
        let mut rng = Rng::seed_from_u64(seed);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let a = rng.next_f64() * std::f64::consts::TAU;
                let r = 1.0 + 0.05 * rng.normal();
                vec![r * a.cos(), r * a.sin()]
            })
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    #[test]
    fn the_centre_of_a_ring_scores_above_the_ring() {
        let data = ring(2000, 1);
        let f = ExtendedIsolationForest::fit(&EifParams::default(), data.view()).unwrap();
        let centre = f.score_row(&[0.0, 0.0]).unwrap();
        let on_ring: Vec<f64> = (0..200)
            .map(|i| f.score_row(data.row(i)).unwrap())
            .collect();
        let median = quantile(&on_ring, 0.5).unwrap();
        assert!(
            centre > median + 0.05,
            "centre {centre}, ring median {median}"
        );
        let far = f.score_row(&[5.0, 5.0]).unwrap();
        assert!(far > centre, "far {far} vs centre {centre}");
    }

    #[test]
    fn same_seed_same_forest_and_explanations_sum_to_one() {
        let data = ring(500, 2);
        let p = EifParams {
            n_trees: 20,
            contamination: Contamination::Fraction(0.1),
            ..EifParams::default()
        };
        let a = ExtendedIsolationForest::fit(&p, data.view()).unwrap();
        let b = ExtendedIsolationForest::fit(&p, data.view()).unwrap();
        assert_eq!(a, b);
        let t = a.fitted_threshold().unwrap();
        let flagged = (0..500)
            .filter(|&i| a.score_row(data.row(i)).unwrap() > t)
            .count();
        assert!(
            (30..=70).contains(&flagged),
            "{flagged} of 500 above the 10% quantile"
        );
        let e = a.explain_row(&[3.0, 0.0]).unwrap();
        assert!((e.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(e[0] > e[1], "x is what sets (3, 0) apart: {e:?}");
    }

    #[test]
    fn extension_level_zero_splits_on_one_feature() {
        let data = ring(300, 3);
        let p = EifParams {
            n_trees: 5,
            extension_level: Some(0),
            ..EifParams::default()
        };
        let f = ExtendedIsolationForest::fit(&p, data.view()).unwrap();
        assert_eq!(f.k, 1);
        assert!(
            ExtendedIsolationForest::new(
                EifParams {
                    extension_level: Some(2),
                    ..p
                },
                2
            )
            .is_err()
        );
    }

    #[test]
    fn bad_model_files_are_errors() {
        let data = ring(300, 4);
        let f = ExtendedIsolationForest::fit(
            &EifParams {
                n_trees: 3,
                ..EifParams::default()
            },
            data.view(),
        )
        .unwrap();
        let bytes = f.to_bytes();
        assert_eq!(ExtendedIsolationForest::from_bytes(&bytes).unwrap(), f);
        // A right child that is also the left one, resealed past the
        // checksum: refused, never an endless walk.
        let (_, payload) = codec::open(&bytes).unwrap();
        let mut tampered = ExtendedIsolationForest::from_bytes(&bytes).unwrap();
        let i = tampered.nodes.right.iter().position(|&r| r != 0).unwrap();
        tampered.nodes.right[i] = i as u32 + 1;
        assert!(ExtendedIsolationForest::from_bytes(&tampered.to_bytes()).is_err());
        assert!(!payload.is_empty());
    }
}
