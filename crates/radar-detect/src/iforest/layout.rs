//! Scoring layouts compiled from the canonical trees, and the kernels that
//! walk them.
//!
//! Every tree is walked a fixed number of steps with no data-dependent
//! branch: dense trees are padded to full depth with nodes that always go
//! left, and sparse trees' leaves loop onto themselves. Rows are scored in
//! blocks of [`BLOCK`], tree by tree, so one tree stays in L1 cache while
//! the block streams through it; eight rows walk together so their memory
//! loads overlap. A block holds its rows' keys column-major, and nodes store
//! `feature * BLOCK`, so a lane finds its value at a constant offset from
//! the node's field.
//!
//! Comparisons use order-preserving u32 keys of the f32 values: an integer
//! compare per step, and a padding key (`u32::MAX`) that no value exceeds.

use radar_core::MatrixView;

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

/// Trees up to this depth are stored dense (2^depth node and leaf slots per
/// tree); deeper ones (max_samples above 1024) explicitly.
const DENSE_MAX_DEPTH: u32 = 10;

/// Rows per scoring block.
pub(crate) const BLOCK: usize = 64;

/// Rows (or trees, for one row) walked together.
const LANES: usize = 8;

/// Node word: `feature * BLOCK` in the high half, the threshold key in the
/// low half.
#[inline(always)]
fn pack(feature: u32, key: u32) -> u64 {
    ((feature as u64 * BLOCK as u64) << 32) | key as u64
}

#[inline(always)]
fn offset(node: u64) -> usize {
    (node >> 32) as usize
}

#[inline(always)]
fn feature(node: u64) -> usize {
    offset(node) / BLOCK
}

#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// Perfect binary trees in 1-based heap order: node j has children 2j
    /// and 2j+1; slot 0 is unused. After `depth` steps, j - 2^depth indexes
    /// the tree's leaves.
    Dense {
        depth: u32,
        nodes: Vec<u64>,
        leaves: Vec<f64>,
        /// Walk the top levels with AVX2 (detected once, at compile time of
        /// the layout).
        simd: bool,
    },
    /// Explicit children (absolute indices); a leaf's children are itself.
    Sparse {
        steps: u32,
        nodes: Vec<u64>,
        children: Vec<[u32; 2]>,
        values: Vec<f64>,
        roots: Vec<u32>,
    },
}

impl Layout {
    pub(crate) fn compile(trees: &Trees) -> Layout {
        Self::compile_with(trees, simd::available())
    }

    /// As [`compile`](Self::compile), choosing whether SIMD may be used.
    pub(crate) fn compile_with(trees: &Trees, allow_simd: bool) -> Layout {
        let depth = (0..trees.len()).map(|t| trees.depth(t)).max().unwrap_or(0);
        if depth <= DENSE_MAX_DEPTH {
            Self::dense(trees, depth, allow_simd && depth >= simd::LEVELS)
        } else {
            Self::sparse(trees, depth)
        }
    }

