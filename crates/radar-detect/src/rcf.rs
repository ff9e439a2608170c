//! Robust Random Cut Forest (Guha, Mishra, Roy & Schrijvers, ICML 2016) for
//! streams.
//!
//! Each tree holds a time-decayed reservoir sample of the (shingled) points
//! seen so far and supports inserting and deleting points. A point's score
//! is its *expected collusive displacement*: over the randomness of where
//! inserting it would cut each tree, the expectation of CoDisp — at the
//! node where it would be separated, the mass it displaces, or more when
//! an ancestor's sibling dominates its subtree (collusion). The expectation
//! is exact given the trees (probability of separation at each node = the
//! share of the merged bounding box's range the point adds), so scoring
//! never changes a tree. The same walk attributes the score to each input
//! dimension and direction (above or below the data).
//!
//! Samples: the key of a point seen at time t is λt − ln(−ln u), u uniform;
//! each tree keeps the `sample_size` largest keys (a weighted reservoir
//! with weights e^{λt}, so newer points are likelier to stay).

use radar_core::Rng;
use radar_core::rng::derive_seed;

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};

const NIL: u32 = u32::MAX;

/// Parameters, named as AWS's implementation names them.
#[derive(Debug, Clone, PartialEq)]
pub struct RcfParams {
    /// Values per input point.
    pub dimensions: usize,
    /// Consecutive input points joined into one tree point.
    pub shingle_size: usize,
    pub num_trees: usize,
    pub sample_size: usize,
    /// λ; default 1 / (10 · sample_size).
    pub time_decay: Option<f64>,
    /// Points seen before scores are reported (0 until then).
    pub output_after: usize,
    pub random_seed: u64,
}

impl Default for RcfParams {
    fn default() -> Self {
        RcfParams {
            dimensions: 1,
            shingle_size: 8,
            num_trees: 50,
            sample_size: 256,
            time_decay: None,
            output_after: 256,
            random_seed: 0,
        }
    }
}

impl RcfParams {
    fn check(&self) -> Result<(), DetectError> {
        if self.dimensions == 0 || self.dimensions > 1024 {
            return Err(invalid(
                "dimensions",
                format!("must be between 1 and 1024, got {}", self.dimensions),
            ));
        }
        if self.shingle_size == 0 || self.dimensions * self.shingle_size > 4096 {
            return Err(invalid(
                "shingle_size",
                "must be at least 1, with dimensions × shingle_size ≤ 4096",
            ));
        }
        if self.num_trees == 0 || self.num_trees > 10_000 {
            return Err(invalid(
                "num_trees",
                format!("must be between 1 and 10000, got {}", self.num_trees),
            ));
        }
        if self.sample_size < 2 || self.sample_size > 1 << 20 {
            return Err(invalid(
                "sample_size",
                format!("must be between 2 and 2^20, got {}", self.sample_size),
            ));
        }
        if let Some(l) = self.time_decay
            && !(l >= 0.0 && l.is_finite())
        {
            return Err(invalid(
                "time_decay",
                format!("must be finite and non-negative, got {l}"),
            ));
        }
        Ok(())
    }
}

/// Shared storage of tree points (each stored once, reference-counted by
/// the trees that sample it).
#[derive(Debug, Clone, Default)]
struct Points {
    dims: usize,
    data: Vec<f32>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Points {
    fn add(&mut self, x: &[f32]) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let s = i as usize * self.dims;
                self.data[s..s + self.dims].copy_from_slice(x);
                self.refs[i as usize] = 0;
                i
            }
            None => {
                self.data.extend_from_slice(x);
                self.refs.push(0);
                (self.refs.len() - 1) as u32
            }
        }
    }
    #[inline]
    fn get(&self, i: u32) -> &[f32] {
        let s = i as usize * self.dims;
        &self.data[s..s + self.dims]
    }
    fn release(&mut self, i: u32) {
        let r = &mut self.refs[i as usize];
        *r -= 1;
        if *r == 0 {
            self.free.push(i);
        }
    }
}

/// A node's links, mass and cut, together so a walk touches one cache line
/// per node (plus its box).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    parent: u32,
    left: u32,
    right: u32,
    mass: u32,
    cut_dim: u32,
    cut: f32,
    /// Leaf: the point; internal: NIL.
    point: u32,
}

const EMPTY: Node = Node {
    parent: NIL,
    left: NIL,
    right: NIL,
    mass: 0,
    cut_dim: 0,
    cut: 0.0,
    point: NIL,
};

