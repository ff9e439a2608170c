use super::*;

/// Feature, threshold, mass being counted, mass of the last full window;
/// heap order (root at 1).
type FullTree = (Vec<u32>, Vec<f64>, Vec<f64>, Vec<f64>);

/// River's algorithm done the slow way: every node of the padded tree
/// materialised, every learned row counted down to its leaf, masses
/// swapped at the end of each window. Splits are the same pure function
/// of (tree seed, heap position, range) the fast version uses.
struct Reference {
    trees: Vec<FullTree>,
    height: usize,
    window: usize,
    counter: usize,
    first_window: bool,
}

impl Reference {
    fn new(params: &HstParams, limits: &[(f64, f64)]) -> Reference {
        let n = 1usize << (params.height + 1);
        let trees = (0..params.n_trees)
            .map(|t| {
                let seed = derive_seed(params.seed, t as u64);
                let mut feature = vec![0u32; n];
                let mut threshold = vec![0.0; n];
                let mut ranges = limits.to_vec();
                build(
                    seed,
                    1,
                    0,
                    params.height,
                    &mut ranges,
                    &mut feature,
                    &mut threshold,
                );
                (feature, threshold, vec![0.0; n], vec![0.0; n])
            })
            .collect();
        Reference {
            trees,
            height: params.height,
            window: params.window_size,
            counter: 0,
            first_window: true,
        }
    }

    fn path(&self, t: usize, row: &[f64]) -> Vec<usize> {
        let (feature, threshold, _, _) = &self.trees[t];
        let mut heap = 1;
        let mut out = vec![heap];
        for _ in 0..self.height {
            heap = 2 * heap + (row[feature[heap] as usize] >= threshold[heap]) as usize;
            out.push(heap);
        }
        out
    }

    fn score(&self, row: &[f64]) -> f64 {
        if self.first_window {
            return 0.0;
        }
        let limit = 0.1 * self.window as f64;
        let mut score = 0.0;
        for t in 0..self.trees.len() {
            for (depth, heap) in self.path(t, row).into_iter().enumerate() {
                let r = self.trees[t].3[heap];
                score += r * 2f64.powi(depth as i32);
                if r < limit {
                    break;
                }
            }
        }
        let max = self.trees.len() as f64
            * self.window as f64
            * (2f64.powi(self.height as i32 + 1) - 1.0);
        1.0 - score / max
    }

    fn learn(&mut self, row: &[f64]) {
        for t in 0..self.trees.len() {
            for heap in self.path(t, row) {
                self.trees[t].2[heap] += 1.0;
            }
        }
        self.counter += 1;
        if self.counter == self.window {
            for tree in &mut self.trees {
                tree.3 = std::mem::replace(&mut tree.2, vec![0.0; tree.3.len()]);
            }
            self.counter = 0;
            self.first_window = false;
        }
    }
}

fn build(
    seed: u64,
    heap: u64,
    depth: usize,
    height: usize,
    ranges: &mut [(f64, f64)],
    feature: &mut [u32],
    threshold: &mut [f64],
) {
    let mut scratch = Tree::default();
    scratch.add(seed, heap, ranges);
    let (f, th) = (
        scratch.nodes[0].feature as usize,
        scratch.nodes[0].threshold,
    );
    feature[heap as usize] = f as u32;
    threshold[heap as usize] = th;
    if depth == height {
        return;
    }
    let saved = ranges[f];
    ranges[f] = (saved.0, th);
    build(
        seed,
        2 * heap,
        depth + 1,
        height,
        ranges,
        feature,
        threshold,
    );
    ranges[f] = (th, saved.1);
    build(
        seed,
        2 * heap + 1,
        depth + 1,
        height,
        ranges,
        feature,
        threshold,
    );
    ranges[f] = saved;
}