    fn dense(trees: &Trees, depth: u32, simd: bool) -> Layout {
        let stride = 1usize << depth;
        let mut nodes = vec![pack(0, ALWAYS_LEFT); stride * trees.len()];
        let mut leaves = vec![0.0; stride * trees.len()];
        for t in 0..trees.len() {
            let (lo, _) = trees.range(t);
            let tree_nodes = &mut nodes[t * stride..(t + 1) * stride];
            let tree_leaves = &mut leaves[t * stride..(t + 1) * stride];
            // (canonical node, heap position, depth)
            let mut stack = vec![(lo, 1usize, 0u32)];
            while let Some((i, j, d)) = stack.pop() {
                let right = trees.right[i] as usize;
                if right == 0 {
                    // Padding sends the row down the leftmost path.
                    let slot = (j << (depth - d)) - stride;
                    tree_leaves[slot] = d as f64 + c(trees.n_samples[i] as usize);
                } else {
                    tree_nodes[j] = pack(trees.feature[i], key(trees.threshold[i]));
                    stack.push((i + 1, 2 * j, d + 1));
                    stack.push((right, 2 * j + 1, d + 1));
                }
            }
        }
        Layout::Dense {
            depth,
            nodes,
            leaves,
            simd,
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

    /// Writes each row's path length summed over all trees (in tree order).
    pub(crate) fn path_sums(&self, x: MatrixView<'_>, out: &mut [f64]) {
        debug_assert_eq!(out.len(), x.rows());
        let mut block = Block::new(x.cols());
        for (b, out) in out.chunks_mut(BLOCK).enumerate() {
            block.fill(x.slice_rows(b * BLOCK, b * BLOCK + out.len()));
            let mut acc = [0.0f64; BLOCK];
            match self {
                Layout::Dense {
                    depth,
                    nodes,
                    leaves,
                    simd,
                } => {
                    if *simd {
                        simd::dense_block(nodes, leaves, *depth, &block, &mut acc);
                    } else {
                        dense_block(nodes, leaves, *depth, &block.keys, &mut acc);
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
                        sparse_block(nodes, children, values, root, *steps, &block.keys, &mut acc);
                    }
                }
            }
            out.copy_from_slice(&acc[..out.len()]);
        }
    }

    /// Path length summed over all trees for one row of keys (in tree order,
    /// so it equals the batch result bit for bit).
    pub(crate) fn path_sum(&self, row: &[u32]) -> f64 {
        match self {
            Layout::Dense {
                depth,
                nodes,
                leaves,
                ..
            } => dense_row(nodes, leaves, *depth, row),
            Layout::Sparse {
                steps,
                nodes,
                children,
                values,
                roots,
            } => {
                let mut sum = 0.0;
                for &root in roots {
                    let mut i = root as usize;
                    for _ in 0..*steps {
                        let n = nodes[i];
                        i = children[i][(row[feature(n)] > n as u32) as usize] as usize;
                    }
                    sum += values[i];
                }
                sum
            }
        }
    }
}

/// The keys of up to BLOCK rows, column-major (`keys[f * BLOCK + r]`), and
/// the same keys with the sign bit flipped (`skeys`), whose signed order is
/// the keys' unsigned order, for SIMD compares. Missing rows of a last,
/// partial block hold zero keys; their results are dropped.
pub(crate) struct Block {
    keys: Vec<u32>,
    skeys: Vec<i32>,
}

impl Block {
    fn new(d: usize) -> Block {
        Block {
            keys: vec![0; BLOCK * d],
            skeys: vec![0; BLOCK * d],
        }
    }

    fn fill(&mut self, rows: MatrixView<'_>) {
        debug_assert_eq!(self.keys.len(), BLOCK * rows.cols());
        if rows.rows() < BLOCK {
            self.keys.fill(0);
        }
        for r in 0..rows.rows() {
            for (f, &v) in rows.row(r).iter().enumerate() {
                self.keys[f * BLOCK + r] = key(to_f32(v));
            }
        }
        for (s, &k) in self.skeys.iter_mut().zip(&self.keys) {
            *s = (k ^ 0x8000_0000) as i32;
        }
    }
}

/// j ← 2j + right: one step down a heap-ordered tree. On x86-64 this is a
/// single add-with-carry fed by the compare.
#[inline(always)]
fn descend(j: u64, right: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut out = 0;
        // SAFETY: add-with-carry has no preconditions.
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_addcarry_u64(right as u8, j, j, &mut out)
        };
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        2 * j + right as u64
    }
}

/// Walks LANES rows `levels` steps down one dense tree from heap positions
/// `j`; lane k reads its keys at `lane_keys[offset + k]`.
///
/// # Safety
/// See the SAFETY note below: `j` must be valid heap positions with
/// `levels` more steps staying inside the tree, and every node offset plus
/// `LANES` must stay inside `lane_keys`.
#[inline(always)]
unsafe fn walk_lanes(
    tree: &[u64],
    lane_keys: &[u32],
    mut j: [u64; LANES],
    levels: u32,
) -> [u64; LANES] {
    for _ in 0..levels {
        for (k, j) in j.iter_mut().enumerate() {
            debug_assert!((*j as usize) < tree.len());
            let n = unsafe { *tree.get_unchecked(*j as usize) };
            debug_assert!(offset(n) + k < lane_keys.len());
            let x = unsafe { *lane_keys.get_unchecked(offset(n) + k) };
            *j = descend(*j, x > n as u32);
        }
    }
    j
}