/// One tree: an arena of nodes; leaves hold a point, internal nodes a cut
/// and the bounding box of their subtree.
#[derive(Debug, Clone)]
struct Tree {
    dims: usize,
    nodes: Vec<Node>,
    /// 2 · dims per node: mins then maxes (internal nodes only).
    bbox: Vec<f32>,
    free: Vec<u32>,
    root: u32,
    rng: Rng,
    /// Min-heap of (key, point, leaf).
    sample: Vec<(f64, u32, u32)>,
}

impl Tree {
    fn new(dims: usize, seed: u64) -> Tree {
        Tree {
            dims,
            nodes: Vec::new(),
            bbox: Vec::new(),
            free: Vec::new(),
            root: NIL,
            rng: Rng::seed_from_u64(seed),
            sample: Vec::new(),
        }
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.nodes.push(EMPTY);
                self.bbox.extend(std::iter::repeat_n(0.0, 2 * self.dims));
                (self.nodes.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn is_leaf(&self, n: u32) -> bool {
        self.nodes[n as usize].point != NIL
    }

    /// (mins, maxes) of a node's box; a leaf's box is its point.
    #[inline]
    fn bounds<'a>(&'a self, n: u32, points: &'a Points) -> (&'a [f32], &'a [f32]) {
        if self.is_leaf(n) {
            let p = points.get(self.nodes[n as usize].point);
            (p, p)
        } else {
            let s = n as usize * 2 * self.dims;
            (
                &self.bbox[s..s + self.dims],
                &self.bbox[s + self.dims..s + 2 * self.dims],
            )
        }
    }

    /// Recomputes a node's box from its children's; says whether it changed.
    fn set_box_from_children(&mut self, n: u32, points: &Points) -> bool {
        let d = self.dims;
        let node = self.nodes[n as usize];
        // Where each child's mins and maxes live: a leaf's in the point
        // store (min = max = the point), an inner node's in `bbox`.
        let source = |c: u32| {
            let c = self.nodes[c as usize];
            if c.point != NIL {
                (true, c.point as usize * d, c.point as usize * d)
            } else {
                (false, 0, 0)
            }
        };
        let (l_leaf, l_min, l_max) = match source(node.left) {
            (true, a, b) => (true, a, b),
            _ => (
                false,
                node.left as usize * 2 * d,
                node.left as usize * 2 * d + d,
            ),
        };
        let (r_leaf, r_min, r_max) = match source(node.right) {
            (true, a, b) => (true, a, b),
            _ => (
                false,
                node.right as usize * 2 * d,
                node.right as usize * 2 * d + d,
            ),
        };
        let s = n as usize * 2 * d;
        let mut changed = false;
        for k in 0..d {
            let at = |leaf: bool, i: usize| {
                if leaf { points.data[i] } else { self.bbox[i] }
            };
            let lo = at(l_leaf, l_min + k).min(at(r_leaf, r_min + k));
            let hi = at(l_leaf, l_max + k).max(at(r_leaf, r_max + k));
            changed |= self.bbox[s + k] != lo || self.bbox[s + d + k] != hi;
            self.bbox[s + k] = lo;
            self.bbox[s + d + k] = hi;
        }
        changed
    }

    /// Inserts point `p` (coordinates `x`); returns its leaf.
    fn insert(&mut self, p: u32, x: &[f32], points: &Points) -> u32 {
        let d = self.dims;
        if self.root == NIL {
            let leaf = self.alloc();
            self.nodes[leaf as usize].point = p;
            self.nodes[leaf as usize].mass = 1;
            self.nodes[leaf as usize].parent = NIL;
            self.root = leaf;
            return leaf;
        }
        let mut node = self.root;
        loop {
            let draw = self.rng.next_f64();
            let (lo, hi) = self.bounds(node, points);
            // A cut uniform over the range of the box grown to include x
            // separates x exactly when it falls outside the old box: draw
            // the position, and only find its dimension when it does.
            let (gap, total) = gap_and_range(lo, hi, x);
            if total == 0.0 {
                // The same point as this leaf: one more copy (the
                // ancestors were counted on the way down).
                debug_assert!(self.is_leaf(node));
                self.nodes[node as usize].mass += 1;
                return node;
            }
            let mut r = draw * total;
            // A leaf's box is its point, so gap == total: always separated.
            if r < gap || self.is_leaf(node) {
                r = r.min(gap);
                let mut dim = d - 1;
                let mut x_left = true;
                for k in 0..d {
                    let below = (lo[k] - x[k]).max(0.0) as f64;
                    let above = (x[k] - hi[k]).max(0.0) as f64;
                    if r < below + above || k == d - 1 {
                        dim = k;
                        x_left = below > 0.0;
                        break;
                    }
                    r -= below + above;
                }
                // x lies below the box (cut in [x, lo)) or above it (cut in
                // [hi, x)); rounding to f32 must not land on the far end.
                let cut = if x_left {
                    let c = (x[dim] as f64 + r) as f32;
                    if x[dim] <= c && c < lo[dim] {
                        c
                    } else {
                        x[dim]
                    }
                } else {
                    let c = (hi[dim] as f64 + r) as f32;
                    if hi[dim] <= c && c < x[dim] {
                        c
                    } else {
                        hi[dim]
                    }
                };
                let leaf = self.alloc();
                self.nodes[leaf as usize].point = p;
                self.nodes[leaf as usize].mass = 1;
                let inner = self.alloc();
                self.nodes[inner as usize].point = NIL;
                self.nodes[inner as usize].cut_dim = dim as u32;
                self.nodes[inner as usize].cut = cut;
                self.nodes[inner as usize].mass = self.nodes[node as usize].mass + 1;
                // The new node's box: the old one grown to include x.
                let s = inner as usize * 2 * d;
                let (old_point, old_box) = match self.nodes[node as usize].point {
                    NIL => (None, node as usize * 2 * d),
                    q => (Some(q as usize * d), 0),
                };
                for (k, &v) in x.iter().enumerate() {
                    let (l, h) = match old_point {
                        Some(q) => (points.data[q + k], points.data[q + k]),
                        None => (self.bbox[old_box + k], self.bbox[old_box + d + k]),
                    };
                    self.bbox[s + k] = l.min(v);
                    self.bbox[s + d + k] = h.max(v);
                }
                let parent = self.nodes[node as usize].parent;
                if x_left {
                    self.nodes[inner as usize].left = leaf;
                    self.nodes[inner as usize].right = node;
                } else {
                    self.nodes[inner as usize].left = node;
                    self.nodes[inner as usize].right = leaf;
                }
                self.nodes[leaf as usize].parent = inner;
                self.nodes[node as usize].parent = inner;
                self.nodes[inner as usize].parent = parent;
                if parent == NIL {
                    self.root = inner;
                } else if self.nodes[parent as usize].left == node {
                    self.nodes[parent as usize].left = inner;
                } else {
                    self.nodes[parent as usize].right = inner;
                }
                return leaf;
            }
            // Not separated here: the point lies below. Grow this node.
            let s = node as usize * 2 * d;
            for (k, &v) in x.iter().enumerate() {
                self.bbox[s + k] = self.bbox[s + k].min(v);
                self.bbox[s + d + k] = self.bbox[s + d + k].max(v);
            }
            self.nodes[node as usize].mass += 1;
            let cd = self.nodes[node as usize].cut_dim as usize;
            node = if x[cd] <= self.nodes[node as usize].cut {
                self.nodes[node as usize].left
            } else {
                self.nodes[node as usize].right
            };
        }
    }

    /// Removes one copy of the point at `leaf`.
    fn delete(&mut self, leaf: u32, points: &Points) {
        if self.nodes[leaf as usize].mass > 1 {
            let mut n = leaf;
            while n != NIL {
                self.nodes[n as usize].mass -= 1;
                n = self.nodes[n as usize].parent;
            }
            return;
        }
        let parent = self.nodes[leaf as usize].parent;
        self.nodes[leaf as usize].point = NIL;
        self.free.push(leaf);
        if parent == NIL {
            self.root = NIL;
            return;
        }
        let sibling = if self.nodes[parent as usize].left == leaf {
            self.nodes[parent as usize].right
        } else {
            self.nodes[parent as usize].left
        };
        let grand = self.nodes[parent as usize].parent;
        self.nodes[sibling as usize].parent = grand;
        self.free.push(parent);
        if grand == NIL {
            self.root = sibling;
            return;
        }
        if self.nodes[grand as usize].left == parent {
            self.nodes[grand as usize].left = sibling;
        } else {
            self.nodes[grand as usize].right = sibling;
        }
        let mut n = grand;
        // Once a box comes out unchanged, every box above it is unchanged
        // too (a box is the union of its children's); masses still drop.
        let mut boxes_change = true;
        while n != NIL {
            self.nodes[n as usize].mass -= 1;
            if boxes_change {
                boxes_change = self.set_box_from_children(n, points);
            }
            n = self.nodes[n as usize].parent;
        }
    }

    /// Expected CoDisp of `x` if inserted; adds the attribution per
    /// dimension (low side, high side) to `attr` when given.
    fn score(&self, x: &[f32], points: &Points, mut attr: Option<&mut [f64]>) -> f64 {
        let mut walk = Walk::new(self.root);
        while walk.node != NIL {
            self.step(&mut walk, x, points, attr.as_deref_mut());
        }
        walk.sum
    }

    /// One level of the expected-CoDisp walk: adds this node's share and
    /// moves to the child (`node` becomes NIL when done). What the next
    /// level reads (the child's node and box, the sibling's mass) is
    /// prefetched, and the sibling's mass is only read at that next level:
    /// walks of several trees interleave, so those loads arrive meanwhile.
    #[inline]
    fn step(&self, w: &mut Walk, x: &[f32], points: &Points, attr: Option<&mut [f64]>) {
        let node = w.node;
        let n = &self.nodes[node as usize];
        if w.sibling != NIL {
            w.collusion = w
                .collusion
                .max(self.nodes[w.sibling as usize].mass as f64 / (n.mass as f64 + 1.0));
        }
        let (lo, hi) = self.bounds(node, points);
        let (gap, total) = gap_and_range(lo, hi, x);
        if total == 0.0 {
            // A copy of this leaf's point: it colludes with it.
            w.sum += w.remaining * w.collusion;
            w.node = NIL;
            return;
        }
        let p = gap / total;
        let codisp = (n.mass as f64).max(w.collusion);
        let contribution = w.remaining * p * codisp;
        w.sum += contribution;
        if let Some(attr) = attr
            && gap > 0.0
        {
            for k in 0..self.dims {
                let below = (lo[k] - x[k]).max(0.0) as f64;
                let above = (x[k] - hi[k]).max(0.0) as f64;
                attr[2 * k] += contribution * below / gap;
                attr[2 * k + 1] += contribution * above / gap;
            }
        }
        w.remaining *= 1.0 - p;
        if n.point != NIL || w.remaining <= 0.0 {
            w.node = NIL;
            return;
        }
        // Branch-free: the side is data, and a misprediction would flush
        // the other walks' loads in flight.
        let go_right = (x[n.cut_dim as usize] > n.cut) as usize;
        let children = [n.left, n.right];
        let (child, sibling) = (children[go_right], children[1 - go_right]);
        prefetch(&self.nodes[child as usize]);
        prefetch(&self.nodes[sibling as usize]);
        let b = child as usize * 2 * self.dims;
        prefetch(&self.bbox[b]);
        prefetch(&self.bbox[b + 2 * self.dims - 1]);
        w.node = child;
        w.sibling = sibling;
    }

    fn heap_down(&mut self, mut i: usize) {
        let n = self.sample.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.sample[l].0 < self.sample[m].0 {
                m = l;
            }
            if r < n && self.sample[r].0 < self.sample[m].0 {
                m = r;
            }
            if m == i {
                return;
            }
            self.sample.swap(i, m);
            i = m;
        }
    }