fn stream(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            (0..d)
                .map(|k| {
                    // Mostly a cluster that moves halfway through, with outliers.
                    if rng.next_f64() < 0.02 {
                        rng.next_f64()
                    } else {
                        let centre = if i < n / 2 { 0.3 } else { 0.6 } + 0.05 * k as f64;
                        (centre + 0.05 * rng.normal()).clamp(0.0, 1.0)
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn scores_equal_the_full_tree_reference_exactly() {
    for (d, height, window, seed) in [(3, 8, 50, 1), (1, 6, 20, 2), (5, 10, 100, 3), (2, 3, 7, 4)] {
        let params = HstParams {
            n_trees: 4,
            height,
            window_size: window,
            limits: Some(vec![(0.0, 1.0); d]),
            seed,
        };
        let mut fast = HalfSpaceTrees::new(params.clone(), d).unwrap();
        let mut slow = Reference::new(&params, &vec![(0.0, 1.0); d]);
        for (i, row) in stream(1_000, d, seed).iter().enumerate() {
            let (a, b) = (fast.score(row).unwrap(), slow.score(row));
            assert!(
                (a - b).abs() < 1e-12,
                "d={d} h={height} row {i}: {a} vs {b}"
            );
            fast.update(row).unwrap();
            slow.learn(row);
        }
        // Far fewer nodes than the full tree.
        let full = (1usize << (height + 1)) - 1;
        assert!(fast.node_counts().iter().all(|&n| n <= full));
    }
}

#[test]
fn quiet_during_the_first_window_then_in_unit_range() {
    let mut hst = HalfSpaceTrees::new(HstParams::default(), 2).unwrap();
    let rows = stream(2_000, 2, 9);
    for (i, row) in rows.iter().enumerate() {
        let s = hst.score_and_update(row).unwrap();
        if i < 250 {
            assert_eq!(s, 0.0);
        } else {
            assert!((0.0..=1.0).contains(&s), "row {i}: {s}");
        }
    }
    // Learned limits cover the first window's data.
    let limits = hst.limits().unwrap();
    assert!(limits.iter().all(|&(a, b)| a < 0.3 && b > 0.3));
}

#[test]
fn outliers_score_above_the_cluster_and_explanations_name_the_feature() {
    let params = HstParams {
        limits: Some(vec![(0.0, 1.0); 3]),
        seed: 5,
        ..HstParams::default()
    };
    let mut hst = HalfSpaceTrees::new(params, 3).unwrap();
    let mut rng = Rng::seed_from_u64(1);
    for _ in 0..1_000 {
        let row: Vec<f64> = (0..3).map(|_| 0.5 + 0.03 * rng.normal()).collect();
        hst.update(&row).unwrap();
    }
    let normal = hst.score(&[0.5, 0.5, 0.5]).unwrap();
    let outlier = hst.score(&[0.5, 0.95, 0.5]).unwrap();
    assert!(outlier > normal + 0.2, "{outlier} vs {normal}");
    let explanation = hst.explain(&[0.5, 0.95, 0.5]).unwrap();
    let top = (0..3)
        .max_by(|&a, &b| explanation[a].total_cmp(&explanation[b]))
        .unwrap();
    assert_eq!(top, 1, "{explanation:?}");
    assert!((explanation.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn drift_is_followed_within_two_windows() {
    let params = HstParams {
        limits: Some(vec![(0.0, 1.0)]),
        window_size: 100,
        seed: 3,
        ..HstParams::default()
    };
    let mut hst = HalfSpaceTrees::new(params, 1).unwrap();
    for i in 0..1_000 {
        hst.update(&[0.2 + 0.001 * (i % 10) as f64]).unwrap();
    }
    let before = hst.score(&[0.8]).unwrap();
    let familiar = hst.score(&[0.205]).unwrap();
    for i in 0..200 {
        hst.update(&[0.8 + 0.001 * (i % 10) as f64]).unwrap();
    }
    let after = hst.score(&[0.8]).unwrap();
    // As ordinary as the old cluster was.
    assert!(after < before - 0.05, "{after} vs {before}");
    assert!((after - familiar).abs() < 0.01, "{after} vs {familiar}");
}

#[test]
fn bad_parameters_and_rows_are_errors() {
    let err = |p: HstParams, d| HalfSpaceTrees::new(p, d).unwrap_err().to_string();
    let d = HstParams::default;
    for (params, name) in [
        (HstParams { n_trees: 0, ..d() }, "n_trees"),
        (HstParams { height: 0, ..d() }, "height"),
        (
            HstParams {
                window_size: 0,
                ..d()
            },
            "window_size",
        ),
    ] {
        assert!(err(params, 1).contains(name), "{name}");
    }
    let limits = HstParams {
        limits: Some(vec![(1.0, 1.0)]),
        ..HstParams::default()
    };
    assert!(err(limits, 1).contains("low < high"));
    let hst = HalfSpaceTrees::new(HstParams::default(), 2).unwrap();
    assert_eq!(
        hst.score(&[1.0]).unwrap_err(),
        DetectError::FeatureCount {
            expected: 2,
            got: 1
        }
    );
    assert!(matches!(
        hst.score(&[1.0, f64::NAN]).unwrap_err(),
        DetectError::NonFinite { column: 1, .. }
    ));
}

#[test]
fn serialization_round_trips_mid_window() {
    let params = HstParams {
        window_size: 64,
        n_trees: 8,
        height: 9,
        seed: 11,
        ..HstParams::default()
    };
    let rows = stream(1_000, 3, 4);
    let mut a = HalfSpaceTrees::new(params, 3).unwrap();
    for row in &rows[..500] {
        a.update(row).unwrap();
    }
    let mut w = Writer::new();
    a.write(&mut w);
    let bytes = w.into_bytes();
    let mut r = Reader::new(&bytes);
    let mut b = HalfSpaceTrees::read(&mut r).unwrap();
    r.finish().unwrap();
    for row in &rows[500..] {
        assert_eq!(
            a.score_and_update(row).unwrap(),
            b.score_and_update(row).unwrap()
        );
    }
    // Every truncation is an error, never a panic.
    for cut in (0..bytes.len()).step_by(7) {
        assert!(HalfSpaceTrees::read(&mut Reader::new(&bytes[..cut])).is_err());
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For any shape and any stream (values may leave the ranges, and
        /// repeat), the lazy trees score exactly what the full trees do,
        /// and a model saved and loaded at any point goes on identically.
        #[test]
        fn lazy_trees_equal_full_trees(
            d in 1usize..4,
            height in 1usize..7,
            window in 1usize..40,
            n_trees in 1usize..4,
            seed in any::<u64>(),
            values in proptest::collection::vec(-0.5f64..1.5, 1..600),
            save_at in 0usize..200,
        ) {
            let params = HstParams {
                n_trees,
                height,
                window_size: window,
                limits: Some(vec![(0.0, 1.0); d]),
                seed,
            };
            let mut fast = HalfSpaceTrees::new(params.clone(), d).unwrap();
            let mut slow = Reference::new(&params, &vec![(0.0, 1.0); d]);
            // Coarse values so rows repeat.
            let rows: Vec<Vec<f64>> = values
                .chunks_exact(d)
                .map(|r| r.iter().map(|v| (v * 8.0).round() / 8.0).collect())
                .collect();
            for (i, row) in rows.iter().enumerate() {
                if i == save_at {
                    let mut w = Writer::new();
                    fast.write(&mut w);
                    let bytes = w.into_bytes();
                    fast = HalfSpaceTrees::read(&mut Reader::new(&bytes)).unwrap();
                }
                let (a, b) = (fast.score(row).unwrap(), slow.score(row));
                prop_assert!((a - b).abs() < 1e-12, "row {}: {} vs {}", i, a, b);
                fast.update(row).unwrap();
                slow.learn(row);
            }
        }
    }
}