// SAFETY (for the unchecked indexing in the kernels below): `nodes` and
// `leaves` hold whole trees of 2^depth slots each (chunks_exact). The heap
// index j starts at 1 and after s steps is below 2^(s+1): it reads node
// slots below 2^depth during the `depth` steps and ends in
// [2^depth, 2^(depth+1)), so `j - stride` is a valid leaf slot. A node's
// offset is feature * BLOCK with feature < n_features (checked when the
// model is fitted or decoded), and the lane offset is below BLOCK, so every
// key read stays inside the BLOCK * n_features block.
fn dense_block(nodes: &[u64], leaves: &[f64], depth: u32, keys: &[u32], acc: &mut [f64; BLOCK]) {
    let stride = 1usize << depth;
    for (tree, tree_leaves) in nodes.chunks_exact(stride).zip(leaves.chunks_exact(stride)) {
        for g in 0..BLOCK / LANES {
            // SAFETY: see above; the walk starts at the root.
            let j = unsafe { walk_lanes(tree, &keys[g * LANES..], [1; LANES], depth) };
            for (k, &j) in j.iter().enumerate() {
                let slot = j as usize - stride;
                debug_assert!(slot < stride);
                acc[g * LANES + k] += unsafe { *tree_leaves.get_unchecked(slot) };
            }
        }
    }
}

/// One row through all trees, eight trees at a time so their walks overlap.
fn dense_row(nodes: &[u64], leaves: &[f64], depth: u32, row: &[u32]) -> f64 {
    let stride = 1usize << depth;
    let walk = |tree: &[u64], mut j: usize| {
        for _ in 0..depth {
            let n = tree[j];
            j = descend(j as u64, row[feature(n)] > n as u32) as usize;
        }
        j - stride
    };
    let mut sum = 0.0;
    let mut trees = nodes.chunks_exact(stride * LANES);
    let mut tree_leaves = leaves.chunks_exact(stride * LANES);
    for (group, group_leaves) in (&mut trees).zip(&mut tree_leaves) {
        let mut j = [1usize; LANES];
        for _ in 0..depth {
            for (k, j) in j.iter_mut().enumerate() {
                let n = group[k * stride + *j];
                *j = descend(*j as u64, row[feature(n)] > n as u32) as usize;
            }
        }
        for (k, &j) in j.iter().enumerate() {
            sum += group_leaves[k * stride + j - stride];
        }
    }
    for (tree, tree_leaves) in trees
        .remainder()
        .chunks_exact(stride)
        .zip(tree_leaves.remainder().chunks_exact(stride))
    {
        sum += tree_leaves[walk(tree, 1)];
    }
    sum
}

fn sparse_block(
    nodes: &[u64],
    children: &[[u32; 2]],
    values: &[f64],
    root: u32,
    steps: u32,
    keys: &[u32],
    acc: &mut [f64; BLOCK],
) {
    for g in 0..BLOCK / LANES {
        let lane_keys = &keys[g * LANES..];
        let mut i = [root as usize; LANES];
        for _ in 0..steps {
            for (k, i) in i.iter_mut().enumerate() {
                let n = nodes[*i];
                let x = lane_keys[offset(n) + k];
                *i = children[*i][(x > n as u32) as usize] as usize;
            }
        }
        for (k, &i) in i.iter().enumerate() {
            acc[g * LANES + k] += values[i];
        }
    }
}

/// Keys of one row, checking that every value is finite; on failure returns
/// the column and value.
pub(crate) fn row_keys(row: &[f64]) -> Result<Vec<u32>, (usize, f64)> {
    row.iter()
        .enumerate()
        .map(|(c, &v)| {
            if v.is_finite() {
                Ok(key(to_f32(v)))
            } else {
                Err((c, v))
            }
        })
        .collect()
}

/// The top levels of dense trees with AVX2, eight rows per vector.
///
/// Every row of a block meets the same root, so the first levels need no
/// gather: for each of the 2^LEVELS − 1 top nodes, the node's feature column
/// of the block is compared with its threshold in one instruction, and each
/// row's path picks its result with blends. The remaining levels walk
/// scalar (gathers are slow on the CPUs this was tuned on).
mod simd {
    use super::{BLOCK, Block, LANES, offset, walk_lanes};

