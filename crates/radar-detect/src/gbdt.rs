//! Gradient-boosted decision trees for a binary label (fraud or not):
//! histogram-based, second-order (Newton) boosting of the logistic loss,
//! as LightGBM and XGBoost do it, sized for tabular features of a stream.
//!
//! - Features are binned once into at most `max_bins` quantile bins; a
//!   split is "bin ≤ b", stored as the raw threshold (the bin's upper
//!   edge), so scoring a row needs no binning.
//! - Trees grow depth-wise to `max_depth`; a split must leave
//!   `min_child_weight` hessian and `min_samples_leaf` rows on each side and
//!   gain more than `min_split_gain`; leaf values are −G/(H+λ), shrunk by
//!   `learning_rate`. A child's histogram is the parent's minus its
//!   sibling's (the smaller side is built).
//! - Class imbalance: positives are weighted `scale_pos_weight` (default:
//!   negatives / positives, capped at 50), which sharpens the ranking; the
//!   margin is then calibrated to a probability by Platt scaling
//!   (a·margin + b through the logistic function, fitted by Newton's method
//!   on the unweighted training rows).
//! - Explanations: each node stores the cover-weighted mean value of its
//!   subtree; along a row's path, the change of that mean at each split is
//!   credited to the split's feature (Saabas' path attribution). The
//!   credits plus the trees' root means add up to the row's margin exactly.
//!
//! Invariants: thresholds and values are finite; every internal node has
//! two children with larger indices (trees are flat arrays, root first);
//! the model file is validated on load.
//!
//! Results depend only on the data, the labels, the weights and the
//! parameters (no randomness: every row and feature is used).

use radar_core::MatrixView;

use crate::codec::{self, DecodeError, ModelKind, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};

/// Parameters, named as LightGBM's and XGBoost's.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams {
    pub n_trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub min_samples_leaf: usize,
    pub min_child_weight: f64,
    pub min_split_gain: f64,
    /// L2 regularisation of leaf values.
    pub lambda: f64,
    pub max_bins: usize,
    /// Weight of a positive row; `None`: negatives / positives, capped at 50.
    pub scale_pos_weight: Option<f64>,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            n_trees: 200,
            learning_rate: 0.1,
            max_depth: 6,
            min_samples_leaf: 20,
            min_child_weight: 1e-3,
            min_split_gain: 0.0,
            lambda: 1.0,
            max_bins: 255,
            scale_pos_weight: None,
        }
    }
}

impl GbdtParams {
    pub fn validate(&self) -> Result<(), DetectError> {
        if self.n_trees == 0 || self.n_trees > 100_000 {
            return Err(invalid(
                "n_trees",
                format!("must be in 1..=100000, got {}", self.n_trees),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid(
                "learning_rate",
                format!("must be in (0, 1], got {}", self.learning_rate),
            ));
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return Err(invalid(
                "max_depth",
                format!("must be in 1..=16, got {}", self.max_depth),
            ));
        }
        if self.min_samples_leaf == 0 {
            return Err(invalid("min_samples_leaf", "must be at least 1"));
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return Err(invalid(
                "lambda",
                format!("must be ≥ 0, got {}", self.lambda),
            ));
        }
        if !(2..=256).contains(&self.max_bins) {
            return Err(invalid(
                "max_bins",
                format!("must be in 2..=256, got {}", self.max_bins),
            ));
        }
        if let Some(w) = self.scale_pos_weight
            && !(w > 0.0 && w.is_finite())
        {
            return Err(invalid(
                "scale_pos_weight",
                format!("must be positive, got {w}"),
            ));
        }
        if !(self.min_child_weight >= 0.0 && self.min_split_gain >= 0.0) {
            return Err(invalid("min_child_weight", "must be ≥ 0"));
        }
        Ok(())
    }
}

/// One node of a flat tree. Leaves have `left == 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    feature: u32,
    /// Rows with `value <= threshold` go left.
    threshold: f64,
    left: u32,
    right: u32,
    /// A leaf's value; an internal node's cover-weighted mean of its leaves.
    value: f64,
}

