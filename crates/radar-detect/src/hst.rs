//! Half-Space Trees (Tan, Ting & Liu, 2011) with the semantics of River's
//! `HalfSpaceTrees`: random padded trees over feature ranges, mass profiles
//! counted over one window (the *latest* window's masses score, the current
//! window's are being counted), swapped every `window_size` rows. The score
//! is 1 − Σ mass·2^depth / max, in [0, 1], higher = more anomalous; 0 during
//! the first window.
//!
//! Speed comes from doing what River does lazily:
//! - a node's split (feature chosen with probability ∝ its range width,
//!   threshold uniform in the middle 70 % of the range) is a pure function
//!   of the tree seed and the node's position, so only nodes that data
//!   reaches are materialised;
//! - scoring stops below the first node with mass < 10 % of the window, so
//!   masses are only needed down to there: at the end of a window the rows
//!   are partitioned down each tree only while a node holds at least that
//!   many, instead of counting every row down to the leaves;
//! - masses carry the window number they were counted in, so swapping the
//!   profiles is one increment.

use radar_core::Rng;
use radar_core::rng::derive_seed;

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};

const NIL: u32 = u32::MAX;
/// Share of a range left out on each side when drawing a threshold.
const PADDING: f64 = 0.15;

/// Parameters, named as River names them.
#[derive(Debug, Clone, PartialEq)]
pub struct HstParams {
    pub n_trees: usize,
    /// Depth of the leaves (the root is at depth 0).
    pub height: usize,
    pub window_size: usize,
    /// Per-feature (low, high) ranges; `None` learns them from the first
    /// window.
    pub limits: Option<Vec<(f64, f64)>>,
    pub seed: u64,
}

impl Default for HstParams {
    fn default() -> Self {
        HstParams {
            n_trees: 25,
            height: 15,
            window_size: 250,
            limits: None,
            seed: 0,
        }
    }
}