    fn heap_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if self.sample[p].0 <= self.sample[i].0 {
                return;
            }
            self.sample.swap(i, p);
            i = p;
        }
    }

    fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.bbox.capacity() * 4
            + self.sample.capacity() * 16
            + self.free.capacity() * 4
    }
}

/// How far `x` lies outside the box `[lo, hi]` (summed over dimensions) and
/// the range of the box grown to include it.
#[inline]
fn gap_and_range(lo: &[f32], hi: &[f32], x: &[f32]) -> (f64, f64) {
    let n = x.len().min(lo.len()).min(hi.len());
    #[cfg(target_arch = "x86_64")]
    let (mut g, mut r, done) = gap_and_range_sse(&lo[..n], &hi[..n], &x[..n]);
    #[cfg(not(target_arch = "x86_64"))]
    let (mut g, mut r, done) = (0.0f64, 0.0f64, 0usize);
    for k in done..n {
        let outside = ((lo[k] - x[k]).max(0.0) + (x[k] - hi[k]).max(0.0)) as f64;
        g += outside;
        r += (hi[k] - lo[k]) as f64 + outside;
    }
    (g, r)
}

/// The first multiple-of-4 dimensions four at a time (SSE is part of
/// x86-64, so no detection is needed); returns the sums and how many
/// dimensions it covered.
#[cfg(target_arch = "x86_64")]
#[inline]
fn gap_and_range_sse(lo: &[f32], hi: &[f32], x: &[f32]) -> (f64, f64, usize) {
    use std::arch::x86_64::{
        __m128, _mm_add_ps, _mm_loadu_ps, _mm_max_ps, _mm_setzero_ps, _mm_storeu_ps, _mm_sub_ps,
    };
    let n = x.len() / 4 * 4;
    assert!(lo.len() >= n && hi.len() >= n);
    let (mut g4, mut r4) = ([0.0f32; 4], [0.0f32; 4]);
    // SAFETY: SSE is part of the x86-64 baseline, so the intrinsics are
    // available; every load reads 4 floats at k + 4 <= n <= each slice's
    // length (unaligned loads accept any address); the stores write 4
    // floats into 4-float arrays.
    unsafe {
        let zero: __m128 = _mm_setzero_ps();
        let (mut gap, mut range) = (zero, zero);
        let mut k = 0;
        while k < n {
            let l = _mm_loadu_ps(lo.as_ptr().add(k));
            let h = _mm_loadu_ps(hi.as_ptr().add(k));
            let v = _mm_loadu_ps(x.as_ptr().add(k));
            let outside = _mm_add_ps(
                _mm_max_ps(_mm_sub_ps(l, v), zero),
                _mm_max_ps(_mm_sub_ps(v, h), zero),
            );
            gap = _mm_add_ps(gap, outside);
            range = _mm_add_ps(range, _mm_add_ps(_mm_sub_ps(h, l), outside));
            k += 4;
        }
        _mm_storeu_ps(g4.as_mut_ptr(), gap);
        _mm_storeu_ps(r4.as_mut_ptr(), range);
    }
    let g = g4.iter().map(|&v| v as f64).sum();
    let r = r4.iter().map(|&v| v as f64).sum();
    (g, r, n)
}