impl Node {
    fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Gbdt {
    n_features: usize,
    base: f64,
    trees: Vec<Vec<Node>>,
    /// Platt scaling: p = σ(a·margin + b).
    platt: (f64, f64),
    params: GbdtParams,
}

/// Per-feature bin upper edges (ascending); a value falls in the first bin
/// whose edge is ≥ it (the last bin takes the rest).
fn bin_edges(x: MatrixView<'_>, max_bins: usize) -> Vec<Vec<f64>> {
    (0..x.cols())
        .map(|c| {
            let mut v: Vec<f64> = (0..x.rows()).map(|r| x.row(r)[c]).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            if v.len() <= max_bins {
                // Each distinct value its own bin: the edge between two is
                // their midpoint, so unseen values between fall sensibly.
                return v.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect();
            }
            let mut edges: Vec<f64> = (1..max_bins)
                .map(|i| {
                    let k = (i * v.len()) / max_bins;
                    v[k - 1] + (v[k] - v[k - 1]) / 2.0
                })
                .collect();
            edges.dedup();
            edges
        })
        .collect()
}

fn bin_of(edges: &[f64], v: f64) -> u8 {
    edges.partition_point(|&e| e < v) as u8
}

#[derive(Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

struct Split {
    feature: usize,
    bin: usize,
    gain: f64,
}

struct Grower<'a> {
    bins: &'a [Vec<u8>],
    edges: &'a [Vec<f64>],
    grad: &'a [f64],
    hess: &'a [f64],
    p: &'a GbdtParams,
}

impl Grower<'_> {
    fn histogram(&self, rows: &[u32]) -> Vec<Vec<Bin>> {
        self.edges
            .iter()
            .enumerate()
            .map(|(f, e)| {
                let mut h = vec![Bin::default(); e.len() + 1];
                let col = &self.bins[f];
                for &r in rows {
                    let b = &mut h[col[r as usize] as usize];
                    b.g += self.grad[r as usize];
                    b.h += self.hess[r as usize];
                    b.n += 1;
                }
                h
            })
            .collect()
    }

    fn leaf_weight(&self, g: f64, h: f64) -> f64 {
        -g / (h + self.p.lambda)
    }

    fn best_split(&self, hist: &[Vec<Bin>], g: f64, h: f64, n: u32) -> Option<Split> {
        let score = |g: f64, h: f64| g * g / (h + self.p.lambda);
        let parent = score(g, h);
        let mut best: Option<Split> = None;
        for (f, bins) in hist.iter().enumerate() {
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
            for (b, bin) in bins.iter().enumerate().take(bins.len() - 1) {
                gl += bin.g;
                hl += bin.h;
                nl += bin.n;
                let (gr, hr, nr) = (g - gl, h - hl, n - nl);
                if (nl as usize) < self.p.min_samples_leaf
                    || (nr as usize) < self.p.min_samples_leaf
                {
                    continue;
                }
                if hl < self.p.min_child_weight || hr < self.p.min_child_weight {
                    continue;
                }
                let gain = 0.5 * (score(gl, hl) + score(gr, hr) - parent);
                if gain > self.p.min_split_gain && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        feature: f,
                        bin: b,
                        gain,
                    });
                }
            }
        }
        best
    }

    /// Grows one tree over `rows`; returns its nodes (values shrunk).
    fn grow(&self, rows: Vec<u32>) -> Vec<Node> {
        let mut nodes = vec![Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: 0.0,
        }];
        // (node index, rows, histogram, depth)
        let hist = self.histogram(&rows);
        let mut stack = vec![(0usize, rows, hist, 0usize)];
        let mut covers = vec![0.0f64];
        while let Some((at, rows, hist, depth)) = stack.pop() {
            let (g, h): (f64, f64) = rows.iter().fold((0.0, 0.0), |(g, h), &r| {
                (g + self.grad[r as usize], h + self.hess[r as usize])
            });
            covers[at] = h;
            let leaf = self.leaf_weight(g, h) * self.p.learning_rate;
            nodes[at].value = leaf;
            if depth >= self.p.max_depth {
                continue;
            }
            let Some(split) = self.best_split(&hist, g, h, rows.len() as u32) else {
                continue;
            };
            let col = &self.bins[split.feature];
            let (left, right): (Vec<u32>, Vec<u32>) = rows
                .iter()
                .partition(|&&r| (col[r as usize] as usize) <= split.bin);
            let (small, large) = if left.len() <= right.len() {
                (&left, &right)
            } else {
                (&right, &left)
            };
            let small_hist = self.histogram(small);
            let large_hist: Vec<Vec<Bin>> = hist
                .iter()
                .zip(&small_hist)
                .map(|(p, s)| {
                    p.iter()
                        .zip(s)
                        .map(|(p, s)| Bin {
                            g: p.g - s.g,
                            h: p.h - s.h,
                            n: p.n - s.n,
                        })
                        .collect()
                })
                .collect();
            let (left_hist, right_hist) = if left.len() <= right.len() {
                (small_hist, large_hist)
            } else {
                (large_hist, small_hist)
            };
            let _ = large;
            let l = nodes.len();
            nodes.push(nodes[at]);
            nodes.push(nodes[at]);
            covers.push(0.0);
            covers.push(0.0);
            nodes[at].feature = split.feature as u32;
            nodes[at].threshold = self.edges[split.feature][split.bin];
            nodes[at].left = l as u32;
            nodes[at].right = l as u32 + 1;
            stack.push((l, left, left_hist, depth + 1));
            stack.push((l + 1, right, right_hist, depth + 1));
        }
        // Internal nodes: the cover-weighted mean of their children, bottom
        // up (children come after their parent).
        for i in (0..nodes.len()).rev() {
            if !nodes[i].is_leaf() {
                let (l, r) = (nodes[i].left as usize, nodes[i].right as usize);
                let (cl, cr) = (covers[l], covers[r]);
                covers[i] = cl + cr;
                nodes[i].value = if cl + cr > 0.0 {
                    (nodes[l].value * cl + nodes[r].value * cr) / (cl + cr)
                } else {
                    0.0
                };
            }
        }
        nodes
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Platt scaling: (a, b) minimising the log loss of σ(a·m + b) on `y`,
/// by Newton's method (with Platt's smoothed targets).
fn platt(margins: &[f64], y: &[bool]) -> (f64, f64) {
    let pos = y.iter().filter(|&&l| l).count() as f64;
    let neg = y.len() as f64 - pos;
    let (t_pos, t_neg) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&m, &l) in margins.iter().zip(y) {
            let p = sigmoid(a * m + b);
            let t = if l { t_pos } else { t_neg };
            let d = p - t;
            let w = p * (1.0 - p);
            ga += d * m;
            gb += d;
            haa += w * m * m;
            hab += w * m;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 || !(a.is_finite() && b.is_finite()) {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (1.0, 0.0)
    }
}