impl HstParams {
    fn check(&self, n_features: usize) -> Result<(), DetectError> {
        if n_features == 0 || n_features > u32::MAX as usize / 2 {
            return Err(invalid("n_features", "must be at least 1"));
        }
        if self.n_trees == 0 || self.n_trees > 10_000 {
            return Err(invalid(
                "n_trees",
                format!("must be between 1 and 10000, got {}", self.n_trees),
            ));
        }
        if self.height == 0 || self.height > 40 {
            return Err(invalid(
                "height",
                format!("must be between 1 and 40, got {}", self.height),
            ));
        }
        if self.window_size == 0 || self.window_size > 1 << 24 {
            return Err(invalid(
                "window_size",
                format!("must be between 1 and 2^24, got {}", self.window_size),
            ));
        }
        if let Some(limits) = &self.limits {
            if limits.len() != n_features {
                return Err(invalid(
                    "limits",
                    format!("{} ranges for {n_features} features", limits.len()),
                ));
            }
            for (i, &(lo, hi)) in limits.iter().enumerate() {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(invalid(
                        "limits",
                        format!("feature {i}: range ({lo}, {hi}) must be finite with low < high"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One materialised node.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    threshold: f64,
    /// Σ mass · 2^depth from the root down to this node (scoring's sum
    /// when the walk ends here), for the window the mass was counted in.
    cum: f64,
    feature: u32,
    /// Left, right; NIL until materialised.
    children: [u32; 2],
    mass: u32,
    /// The window the mass was counted in.
    epoch: u32,
    /// Scoring goes on below: mass ≥ the size limit and not a leaf.
    open: bool,
    /// Which children hold rows of the window the mass was counted in.
    live: [bool; 2],
}

/// Materialised nodes of one tree. Node 0 is the root.
#[derive(Debug, Clone, Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Materialises the node at heap position `heap` whose range is `limits`.
    fn add(&mut self, seed: u64, heap: u64, limits: &[(f64, f64)]) -> u32 {
        let mut rng = Rng::seed_from_u64(derive_seed(seed, heap));
        let total: f64 = limits.iter().map(|(a, b)| b - a).sum();
        let mut r = rng.next_f64() * total;
        let mut feature = limits.len() - 1;
        for (i, (a, b)) in limits.iter().enumerate() {
            let w = b - a;
            if r < w {
                feature = i;
                break;
            }
            r -= w;
        }
        let (a, b) = limits[feature];
        let w = b - a;
        let threshold = a + PADDING * w + rng.next_f64() * (1.0 - 2.0 * PADDING) * w;
        self.nodes.push(Node {
            threshold,
            cum: 0.0,
            feature: feature as u32,
            children: [NIL, NIL],
            mass: 0,
            epoch: 0,
            open: false,
            live: [false; 2],
        });
        (self.nodes.len() - 1) as u32
    }

    fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

/// Half-Space Trees over a stream of rows with a fixed number of features.
#[derive(Debug, Clone)]
pub struct HalfSpaceTrees {
    params: HstParams,
    n_features: usize,
    limits: Option<Vec<(f64, f64)>>,
    trees: Vec<Tree>,
    /// Rows of the window being counted, row-major.
    window: Vec<f64>,
    /// Completed windows; masses of window `epoch` score (0 = none yet).
    epoch: u32,
    seen: u64,
}

impl HalfSpaceTrees {
    pub fn new(params: HstParams, n_features: usize) -> Result<Self, DetectError> {
        params.check(n_features)?;
        Ok(HalfSpaceTrees {
            limits: params.limits.clone(),
            trees: vec![Tree::default(); params.n_trees],
            window: Vec::with_capacity(params.window_size * n_features),
            epoch: 0,
            seen: 0,
            n_features,
            params,
        })
    }

    pub fn params(&self) -> &HstParams {
        &self.params
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Rows learned.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The feature ranges in use (`None` before the first window ends when
    /// they are learned).
    pub fn limits(&self) -> Option<&[(f64, f64)]> {
        self.limits.as_deref()
    }

    fn check(&self, row: &[f64]) -> Result<(), DetectError> {
        check_row(row, self.n_features)
    }

    fn size_limit(&self) -> f64 {
        0.1 * self.params.window_size as f64
    }

    fn max_score(&self) -> f64 {
        self.params.n_trees as f64
            * self.params.window_size as f64
            * (2f64.powi(self.params.height as i32 + 1) - 1.0)
    }

    /// Calls `visit(tree, depth, node, mass)` along `row`'s path in every
    /// tree, down to the first node whose mass is below the size limit.
    fn walk(&self, row: &[f64], mut visit: impl FnMut(usize, usize, u32, f64)) {
        let limit = self.size_limit();
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.len() == 0 {
                continue;
            }
            let mut node = 0u32;
            let mut depth = 0;
            loop {
                let n = node as usize;
                let mass = if tree.nodes[n].epoch == self.epoch {
                    tree.nodes[n].mass as f64
                } else {
                    0.0
                };
                visit(t, depth, node, mass);
                if mass < limit || depth == self.params.height {
                    break;
                }
                let go_right = row[tree.nodes[n].feature as usize] >= tree.nodes[n].threshold;
                let child = tree.nodes[n].children[go_right as usize];
                if child == NIL {
                    // Never reached by a counted row: mass 0.
                    visit(t, depth + 1, NIL, 0.0);
                    break;
                }
                node = child;
                depth += 1;
            }
        }
    }

    /// The anomaly score of `row` in [0, 1] against the latest completed
    /// window (0 before one completed).
    pub fn score(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.check(row)?;
        if self.epoch == 0 {
            return Ok(0.0);
        }
        // The walk only descends: each node carries its path's sum and
        // knows which children were counted in the window. Trees advance a
        // level at a time, branch-free, so their walks overlap instead of
        // each waiting on its own chain of loads.
        const GROUP: usize = 32;
        let mut sum = 0.0;
        for group in self.trees.chunks(GROUP) {
            let mut at = [0u32; GROUP];
            let mut moved = true;
            while moved {
                moved = false;
                for (cur, tree) in at.iter_mut().zip(group) {
                    let Some(node) = tree.nodes.get(*cur as usize) else {
                        continue;
                    };
                    let side = (row[node.feature as usize] >= node.threshold) as usize;
                    let go = node.open & node.live[side];
                    *cur = if go { node.children[side] } else { *cur };
                    moved |= go;
                }
            }
            for (&cur, tree) in at.iter().zip(group) {
                // A tree whose root was not counted in the window adds 0.
                if let Some(node) = tree.nodes.get(cur as usize)
                    && node.epoch == self.epoch
                {
                    sum += node.cum;
                }
            }
        }
        Ok(1.0 - sum / self.max_score())
    }

    /// Per-feature shares of `row`'s anomaly: along each tree's path, the
    /// drop in mass at each split (log2 of parent over child mass, +1
    /// smoothed) is credited to the split's feature. Sums to 1 unless the
    /// row meets no split (all zeros).
    pub fn explain(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        self.check(row)?;
        let mut credit = vec![0.0; self.n_features];
        if self.epoch == 0 {
            return Ok(credit);
        }
        let mut parent: Option<(u32, f64)> = None;
        self.walk(row, |t, depth, node, mass| {
            if depth == 0 {
                parent = Some((node, mass));
                return;
            }
            if let Some((p, pm)) = parent {
                let f = self.trees[t].nodes[p as usize].feature as usize;
                credit[f] += ((pm + 1.0) / (mass + 1.0)).log2();
            }
            parent = Some((node, mass));
        });
        let total: f64 = credit.iter().sum();
        if total > 0.0 {
            credit.iter_mut().for_each(|c| *c /= total);
        }
        Ok(credit)
    }

    /// Learns `row`: it counts in the current window; when the window is
    /// full, its masses replace the previous window's.
    pub fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        self.check(row)?;
        self.window.extend_from_slice(row);
        self.seen += 1;
        if self.window.len() == self.params.window_size * self.n_features {
            self.end_window();
        }
        Ok(())
    }

    /// Scores `row`, then learns it.
    pub fn score_and_update(&mut self, row: &[f64]) -> Result<f64, DetectError> {
        let s = self.score(row)?;
        self.update(row)?;
        Ok(s)
    }

    fn end_window(&mut self) {
        let d = self.n_features;
        if self.limits.is_none() {
            self.limits = Some(learn_limits(&self.window, d));
        }
        let Some(limits) = self.limits.clone() else {
            return;
        };
        self.epoch += 1;
        let rows = self.window.len() / d;
        let mut order: Vec<u32> = (0..rows as u32).collect();
        let mut ranges = limits;
        let ctx = Count {
            rows: &self.window,
            d,
            height: self.params.height,
            size_limit: self.size_limit(),
            epoch: self.epoch,
        };
        for (t, tree) in self.trees.iter_mut().enumerate() {
            let seed = derive_seed(self.params.seed, t as u64);
            if tree.len() == 0 {
                tree.add(seed, 1, &ranges);
            }
            ctx.count(tree, seed, 0, 1, 0, 0.0, &mut order, &mut ranges);
        }
        self.window.clear();
    }

    /// Heap bytes held (trees and the window buffer).
    pub fn heap_bytes(&self) -> usize {
        self.trees.iter().map(Tree::bytes).sum::<usize>()
            + self.trees.capacity() * std::mem::size_of::<Tree>()
            + self.window.capacity() * 8
    }

    /// Materialised nodes per tree.
    pub fn node_counts(&self) -> Vec<usize> {
        self.trees.iter().map(Tree::len).collect()
    }
}

/// Ranges from a window: its min and max per feature, widened by 10 % of
/// the span on each side (so values a bit beyond the first window still
/// split), and to ±max(1, |v|/10) around a constant.
pub fn learn_limits(rows: &[f64], d: usize) -> Vec<(f64, f64)> {
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for row in rows.chunks_exact(d) {
        for k in 0..d {
            lo[k] = lo[k].min(row[k]);
            hi[k] = hi[k].max(row[k]);
        }
    }
    lo.into_iter()
        .zip(hi)
        .map(|(a, b)| {
            let span = b - a;
            if span > 0.0 {
                (a - 0.1 * span, b + 0.1 * span)
            } else {
                let pad = (a.abs() / 10.0).max(1.0);
                (a - pad, b + pad)
            }
        })
        .collect()
}

struct Count<'a> {
    rows: &'a [f64],
    d: usize,
    height: usize,
    size_limit: f64,
    epoch: u32,
}

impl Count<'_> {
    /// Sets the mass of `node` (heap position `heap`) to the rows in
    /// `order`, then splits them into the children while the mass is at
    /// least the size limit.
    #[allow(clippy::too_many_arguments)]
    fn count(
        &self,
        tree: &mut Tree,
        seed: u64,
        node: u32,
        heap: u64,
        depth: usize,
        parent_cum: f64,
        order: &mut [u32],
        ranges: &mut [(f64, f64)],
    ) {
        let n = node as usize;
        let cum = parent_cum + order.len() as f64 * 2f64.powi(depth as i32);
        let open = (order.len() as f64) >= self.size_limit && depth < self.height;
        let slot = &mut tree.nodes[n];
        slot.mass = order.len() as u32;
        slot.epoch = self.epoch;
        slot.cum = cum;
        slot.open = open;
        slot.live = [false; 2];
        if !open {
            return;
        }
        let f = tree.nodes[n].feature as usize;
        let th = tree.nodes[n].threshold;
        // Partition: rows going left (value < threshold) first.
        let mut split = 0;
        for i in 0..order.len() {
            if self.rows[order[i] as usize * self.d + f] < th {
                order.swap(i, split);
                split += 1;
            }
        }
        tree.nodes[n].live = [split > 0, split < order.len()];
        let (left, right) = order.split_at_mut(split);
        let saved = ranges[f];
        for (side, part) in [(0usize, left), (1, right)] {
            if part.is_empty() {
                continue;
            }
            ranges[f] = if side == 0 {
                (saved.0, th)
            } else {
                (th, saved.1)
            };
            let child_heap = 2 * heap + side as u64;
            let mut child = tree.nodes[n].children[side];
            if child == NIL {
                child = tree.add(seed, child_heap, ranges);
                tree.nodes[n].children[side] = child;
            }
            self.count(tree, seed, child, child_heap, depth + 1, cum, part, ranges);
        }
        ranges[f] = saved;
    }
}

// ---- serialization ----

impl HalfSpaceTrees {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.params.n_trees as u64);
        w.u64(self.params.height as u64);
        w.u64(self.params.window_size as u64);
        w.u64(self.params.seed);
        w.u64(self.n_features as u64);
        let write_limits = |w: &mut Writer, l: &Option<Vec<(f64, f64)>>| match l {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                for &(a, b) in l {
                    w.f64(a);
                    w.f64(b);
                }
            }
        };
        write_limits(w, &self.params.limits);
        write_limits(w, &self.limits);
        w.u32(self.epoch);
        w.u64(self.seen);
        w.f64s(&self.window);
        // Sums and open flags follow from the masses; rebuilt on load.
        for tree in &self.trees {
            let n = &tree.nodes;
            w.u32s(&n.iter().map(|x| x.feature).collect::<Vec<_>>());
            w.f64s(&n.iter().map(|x| x.threshold).collect::<Vec<_>>());
            w.u32s(&n.iter().flat_map(|x| x.children).collect::<Vec<_>>());
            w.u32s(&n.iter().map(|x| x.mass).collect::<Vec<_>>());
            w.u32s(&n.iter().map(|x| x.epoch).collect::<Vec<_>>());
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DetectError> {
        let bad = |m: String| DetectError::Decode(DecodeError::Invalid(m));
        let n_trees = r.u64()? as usize;
        let height = r.u64()? as usize;
        let window_size = r.u64()? as usize;
        let seed = r.u64()?;
        let n_features = r.u64()? as usize;
        if n_features == 0 || n_features > 1 << 20 {
            return Err(bad(format!("{n_features} features")));
        }
        let read_limits = |r: &mut Reader| -> Result<Option<Vec<(f64, f64)>>, DetectError> {
            match r.u8()? {
                0 => Ok(None),
                1 => {
                    let mut l = Vec::with_capacity(n_features);
                    for _ in 0..n_features {
                        l.push((r.f64()?, r.f64()?));
                    }
                    Ok(Some(l))
                }
                t => Err(bad(format!("limits tag {t}"))),
            }
        };
        let given = read_limits(r)?;
        let limits = read_limits(r)?;
        let params = HstParams {
            n_trees,
            height,
            window_size,
            limits: given,
            seed,
        };
        let mut hst = HalfSpaceTrees::new(params, n_features)?;
        if let Some(l) = &limits
            && l.iter()
                .any(|&(a, b)| !(a.is_finite() && b.is_finite() && a < b))
        {
            return Err(bad("learned limits are not finite ranges".into()));
        }
        hst.limits = limits;
        hst.epoch = r.u32()?;
        hst.seen = r.u64()?;
        hst.window = r.f64s()?;
        let buffered = hst.window.len();
        if buffered >= window_size * n_features || buffered % n_features != 0 {
            return Err(bad(format!("window holds {buffered} values")));
        }
        if hst.window.iter().any(|v| !v.is_finite()) {
            return Err(bad("window holds a non-finite value".into()));
        }
        let max_nodes = if height >= 31 {
            u32::MAX as usize - 1
        } else {
            (1usize << (height + 1)) - 1
        };
        let (limit, epoch) = (hst.size_limit(), hst.epoch);
        for tree in &mut hst.trees {
            let feature = r.u32s()?;
            let threshold = r.f64s()?;
            let children = r.u32s()?;
            let mass = r.u32s()?;
            let epochs = r.u32s()?;
            let len = feature.len();
            if len > max_nodes
                || threshold.len() != len
                || children.len() != 2 * len
                || mass.len() != len
                || epochs.len() != len
            {
                return Err(bad("tree arrays of unequal or excessive length".into()));
            }
            tree.nodes = (0..len)
                .map(|i| Node {
                    threshold: threshold[i],
                    cum: 0.0,
                    feature: feature[i],
                    children: [children[2 * i], children[2 * i + 1]],
                    mass: mass[i],
                    epoch: epochs[i],
                    open: false,
                    live: [false; 2],
                })
                .collect();
            validate_tree(tree, n_features, epoch).map_err(bad)?;
            rebuild_sums(tree, epoch, limit, height);
        }
        Ok(hst)
    }
}

/// Recomputes each current node's path sum and open flag from the masses
/// (a tree, as validated, so the walk ends).
fn rebuild_sums(tree: &mut Tree, epoch: u32, limit: f64, height: usize) {
    let mut stack = vec![(0u32, 0usize, 0.0f64)];
    while let Some((n, depth, parent_cum)) = stack.pop() {
        let Some(node) = tree.nodes.get_mut(n as usize) else {
            continue;
        };
        if node.epoch != epoch {
            continue;
        }
        node.cum = parent_cum + node.mass as f64 * 2f64.powi(depth as i32);
        node.open = node.mass as f64 >= limit && depth < height;
        if node.open {
            let (cum, children) = (node.cum, node.children);
            let live = children.map(|c| {
                tree.nodes
                    .get(c as usize)
                    .is_some_and(|child| child.epoch == epoch)
            });
            tree.nodes[n as usize].live = live;
            for (c, _) in children.into_iter().zip(live).filter(|(_, l)| *l) {
                stack.push((c, depth + 1, cum));
            }
        }
    }
}

/// Every node but the root has exactly one parent with a smaller index
/// (so the structure is a tree without cycles), features exist, epochs are
/// not from the future.
fn validate_tree(tree: &Tree, n_features: usize, epoch: u32) -> Result<(), String> {
    let mut has_parent = vec![false; tree.len()];
    for i in 0..tree.len() {
        if tree.nodes[i].feature as usize >= n_features {
            return Err(format!(
                "node {i} splits on feature {}",
                tree.nodes[i].feature
            ));
        }
        if !tree.nodes[i].threshold.is_finite() {
            return Err(format!("node {i} has a non-finite threshold"));
        }
        if tree.nodes[i].epoch > epoch {
            return Err(format!("node {i} counted in a future window"));
        }
        for &c in &tree.nodes[i].children {
            if c == NIL {
                continue;
            }
            let c = c as usize;
            if c <= i || c >= tree.len() || has_parent[c] {
                return Err(format!("node {i} has an invalid child {c}"));
            }
            has_parent[c] = true;
        }
    }
    if has_parent.iter().skip(1).any(|p| !p) {
        return Err("a node is not reachable from the root".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
