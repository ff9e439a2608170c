//! Growing isolation trees with scikit-learn's semantics: a random
//! non-constant feature per node, a threshold drawn uniformly between the
//! node's min and max, `x <= threshold` goes left, depth limited to
//! ceil(log2(max_samples)).

use radar_core::Rng;
use radar_core::matrix::MatrixView;

use super::Trees;

/// A feature whose values span no more than this is treated as constant in a
/// node (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// Values are compared in f32, as scikit-learn's trees do; values beyond the
/// f32 range are clamped, which keeps their order relative to every
/// threshold.
#[inline]
pub(crate) fn to_f32(v: f64) -> f32 {
    v.clamp(-(f32::MAX as f64), f32::MAX as f64) as f32
}

/// The largest f32 not above `t`: for every f32 `x`, `x <= t` (in f64) iff
/// `x <= round_down(t)`.
#[inline]
fn round_down(t: f64) -> f32 {
    let r = t as f32;
    if (r as f64) > t { r.next_down() } else { r }
}

pub(crate) struct TreeSpec<'a> {
    pub x: MatrixView<'a>,
    /// Rows drawn for this tree (with repeats when bootstrapping).
    pub rows: Vec<u32>,
    /// Columns this tree may split on.
    pub features: Vec<u32>,
    pub max_depth: u32,
}

/// One tree in preorder: the left child of an internal node is the next node.
#[derive(Default)]
pub(crate) struct Tree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f32>,
    pub right: Vec<u32>,
    pub n_samples: Vec<u32>,
}

impl Tree {
    fn push(&mut self, n_samples: usize) -> usize {
        self.feature.push(0);
        self.threshold.push(f32::INFINITY);
        self.right.push(0);
        self.n_samples.push(n_samples as u32);
        self.feature.len() - 1
    }
}

pub(crate) fn grow(spec: &TreeSpec<'_>, rng: &mut Rng) -> Tree {
    let psi = spec.rows.len();
    let d_sel = spec.features.len();
    let d = spec.x.cols();
    let data = spec.x.data();
    // Rows are read in address order: on a large matrix each read is a
    // cache and TLB miss, and sorted reads share pages and overlap better.
    let mut rows = spec.rows.clone();
    rows.sort_unstable();
    // Touch every row first: these loads are independent, so their misses
    // overlap (tens in flight) instead of stalling the gather one by one.
    let mut sink = 0u64;
    for &row in &rows {
        let base = row as usize * d;
        sink ^= data[base].to_bits() ^ data[base + d - 1].to_bits();
    }
    std::hint::black_box(sink);
    // Column-major copy of the sample: scanning one feature over a node's rows
    // touches contiguous memory.
    let mut cols = vec![0f32; d_sel * psi];
    for (s, &row) in rows.iter().enumerate() {
        let base = row as usize * d;
        for (j, &f) in spec.features.iter().enumerate() {
            cols[j * psi + s] = to_f32(data[base + f as usize]);
        }
    }
    let mut idx: Vec<u32> = (0..psi as u32).collect();
    let mut feats: Vec<usize> = (0..d_sel).collect();
    let mut tree = Tree::default();
    // (start, end, depth, parent whose `right` must point here, if any)
    let mut stack: Vec<(usize, usize, u32, Option<usize>)> = vec![(0, psi, 0, None)];
    while let Some((start, end, depth, parent)) = stack.pop() {
        let node = tree.push(end - start);
        if let Some(p) = parent {
            tree.right[p] = node as u32;
        }
        if depth >= spec.max_depth || end - start < 2 {
            continue;
        }
        let Some((j, lo, hi)) = pick_feature(&cols, psi, &idx[start..end], &mut feats, rng) else {
            continue;
        };
        let mut t = lo + (hi - lo) * rng.next_f64();
        if t == hi {
            t = lo;
        }
        let t = round_down(t);
        let column = &cols[j * psi..(j + 1) * psi];
        let mid = start + partition(&mut idx[start..end], |s| column[s as usize] <= t);
        debug_assert!(
            mid > start && mid < end,
            "both sides of a split are non-empty"
        );
        tree.feature[node] = spec.features[j];
        tree.threshold[node] = t;
        // Right pushed first so the left child is popped next (preorder).
        stack.push((mid, end, depth + 1, Some(node)));
        stack.push((start, mid, depth + 1, None));
    }
    tree
}