impl Gbdt {
    /// Fits on rows `x` with labels `y` (true = positive).
    pub fn fit(params: &GbdtParams, x: MatrixView<'_>, y: &[bool]) -> Result<Gbdt, DetectError> {
        params.validate()?;
        let n = x.rows();
        if n == 0 {
            return Err(DetectError::Empty);
        }
        if y.len() != n {
            return Err(invalid(
                "labels",
                format!("{} labels for {n} rows", y.len()),
            ));
        }
        let pos = y.iter().filter(|&&l| l).count();
        if pos == 0 || pos == n {
            return Err(invalid(
                "labels",
                format!("both classes are needed; {pos} positives in {n} rows"),
            ));
        }
        let w_pos = params
            .scale_pos_weight
            .unwrap_or(((n - pos) as f64 / pos as f64).min(50.0));
        let edges = bin_edges(x, params.max_bins);
        let bins: Vec<Vec<u8>> = (0..x.cols())
            .map(|c| (0..n).map(|r| bin_of(&edges[c], x.row(r)[c])).collect())
            .collect();
        let weights: Vec<f64> = y.iter().map(|&l| if l { w_pos } else { 1.0 }).collect();
        let wp: f64 = weights
            .iter()
            .zip(y)
            .filter(|(_, l)| **l)
            .map(|(w, _)| w)
            .sum();
        let wt: f64 = weights.iter().sum();
        let base = (wp / (wt - wp)).ln();
        let mut margin = vec![base; n];
        let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n]);
        let mut trees = Vec::with_capacity(params.n_trees);
        for _ in 0..params.n_trees {
            for i in 0..n {
                let p = sigmoid(margin[i]);
                let t = if y[i] { 1.0 } else { 0.0 };
                grad[i] = weights[i] * (p - t);
                hess[i] = (weights[i] * p * (1.0 - p)).max(1e-16);
            }
            let grower = Grower {
                bins: &bins,
                edges: &edges,
                grad: &grad,
                hess: &hess,
                p: params,
            };
            let tree = grower.grow((0..n as u32).collect());
            for (i, m) in margin.iter_mut().enumerate() {
                *m += leaf_of(&tree, x.row(i)).value;
            }
            trees.push(tree);
        }
        let platt = platt(&margin, y);
        Ok(Gbdt {
            n_features: x.cols(),
            base,
            trees,
            platt,
            params: params.clone(),
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// The raw margin (log-odds before calibration).
    pub fn margin(&self, row: &[f64]) -> Result<f64, DetectError> {
        check_row(row, self.n_features)?;
        Ok(self.margin_unchecked(row))
    }

    /// Walks the trees eight at a time in lockstep: eight independent
    /// chains of loads overlap instead of waiting on each other, and the
    /// step is branch-free (a right child follows its left sibling).
    fn margin_unchecked(&self, row: &[f64]) -> f64 {
        const LANES: usize = 8;
        let mut total = self.base;
        let mut chunks = self.trees.chunks_exact(LANES);
        for group in chunks.by_ref() {
            let mut at = [0u32; LANES];
            for _ in 0..=self.params.max_depth {
                for lane in 0..LANES {
                    let node = &group[lane][at[lane] as usize];
                    let go_right = (row[node.feature as usize] > node.threshold) as u32;
                    // A leaf (left == 0) stays where it is.
                    let next = node.left + go_right;
                    at[lane] = if node.left == 0 { at[lane] } else { next };
                }
            }
            for lane in 0..LANES {
                total += group[lane][at[lane] as usize].value;
            }
        }
        for t in chunks.remainder() {
            total += leaf_of(t, row).value;
        }
        total
    }

    /// The calibrated probability that the row is positive.
    pub fn predict_proba(&self, row: &[f64]) -> Result<f64, DetectError> {
        let m = self.margin(row)?;
        Ok(sigmoid(self.platt.0 * m + self.platt.1))
    }

    /// Per-feature contributions to the margin (Saabas); with
    /// [`Self::expected_margin`] they add up to [`Self::margin`].
    pub fn contributions(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        check_row(row, self.n_features)?;
        let mut c = vec![0.0; self.n_features];
        for t in &self.trees {
            let mut at = 0usize;
            loop {
                let node = &t[at];
                if node.is_leaf() {
                    break;
                }
                let next = if row[node.feature as usize] <= node.threshold {
                    node.left
                } else {
                    node.right
                } as usize;
                c[node.feature as usize] += t[next].value - node.value;
                at = next;
            }
        }
        Ok(c)
    }

    /// The margin before any split: the base plus each tree's root mean.
    pub fn expected_margin(&self) -> f64 {
        self.base + self.trees.iter().map(|t| t[0].value).sum::<f64>()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        codec::seal(ModelKind::Gbdt, &w.into_bytes())
    }

    fn write(&self, w: &mut Writer) {
        let p = &self.params;
        w.u64(p.n_trees as u64);
        w.f64(p.learning_rate);
        w.u64(p.max_depth as u64);
        w.u64(p.min_samples_leaf as u64);
        w.f64(p.min_child_weight);
        w.f64(p.min_split_gain);
        w.f64(p.lambda);
        w.u64(p.max_bins as u64);
        w.f64(p.scale_pos_weight.unwrap_or(-1.0));
        w.u64(self.n_features as u64);
        w.f64(self.base);
        w.f64(self.platt.0);
        w.f64(self.platt.1);
        w.u64(self.trees.len() as u64);
        for t in &self.trees {
            w.u32s(&t.iter().map(|n| n.feature).collect::<Vec<_>>());
            w.f64s(&t.iter().map(|n| n.threshold).collect::<Vec<_>>());
            w.u32s(&t.iter().map(|n| n.left).collect::<Vec<_>>());
            w.u32s(&t.iter().map(|n| n.right).collect::<Vec<_>>());
            w.f64s(&t.iter().map(|n| n.value).collect::<Vec<_>>());
        }
    }

    /// Reads a model file, checking every structural invariant.
    pub fn from_bytes(bytes: &[u8]) -> Result<Gbdt, DetectError> {
        let (kind, payload) = codec::open(bytes)?;
        if kind != ModelKind::Gbdt {
            return Err(DecodeError::Invalid(format!(
                "expected a gradient-boosted trees model, found {}",
                kind.name()
            ))
            .into());
        }
        let mut r = Reader::new(payload);
        let g = Gbdt::read(&mut r)?;
        r.finish()?;
        Ok(g)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Gbdt, DetectError> {
        let bad = |m: String| DetectError::from(DecodeError::Invalid(m));
        let spw = |v: f64| (v > 0.0).then_some(v);
        let params = GbdtParams {
            n_trees: r.u64()? as usize,
            learning_rate: r.f64()?,
            max_depth: r.u64()? as usize,
            min_samples_leaf: r.u64()? as usize,
            min_child_weight: r.f64()?,
            min_split_gain: r.f64()?,
            lambda: r.f64()?,
            max_bins: r.u64()? as usize,
            scale_pos_weight: spw(r.f64()?),
        };
        params
            .validate()
            .map_err(|e| bad(format!("parameters: {e}")))?;
        let n_features = r.u64()? as usize;
        if n_features == 0 || n_features > 1 << 20 {
            return Err(bad(format!("{n_features} features")));
        }
        let (base, a, b) = (r.f64()?, r.f64()?, r.f64()?);
        if !(base.is_finite() && a.is_finite() && b.is_finite()) {
            return Err(bad("a non-finite base or calibration".into()));
        }
        let count = r.u64()? as usize;
        if count != params.n_trees {
            return Err(bad(format!("{count} trees, {} declared", params.n_trees)));
        }
        let mut trees = Vec::with_capacity(count);
        for t in 0..count {
            let (f, th, l, rt, v) = (r.u32s()?, r.f64s()?, r.u32s()?, r.u32s()?, r.f64s()?);
            let n = f.len();
            if n == 0
                || [th.len(), l.len(), rt.len(), v.len()]
                    .iter()
                    .any(|&k| k != n)
            {
                return Err(bad(format!("tree {t}: ragged node arrays")));
            }
            let mut nodes = Vec::with_capacity(n);
            for i in 0..n {
                let node = Node {
                    feature: f[i],
                    threshold: th[i],
                    left: l[i],
                    right: rt[i],
                    value: v[i],
                };
                let leaf = node.left == 0 && node.right == 0;
                // Children come after their parent, the right one right
                // after the left (scoring relies on it).
                let ok_children = leaf
                    || ((node.left as usize) > i
                        && (node.left as usize) + 1 < n
                        && node.right == node.left + 1);
                if !ok_children
                    || (!leaf && (node.feature as usize) >= n_features)
                    || !node.threshold.is_finite()
                    || !node.value.is_finite()
                {
                    return Err(bad(format!("tree {t}, node {i}: not a valid node")));
                }
                nodes.push(node);
            }
            // Depths: children come after parents, so one pass fills them;
            // a node reached twice would not be a tree.
            let mut depth = vec![usize::MAX; n];
            depth[0] = 0;
            for i in 0..n {
                if depth[i] == usize::MAX {
                    return Err(bad(format!("tree {t}, node {i}: no parent")));
                }
                if !nodes[i].is_leaf() {
                    for c in [nodes[i].left as usize, nodes[i].right as usize] {
                        if depth[c] != usize::MAX {
                            return Err(bad(format!("tree {t}, node {c}: two parents")));
                        }
                        depth[c] = depth[i] + 1;
                    }
                }
            }
            if depth.iter().any(|&d| d > params.max_depth) {
                return Err(bad(format!(
                    "tree {t} is deeper than max_depth {}",
                    params.max_depth
                )));
            }
            trees.push(nodes);
        }
        Ok(Gbdt {
            n_features,
            base,
            trees,
            platt: (a, b),
            params,
        })
    }
}

fn leaf_of<'a>(tree: &'a [Node], row: &[f64]) -> &'a Node {
    let mut at = 0usize;
    loop {
        let node = &tree[at];
        if node.is_leaf() {
            return node;
        }
        at = if row[node.feature as usize] <= node.threshold {
            node.left
        } else {
            node.right
        } as usize;
    }
}

#[cfg(test)]
mod tests;