    pub(super) const LEVELS: u32 = 4;

    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn dense_block(_: &[u64], _: &[f64], _: u32, _: &Block, _: &mut [f64; BLOCK]) {
        unreachable!("the SIMD layout is only chosen when available() says so")
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) fn dense_block(
        nodes: &[u64],
        leaves: &[f64],
        depth: u32,
        block: &Block,
        acc: &mut [f64; BLOCK],
    ) {
        debug_assert!(available() && depth >= LEVELS);
        // SAFETY: the layout only selects this path when AVX2 is available.
        unsafe { dense_block_avx2(nodes, leaves, depth, block, acc) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn dense_block_avx2(
        nodes: &[u64],
        leaves: &[f64],
        depth: u32,
        block: &Block,
        acc: &mut [f64; BLOCK],
    ) {
        use std::arch::x86_64::*;
        let stride = 1usize << depth;
        for (tree, tree_leaves) in nodes.chunks_exact(stride).zip(leaves.chunks_exact(stride)) {
            let mut column = [0usize; 16];
            let mut threshold = [_mm256_setzero_si256(); 16];
            for i in 1..16 {
                column[i] = offset(tree[i]);
                threshold[i] = _mm256_set1_epi32(((tree[i] as u32) ^ 0x8000_0000) as i32);
            }
            // Top levels for every group first, then the scalar levels: the
            // scalar walks of different groups then overlap.
            let mut start = [0u32; BLOCK];
            for g in 0..BLOCK / LANES {
                let lanes = &block.skeys[g * LANES..];
                let right = |i: usize| {
                    debug_assert!(column[i] + LANES <= lanes.len());
                    // SAFETY: column[i] = feature * BLOCK with feature <
                    // n_features, so 8 keys from there stay in the block.
                    let x = unsafe {
                        _mm256_loadu_si256(lanes.as_ptr().add(column[i]) as *const __m256i)
                    };
                    _mm256_cmpgt_epi32(x, threshold[i])
                };
                // c_k: all ones where the row goes right at level k.
                let c0 = right(1);
                let c1 = _mm256_blendv_epi8(right(2), right(3), c0);
                let a = _mm256_blendv_epi8(right(4), right(5), c1);
                let b = _mm256_blendv_epi8(right(6), right(7), c1);
                let c2 = _mm256_blendv_epi8(a, b, c0);
                let p0 = _mm256_blendv_epi8(right(8), right(9), c2);
                let p1 = _mm256_blendv_epi8(right(10), right(11), c2);
                let p2 = _mm256_blendv_epi8(right(12), right(13), c2);
                let p3 = _mm256_blendv_epi8(right(14), right(15), c2);
                let q0 = _mm256_blendv_epi8(p0, p1, c1);
                let q1 = _mm256_blendv_epi8(p2, p3, c1);
                let c3 = _mm256_blendv_epi8(q0, q1, c0);
                // j = 16 + 8·c0 + 4·c1 + 2·c2 + c3 (each c is 0 or −1).
                let mut j = _mm256_sub_epi32(_mm256_setzero_si256(), c0);
                for c in [c1, c2, c3] {
                    j = _mm256_sub_epi32(_mm256_add_epi32(j, j), c);
                }
                j = _mm256_add_epi32(j, _mm256_set1_epi32(16));
                // SAFETY: `start` has BLOCK slots; this group writes 8 of them.
                unsafe {
                    _mm256_storeu_si256(start.as_mut_ptr().add(g * LANES) as *mut __m256i, j)
                };
            }
            for g in 0..BLOCK / LANES {
                let j: [u64; LANES] = std::array::from_fn(|k| start[g * LANES + k] as u64);
                // SAFETY: j is a heap position at depth LEVELS <= depth.
                let j = unsafe { walk_lanes(tree, &block.keys[g * LANES..], j, depth - LEVELS) };
                for (k, &j) in j.iter().enumerate() {
                    let slot = j as usize - stride;
                    debug_assert!(slot < stride);
                    acc[g * LANES + k] += unsafe { *tree_leaves.get_unchecked(slot) };
                }
            }
        }
    }
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
