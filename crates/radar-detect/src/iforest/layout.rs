//! Scoring layouts compiled from the canonical trees, and the kernels that
//! walk them.
//!
//! Every tree is walked for a fixed number of steps with no data-dependent
//! branch: leaves loop onto themselves (sparse layout) or are padded down to
//! the full depth with nodes that always go left (dense layout). Rows are
//! scored in blocks, tree by tree, so one tree stays in L1 cache while a
//! block of rows streams through it, and eight rows are walked at once so
//! their memory loads overlap.
//!
//! Comparisons use order-preserving u32 keys of the f32 values: integer
//! compares, and a padding key (`u32::MAX`) that no value exceeds.

use super::Trees;
use super::build::to_f32;
use super::path_length_correction as c;

/// Maps an f32 (not NaN) to a u32 with the same order; -0.0 and +0.0 map to
/// the same key.
#[inline(always)]
pub(crate) fn key(x: f32) -> u32 {
    let b = (x + 0.0).to_bits();
    let mask = ((b as i32) >> 31) as u32;
    b ^ (mask | 0x8000_0000)
}

/// A key that no value's key exceeds: the padding "always go left" test.
const ALWAYS_LEFT: u32 = u32::MAX;

/// Trees up to this depth are stored dense (implicit children, 2^depth leaf
/// slots per tree); deeper ones (max_samples above 1024) explicitly.
const DENSE_MAX_DEPTH: u32 = 10;

/// Rows walked together through one tree.
const LANES: usize = 8;

#[inline(always)]
fn pack(feature: u32, key: u32) -> u64 {
    (key as u64) << 32 | feature as u64
}

#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// Perfect binary trees in heap order: node i has children 2i+1, 2i+2.
    Dense {
        depth: u32,
        /// (2^depth - 1) packed (feature, key) per tree.
        nodes: Vec<u64>,
        /// 2^depth path lengths per tree.
        leaves: Vec<f64>,
    },
    /// Explicit children; a leaf's children are itself.
    Sparse {
        steps: u32,
        /// Packed (feature, key) per node, all trees concatenated.
        nodes: Vec<u64>,
        /// [left, right] per node, absolute indices.
        children: Vec<[u32; 2]>,
        /// Path length per node (meaningful at leaves).
        values: Vec<f64>,
        roots: Vec<u32>,
    },
}

impl Layout {
    pub(crate) fn compile(trees: &Trees) -> Layout {
        let depth = (0..trees.len()).map(|t| trees.depth(t)).max().unwrap_or(0);
        if depth <= DENSE_MAX_DEPTH {
            Self::dense(trees, depth)
        } else {
            Self::sparse(trees, depth)
        }
    }

    fn dense(trees: &Trees, depth: u32) -> Layout {
        let inner = (1usize << depth) - 1;
        let n_leaves = 1usize << depth;
        let mut nodes = vec![pack(0, ALWAYS_LEFT); inner * trees.len()];
        let mut leaves = vec![0.0; n_leaves * trees.len()];
        for t in 0..trees.len() {
            let (lo, _) = trees.range(t);
            let tree_nodes = &mut nodes[t * inner..(t + 1) * inner];
            let tree_leaves = &mut leaves[t * n_leaves..(t + 1) * n_leaves];
            // (canonical node, heap position, depth)
            let mut stack = vec![(lo, 0usize, 0u32)];
            while let Some((i, pos, d)) = stack.pop() {
                let right = trees.right[i] as usize;
                if right == 0 {
                    // A leaf at depth d: padding sends it down the leftmost path.
                    let leaf_pos = ((pos + 1) << (depth - d)) - 1;
                    tree_leaves[leaf_pos - inner] = d as f64 + c(trees.n_samples[i] as usize);
                } else {
                    tree_nodes[pos] = pack(trees.feature[i], key(trees.threshold[i]));
                    stack.push((i + 1, 2 * pos + 1, d + 1));
                    stack.push((right, 2 * pos + 2, d + 1));
                }
            }
        }
        Layout::Dense {
            depth,
            nodes,
            leaves,
        }
    }

    fn sparse(trees: &Trees, depth: u32) -> Layout {
        let n = trees.feature.len();
        let mut nodes = Vec::with_capacity(n);
        let mut children = Vec::with_capacity(n);
        let mut values = vec![0.0; n];
        for i in 0..n {
            let right = trees.right[i];
            if right == 0 {
                nodes.push(pack(0, ALWAYS_LEFT));
                children.push([i as u32, i as u32]);
            } else {
                nodes.push(pack(trees.feature[i], key(trees.threshold[i])));
                children.push([i as u32 + 1, right]);
            }
        }
        for t in 0..trees.len() {
            let (lo, _) = trees.range(t);
            let mut stack = vec![(lo, 0u32)];
            while let Some((i, d)) = stack.pop() {
                let right = trees.right[i] as usize;
                if right == 0 {
                    values[i] = d as f64 + c(trees.n_samples[i] as usize);
                } else {
                    stack.push((i + 1, d + 1));
                    stack.push((right, d + 1));
                }
            }
        }
        Layout::Sparse {
            steps: depth,
            nodes,
            children,
            values,
            roots: trees.tree_start[..trees.len()].to_vec(),
        }
    }