/// The state of one tree's scoring walk.
#[derive(Debug, Clone, Copy)]
struct Walk {
    node: u32,
    /// The sibling of `node`, whose mass joins the collusion at `node`.
    sibling: u32,
    remaining: f64,
    collusion: f64,
    sum: f64,
}

impl Walk {
    fn new(root: u32) -> Walk {
        Walk {
            node: root,
            sibling: NIL,
            remaining: 1.0,
            collusion: 0.0,
            sum: 0.0,
        }
    }
}

/// A hint to bring `v`'s cache line in (no effect where unsupported).
#[inline(always)]
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; `v` is a valid reference.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((v as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Trees walked in lockstep when scoring: their nodes are in different
/// arenas, so the cache misses of one level overlap instead of queueing.
const LOCKSTEP: usize = 8;

/// A Random Cut Forest over a stream, with internal shingling.
#[derive(Debug, Clone)]
pub struct RandomCutForest {
    params: RcfParams,
    lambda: f64,
    trees: Vec<Tree>,
    points: Points,
    shingle: Vec<f64>,
    filled: usize,
    seen: u64,
    scratch: Vec<f32>,
}

impl RandomCutForest {
    pub fn new(params: RcfParams) -> Result<Self, DetectError> {
        params.check()?;
        let dims = params.dimensions * params.shingle_size;
        let lambda = params
            .time_decay
            .unwrap_or(1.0 / (10.0 * params.sample_size as f64));
        let trees = (0..params.num_trees)
            .map(|t| Tree::new(dims, derive_seed(params.random_seed, t as u64)))
            .collect();
        Ok(RandomCutForest {
            lambda,
            trees,
            points: Points {
                dims,
                ..Points::default()
            },
            shingle: vec![0.0; dims],
            filled: 0,
            seen: 0,
            scratch: vec![0.0; dims],
            params,
        })
    }

    pub fn params(&self) -> &RcfParams {
        &self.params
    }

    /// Input points seen.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    fn check(&self, input: &[f64]) -> Result<(), DetectError> {
        check_row(input, self.params.dimensions)
    }

    /// The tree point `input` would form with the current shingle.
    fn shingled(&self, input: &[f64], out: &mut [f32]) {
        let d = self.params.dimensions;
        let n = self.shingle.len();
        // Shift left by one input, append the new one (oldest first).
        for (o, &v) in out.iter_mut().zip(self.shingle[d..].iter().chain(input)) {
            *o = v as f32;
        }
        debug_assert_eq!(out.len(), n);
    }

    fn ready(&self) -> bool {
        self.filled + 1 >= self.params.shingle_size && self.seen >= self.params.output_after as u64
    }

    /// The anomaly score of `input` (not learned from): 0 until the shingle
    /// is full and `output_after` points were seen.
    pub fn score(&self, input: &[f64]) -> Result<f64, DetectError> {
        self.check(input)?;
        if !self.ready() {
            return Ok(0.0);
        }
        let mut x = vec![0.0f32; self.points.dims];
        self.shingled(input, &mut x);
        let mut total = 0.0;
        for group in self.trees.chunks(LOCKSTEP) {
            let mut walks = [Walk::new(NIL); LOCKSTEP];
            for (w, t) in walks.iter_mut().zip(group) {
                w.node = t.root;
            }
            let mut active = true;
            while active {
                active = false;
                for (w, t) in walks.iter_mut().zip(group) {
                    if w.node != NIL {
                        t.step(w, &x, &self.points, None);
                        active |= w.node != NIL;
                    }
                }
            }
            total += walks.iter().map(|w| w.sum).sum::<f64>();
        }
        Ok(total / self.trees.len() as f64)
    }

    /// The score split over tree-point dimensions and direction:
    /// `[dim0 low, dim0 high, dim1 low, …]`; sums to the score.
    pub fn attribution(&self, input: &[f64]) -> Result<Vec<f64>, DetectError> {
        self.check(input)?;
        let mut attr = vec![0.0; 2 * self.points.dims];
        if !self.ready() {
            return Ok(attr);
        }
        let mut x = vec![0.0f32; self.points.dims];
        self.shingled(input, &mut x);
        for t in &self.trees {
            t.score(&x, &self.points, Some(&mut attr));
        }
        let n = self.trees.len() as f64;
        attr.iter_mut().for_each(|a| *a /= n);
        Ok(attr)
    }

    /// Learns `input`.
    pub fn update(&mut self, input: &[f64]) -> Result<(), DetectError> {
        self.check(input)?;
        let mut x = std::mem::take(&mut self.scratch);
        self.shingled(input, &mut x);
        let d = self.params.dimensions;
        let n = self.shingle.len();
        self.shingle.copy_within(d.., 0);
        self.shingle[n - d..].copy_from_slice(input);
        self.seen += 1;
        if self.filled + 1 < self.params.shingle_size {
            self.filled += 1;
            self.scratch = x;
            return Ok(());
        }
        let t = self.seen as f64;
        let mut p = NIL;
        for tree in &mut self.trees {
            let u = tree.rng.next_f64().max(f64::MIN_POSITIVE);
            let key = self.lambda * t - (-u.ln()).ln();
            let full = tree.sample.len() >= self.params.sample_size;
            if full && key <= tree.sample[0].0 {
                continue;
            }
            if p == NIL {
                p = self.points.add(&x);
            }
            // A copy of a sampled point joins its leaf and shares its
            // stored point, so the leaf never outlives what it points to.
            if full {
                let (_, old_point, old_leaf) = tree.sample[0];
                tree.delete(old_leaf, &self.points);
                let leaf = tree.insert(p, &x, &self.points);
                let q = tree.nodes[leaf as usize].point;
                tree.sample[0] = (key, q, leaf);
                tree.heap_down(0);
                self.points.refs[q as usize] += 1;
                self.points.release(old_point);
            } else {
                let leaf = tree.insert(p, &x, &self.points);
                let q = tree.nodes[leaf as usize].point;
                tree.sample.push((key, q, leaf));
                let last = tree.sample.len() - 1;
                tree.heap_up(last);
                self.points.refs[q as usize] += 1;
            }
        }
        if p != NIL && self.points.refs[p as usize] == 0 {
            self.points.free.push(p);
        }
        self.scratch = x;
        Ok(())
    }

    /// Scores `input`, then learns it.
    pub fn score_and_update(&mut self, input: &[f64]) -> Result<f64, DetectError> {
        let s = self.score(input)?;
        self.update(input)?;
        Ok(s)
    }

    /// Heap bytes held by the trees and the point store.
    pub fn heap_bytes(&self) -> usize {
        self.trees.iter().map(Tree::bytes).sum::<usize>()
            + self.points.data.capacity() * 4
            + self.points.refs.capacity() * 4
            + self.points.free.capacity() * 4
    }
}

/// Scores turned into an anomaly grade with an adaptive threshold: quiet
/// (grade 0) until `warmup` scores were seen; then a score above the
/// running mean + `z` running deviations of ordinary scores gets a grade in
/// (0, 1] growing with its excess. Only ordinary scores move the baseline.
#[derive(Debug, Clone)]
pub struct AnomalyGrader {
    pub z: f64,
    pub warmup: u64,
    alpha: f64,
    mean: f64,
    var: f64,
    n: u64,
}

impl AnomalyGrader {
    pub fn new(z: f64, warmup: u64) -> Self {
        AnomalyGrader {
            z,
            warmup,
            alpha: 0.005,
            mean: 0.0,
            var: 0.0,
            n: 0,
        }
    }

    /// The grade of `score` (0 = ordinary).
    pub fn grade(&mut self, score: f64) -> f64 {
        if score <= 0.0 {
            return 0.0;
        }
        self.n += 1;
        let std = self.var.max(0.0).sqrt();
        let threshold = self.mean + self.z * std.max(1e-9);
        let grade = if self.n > self.warmup && score > threshold {
            ((score - threshold) / threshold.max(1e-9)).min(1.0)
        } else {
            0.0
        };
        if grade == 0.0 {
            if self.n == 1 {
                self.mean = score;
            } else {
                let a = if self.n < 100 {
                    1.0 / self.n as f64
                } else {
                    self.alpha
                };
                let diff = score - self.mean;
                self.mean += a * diff;
                self.var = (1.0 - a) * (self.var + a * diff * diff);
            }
        }
        grade
    }
}

#[cfg(test)]
mod tests;

// ---- serialization ----

impl RandomCutForest {
    pub(crate) fn write(&self, w: &mut Writer) {
        let p = &self.params;
        for v in [
            p.dimensions,
            p.shingle_size,
            p.num_trees,
            p.sample_size,
            p.output_after,
        ] {
            w.u64(v as u64);
        }
        w.u64(p.random_seed);
        match p.time_decay {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.f64(l);
            }
        }
        w.f64s(&self.shingle);
        w.u64(self.filled as u64);
        w.u64(self.seen);
        w.f32s(&self.points.data);
        w.u32s(&self.points.refs);
        w.u32s(&self.points.free);
        for t in &self.trees {
            type Field = fn(&Node) -> u32;
            let fields: [Field; 6] = [
                |n| n.parent,
                |n| n.left,
                |n| n.right,
                |n| n.mass,
                |n| n.cut_dim,
                |n| n.point,
            ];
            for field in fields {
                w.u32s(&t.nodes.iter().map(field).collect::<Vec<_>>());
            }
            w.u32s(&t.free);
            w.f32s(&t.nodes.iter().map(|n| n.cut).collect::<Vec<_>>());
            w.f32s(&t.bbox);
            w.u32(t.root);
            w.u64s(&t.rng.state());
            let keys: Vec<f64> = t.sample.iter().map(|s| s.0).collect();
            let pts: Vec<u32> = t.sample.iter().map(|s| s.1).collect();
            let leaves: Vec<u32> = t.sample.iter().map(|s| s.2).collect();
            w.f64s(&keys);
            w.u32s(&pts);
            w.u32s(&leaves);
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DetectError> {
        let bad = |m: String| DetectError::Decode(DecodeError::Invalid(m));
        let mut next = || -> Result<usize, DetectError> {
            usize::try_from(r.u64()?).map_err(|_| bad("size out of range".into()))
        };
        let (dimensions, shingle_size, num_trees, sample_size, output_after) =
            (next()?, next()?, next()?, next()?, next()?);
        let random_seed = r.u64()?;
        let time_decay = match r.u8()? {
            0 => None,
            1 => Some(r.f64()?),
            t => return Err(bad(format!("time decay tag {t}"))),
        };
        let params = RcfParams {
            dimensions,
            shingle_size,
            num_trees,
            sample_size,
            time_decay,
            output_after,
            random_seed,
        };
        let mut f = RandomCutForest::new(params)?;
        let dims = f.points.dims;
        f.shingle = r.f64s()?;
        f.filled = usize::try_from(r.u64()?).map_err(|_| bad("filled".into()))?;
        f.seen = r.u64()?;
        if f.shingle.len() != dims
            || f.shingle.iter().any(|v| !v.is_finite())
            || f.filled >= shingle_size
        {
            return Err(bad("shingle state".into()));
        }
        f.points.data = r.f32s()?;
        f.points.refs = r.u32s()?;
        f.points.free = r.u32s()?;
        let n_points = f.points.refs.len();
        if f.points.data.len() != n_points * dims || f.points.data.iter().any(|v| !v.is_finite()) {
            return Err(bad("point store".into()));
        }
        let mut refs = vec![0u32; n_points];
        for t in &mut f.trees {
            let parent = r.u32s()?;
            let left = r.u32s()?;
            let right = r.u32s()?;
            let mass = r.u32s()?;
            let cut_dim = r.u32s()?;
            let point = r.u32s()?;
            t.free = r.u32s()?;
            let cut = r.f32s()?;
            let n = parent.len();
            if [&left, &right, &mass, &cut_dim, &point]
                .iter()
                .any(|v| v.len() != n)
                || cut.len() != n
            {
                return Err(bad("tree arrays of unequal length".into()));
            }
            t.nodes = (0..n)
                .map(|i| Node {
                    parent: parent[i],
                    left: left[i],
                    right: right[i],
                    mass: mass[i],
                    cut_dim: cut_dim[i],
                    cut: cut[i],
                    point: point[i],
                })
                .collect();
            t.bbox = r.f32s()?;
            t.root = r.u32()?;
            let state = r.u64s()?;
            t.rng = <[u64; 4]>::try_from(state.as_slice())
                .ok()
                .and_then(Rng::from_state)
                .ok_or_else(|| bad("tree random state".into()))?;
            let keys = r.f64s()?;
            let pts = r.u32s()?;
            let leaves = r.u32s()?;
            if keys.len() != pts.len() || keys.len() != leaves.len() || keys.len() > sample_size {
                return Err(bad("sample arrays".into()));
            }
            t.sample = keys
                .into_iter()
                .zip(pts)
                .zip(leaves)
                .map(|((k, p), l)| (k, p, l))
                .collect();
            t.validate(n_points, &mut refs).map_err(bad)?;
        }
        if refs != f.points.refs {
            return Err(bad("point reference counts do not match the samples".into()));
        }
        let mut is_free = vec![false; n_points];
        for &p in &f.points.free {
            let p = p as usize;
            if p >= n_points || refs[p] != 0 || is_free[p] {
                return Err(bad("point free list".into()));
            }
            is_free[p] = true;
        }
        Ok(f)
    }
}

impl Tree {
    /// Structural invariants a loaded tree must meet before it is used:
    /// a tree (no cycles, consistent parents) whose masses add up, whose
    /// sample names its reachable leaves, and whose free list is disjoint
    /// from it. Adds the sample's point references to `refs`.
    fn validate(&self, n_points: usize, refs: &mut [u32]) -> Result<(), String> {
        let n = self.nodes.len();
        let d = self.dims;
        if self.bbox.len() != 2 * d * n {
            return Err("tree arrays of unequal length".into());
        }
        if self.nodes.iter().any(|n| !n.cut.is_finite()) || self.bbox.iter().any(|v| !v.is_finite())
        {
            return Err("non-finite cut or box".into());
        }
        let mut seen = vec![false; n];
        let mut leaf_mass = 0u64;
        if self.root != NIL {
            if self.root as usize >= n || self.nodes[self.root as usize].parent != NIL {
                return Err("root".into());
            }
            let mut stack = vec![self.root];
            while let Some(node) = stack.pop() {
                let i = node as usize;
                if seen[i] {
                    return Err(format!("node {i} reached twice"));
                }
                seen[i] = true;
                if self.nodes[i].point != NIL {
                    if self.nodes[i].point as usize >= n_points || self.nodes[i].mass == 0 {
                        return Err(format!("leaf {i}"));
                    }
                    leaf_mass += self.nodes[i].mass as u64;
                    continue;
                }
                let (l, r) = (self.nodes[i].left, self.nodes[i].right);
                if l as usize >= n || r as usize >= n || self.nodes[i].cut_dim as usize >= d {
                    return Err(format!("node {i} children or cut"));
                }
                if self.nodes[l as usize].parent != node || self.nodes[r as usize].parent != node {
                    return Err(format!("node {i} children's parent"));
                }
                if self.nodes[i].mass as u64
                    != self.nodes[l as usize].mass as u64 + self.nodes[r as usize].mass as u64
                {
                    return Err(format!("node {i} mass"));
                }
                stack.push(l);
                stack.push(r);
            }
        }
        for &f in &self.free {
            if f as usize >= n || seen[f as usize] {
                return Err("free list names a live node".into());
            }
        }
        if seen.iter().filter(|s| **s).count() + self.free.len() != n {
            return Err("nodes neither live nor free".into());
        }
        if leaf_mass != self.sample.len() as u64 {
            return Err("sample size differs from the tree's mass".into());
        }
        for &(key, p, leaf) in &self.sample {
            let l = leaf as usize;
            if !key.is_finite() || l >= n || !seen[l] || self.nodes[l].point != p {
                return Err("sample entry".into());
            }
            refs[p as usize] += 1;
        }
        Ok(())
    }
}