/// Draws features without replacement until one is not constant over the
/// node's rows; returns its local index with the rows' min and max.
fn pick_feature(
    cols: &[f32],
    psi: usize,
    rows: &[u32],
    feats: &mut [usize],
    rng: &mut Rng,
) -> Option<(usize, f64, f64)> {
    let mut remaining = feats.len();
    while remaining > 0 {
        let k = rng.below(remaining as u64) as usize;
        let j = feats[k];
        feats.swap(k, remaining - 1);
        remaining -= 1;
        let column = &cols[j * psi..(j + 1) * psi];
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &s in rows {
            let v = column[s as usize];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let (lo, hi) = (lo as f64, hi as f64);
        if hi > lo + FEATURE_THRESHOLD {
            return Some((j, lo, hi));
        }
    }
    None
}

/// Moves the items satisfying `left` to the front; returns how many there are.
fn partition(items: &mut [u32], left: impl Fn(u32) -> bool) -> usize {
    let mut i = 0;
    let mut j = items.len();
    while i < j {
        if left(items[i]) {
            i += 1;
        } else {
            j -= 1;
            items.swap(i, j);
        }
    }
    i
}

/// Draws `k` distinct values from `0..n` (Floyd's algorithm), in random order.
pub(crate) fn sample_without_replacement(n: usize, k: usize, rng: &mut Rng) -> Vec<u32> {
    debug_assert!(k <= n);
    if k * 2 >= n {
        // Dense case: a partial Fisher–Yates shuffle is cheaper.
        let mut all: Vec<u32> = (0..n as u32).collect();
        for i in 0..k {
            let j = i + rng.below((n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k);
        return all;
    }
    let mut set = SmallSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    for j in (n - k)..n {
        let t = rng.below(j as u64 + 1) as u32;
        let v = if set.insert(t) { t } else { j as u32 };
        if v != t {
            set.insert(v);
        }
        out.push(v);
    }
    out
}

/// Open-addressing set of u32 for Floyd's algorithm.
struct SmallSet {
    slots: Vec<u32>,
    mask: usize,
}

impl SmallSet {
    const EMPTY: u32 = u32::MAX;

    fn with_capacity(k: usize) -> Self {
        let size = (k * 2).next_power_of_two().max(16);
        SmallSet {
            slots: vec![Self::EMPTY; size],
            mask: size - 1,
        }
    }

    /// Inserts `v`; false when it was already present.
    fn insert(&mut self, v: u32) -> bool {
        let mut i = (v as usize).wrapping_mul(0x9E37_79B9) & self.mask;
        loop {
            match self.slots[i] {
                Self::EMPTY => {
                    self.slots[i] = v;
                    return true;
                }
                s if s == v => return false,
                _ => i = (i + 1) & self.mask,
            }
        }
    }
}

/// Appends a grown tree to the forest's flat arrays.
pub(crate) fn append(trees: &mut Trees, tree: Tree) {
    trees.feature.extend_from_slice(&tree.feature);
    trees.threshold.extend_from_slice(&tree.threshold);
    // Child links become absolute indices into the forest's arrays.
    let offset = trees.right.len() as u32;
    trees.right.extend(
        tree.right
            .iter()
            .map(|&r| if r == 0 { 0 } else { r + offset }),
    );
    trees.n_samples.extend_from_slice(&tree.n_samples);
    trees.tree_start.push(trees.feature.len() as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floyd_sampling_gives_distinct_values_in_range() {
        let mut rng = Rng::seed_from_u64(5);
        for &(n, k) in &[(10, 10), (1000, 256), (567_498, 256), (5, 1), (300, 200)] {
            let s = sample_without_replacement(n, k, &mut rng);
            assert_eq!(s.len(), k);
            let mut sorted = s.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), k, "duplicates for n={n} k={k}");
            assert!(s.iter().all(|&v| (v as usize) < n));
        }
    }

    #[test]
    fn floyd_sampling_is_uniform() {
        let mut rng = Rng::seed_from_u64(6);
        let mut counts = [0u32; 20];
        for _ in 0..20_000 {
            for v in sample_without_replacement(20, 3, &mut rng) {
                counts[v as usize] += 1;
            }
        }
        // Expected 3000 each.
        for (v, c) in counts.iter().enumerate() {
            assert!((2700..3300).contains(c), "value {v} drawn {c} times");
        }
    }

    #[test]
    fn round_down_never_exceeds_the_threshold() {
        for &t in &[0.1f64, -0.1, 1e30, 3.0000001, -7.5e-8, 123456.789] {
            let r = round_down(t);
            assert!((r as f64) <= t);
            assert!((r.next_up() as f64) > t);
        }
    }

    #[test]
    fn partition_splits_by_predicate() {
        let mut v = vec![5, 1, 7, 2, 9, 3];
        let mid = partition(&mut v, |x| x < 5);
        assert_eq!(mid, 3);
        assert!(v[..mid].iter().all(|&x| x < 5));
        assert!(v[mid..].iter().all(|&x| x >= 5));
    }
}