    /// Adds each row's path length summed over all trees to `acc`.
    /// `keys` holds `acc.len()` rows of `d` keys, row-major.
    pub(crate) fn accumulate(&self, keys: &[u32], d: usize, acc: &mut [f64]) {
        debug_assert_eq!(keys.len(), acc.len() * d);
        match self {
            Layout::Dense {
                depth,
                nodes,
                leaves,
            } => {
                if *depth == 0 {
                    // Every tree is a single leaf.
                    let total: f64 = leaves.iter().sum();
                    acc.iter_mut().for_each(|a| *a += total);
                    return;
                }
                let inner = (1usize << depth) - 1;
                let n_leaves = 1usize << depth;
                for (tree_nodes, tree_leaves) in
                    nodes.chunks_exact(inner).zip(leaves.chunks_exact(n_leaves))
                {
                    dense_tree(tree_nodes, tree_leaves, *depth, keys, d, acc);
                }
            }
            Layout::Sparse {
                steps,
                nodes,
                children,
                values,
                roots,
            } => {
                for &root in roots {
                    sparse_tree(nodes, children, values, root, *steps, keys, d, acc);
                }
            }
        }
    }

    /// Sum of path lengths over all trees for one row of keys.
    pub(crate) fn path_sum(&self, keys: &[u32]) -> f64 {
        let mut acc = [0.0];
        self.accumulate(keys, keys.len(), &mut acc);
        acc[0]
    }
}

#[inline(always)]
fn step_dense(nodes: &[u64], i: usize, row: &[u32]) -> usize {
    let n = nodes[i];
    let x = row[n as u32 as usize];
    2 * i + 1 + (x > (n >> 32) as u32) as usize
}

fn dense_tree(nodes: &[u64], leaves: &[f64], depth: u32, keys: &[u32], d: usize, acc: &mut [f64]) {
    let inner = nodes.len();
    let mut groups = keys.chunks_exact(LANES * d);
    let mut accs = acc.chunks_exact_mut(LANES);
    for (block, acc) in (&mut groups).zip(&mut accs) {
        let rows: [&[u32]; LANES] = std::array::from_fn(|k| &block[k * d..(k + 1) * d]);
        let mut idx = [0usize; LANES];
        for _ in 0..depth {
            for k in 0..LANES {
                idx[k] = step_dense(nodes, idx[k], rows[k]);
            }
        }
        for k in 0..LANES {
            acc[k] += leaves[idx[k] - inner];
        }
    }
    for (row, a) in groups
        .remainder()
        .chunks_exact(d)
        .zip(accs.into_remainder())
    {
        let mut i = 0;
        for _ in 0..depth {
            i = step_dense(nodes, i, row);
        }
        *a += leaves[i - inner];
    }
}

#[inline(always)]
fn step_sparse(nodes: &[u64], children: &[[u32; 2]], i: usize, row: &[u32]) -> usize {
    let n = nodes[i];
    let x = row[n as u32 as usize];
    children[i][(x > (n >> 32) as u32) as usize] as usize
}

#[allow(clippy::too_many_arguments)]
fn sparse_tree(
    nodes: &[u64],
    children: &[[u32; 2]],
    values: &[f64],
    root: u32,
    steps: u32,
    keys: &[u32],
    d: usize,
    acc: &mut [f64],
) {
    let mut groups = keys.chunks_exact(LANES * d);
    let mut accs = acc.chunks_exact_mut(LANES);
    for (block, acc) in (&mut groups).zip(&mut accs) {
        let rows: [&[u32]; LANES] = std::array::from_fn(|k| &block[k * d..(k + 1) * d]);
        let mut idx = [root as usize; LANES];
        for _ in 0..steps {
            for k in 0..LANES {
                idx[k] = step_sparse(nodes, children, idx[k], rows[k]);
            }
        }
        for k in 0..LANES {
            acc[k] += values[idx[k]];
        }
    }
    for (row, a) in groups
        .remainder()
        .chunks_exact(d)
        .zip(accs.into_remainder())
    {
        let mut i = root as usize;
        for _ in 0..steps {
            i = step_sparse(nodes, children, i, row);
        }
        *a += values[i];
    }
}

/// Converts rows of f64 to keys, checking that every value is finite.
/// On failure returns (row within `values`, column, value).
pub(crate) fn to_keys(
    values: &[f64],
    out: &mut Vec<u32>,
    d: usize,
) -> Result<(), (usize, usize, f64)> {
    out.clear();
    out.reserve(values.len());
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err((i / d, i % d, v));
        }
        out.push(key(to_f32(v)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order_and_merge_signed_zeros() {
        let xs = [
            f32::NEG_INFINITY,
            -f32::MAX,
            -1.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            f32::MIN_POSITIVE,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for a in xs {
            for b in xs {
                assert_eq!(a > b, key(a) > key(b), "{a} vs {b}");
                assert_eq!(a == b, key(a) == key(b), "{a} vs {b}");
            }
            assert!(key(a) < ALWAYS_LEFT);
        }
    }
}
