use super::*;

fn noisy_sine(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| (i as f64 * std::f64::consts::TAU / 50.0).sin() * 10.0 + rng.normal() * 0.3)
        .collect()
}

fn small() -> RcfParams {
    RcfParams {
        num_trees: 30,
        sample_size: 128,
        output_after: 128,
        random_seed: 7,
        ..RcfParams::default()
    }
}

#[test]
fn a_spike_scores_far_above_ordinary_points() {
    let mut series = noisy_sine(2000, 1);
    // An in-range spike (the sine crosses 0 here) only breaks the shape;
    // the second leaves the range too.
    series[1500] += 8.0;
    series[1762] += 8.0;
    let mut rcf = RandomCutForest::new(small()).unwrap();
    let scores: Vec<f64> = series
        .iter()
        .map(|&v| rcf.score_and_update(&[v]).unwrap())
        .collect();
    assert!(
        scores[..128].iter().all(|&s| s == 0.0),
        "quiet before output_after"
    );
    let mut ordinary: Vec<f64> = scores[300..1490].to_vec();
    ordinary.sort_by(f64::total_cmp);
    let p99 = ordinary[ordinary.len() * 99 / 100];
    assert!(
        scores[1500] > 1.5 * p99,
        "spike {} vs p99 {p99}",
        scores[1500]
    );
    assert!(
        scores[1762] > 3.0 * p99,
        "spike {} vs p99 {p99}",
        scores[1762]
    );
}

#[test]
fn same_seed_same_scores_and_other_seed_differs() {
    let series = noisy_sine(800, 2);
    let run = |seed| {
        let mut rcf = RandomCutForest::new(RcfParams {
            random_seed: seed,
            ..small()
        })
        .unwrap();
        series
            .iter()
            .map(|&v| rcf.score_and_update(&[v]).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn attribution_sums_to_the_score_and_points_the_right_way() {
    let series = noisy_sine(1000, 3);
    let mut rcf = RandomCutForest::new(small()).unwrap();
    for &v in &series {
        rcf.update(&[v]).unwrap();
    }
    // A value far above anything seen: the newest shingle slot, high side.
    let score = rcf.score(&[40.0]).unwrap();
    let attr = rcf.attribution(&[40.0]).unwrap();
    let total: f64 = attr.iter().sum();
    assert!(
        (total - score).abs() < 1e-9 * score.max(1.0),
        "{total} vs {score}"
    );
    let newest_high = attr[2 * 7 + 1];
    assert!(
        newest_high > 0.8 * score,
        "newest/high {newest_high} of {score}"
    );
    let low = rcf.attribution(&[-40.0]).unwrap();
    assert!(low[2 * 7] > 0.8 * rcf.score(&[-40.0]).unwrap());
}

#[test]
fn sample_stays_bounded_and_memory_stops_growing() {
    let mut rcf = RandomCutForest::new(small()).unwrap();
    let series = noisy_sine(20_000, 4);
    for &v in &series[..5000] {
        rcf.update(&[v]).unwrap();
    }
    let bytes = rcf.heap_bytes();
    for &v in &series[5000..] {
        rcf.update(&[v]).unwrap();
    }
    for t in &rcf.trees {
        assert_eq!(t.sample.len(), 128);
        assert_eq!(t.nodes[t.root as usize].mass, 128);
    }
    let live = rcf.points.refs.iter().filter(|&&r| r > 0).count();
    assert!(live <= 30 * 128);
    assert!(
        rcf.heap_bytes() <= bytes + bytes / 10,
        "{} vs {bytes}",
        rcf.heap_bytes()
    );
}

#[test]
fn trees_stay_consistent_under_insert_and_delete() {
    let mut rcf = RandomCutForest::new(RcfParams {
        shingle_size: 2,
        dimensions: 2,
        ..small()
    })
    .unwrap();
    let mut rng = Rng::seed_from_u64(9);
    for _ in 0..3000 {
        // Coarse values make duplicates, exercising the copy counts.
        let p = [(rng.below(5)) as f64, rng.below(5) as f64];
        rcf.update(&p).unwrap();
    }
    for t in &rcf.trees {
        check_subtree(t, t.root, &rcf.points);
    }
}

fn check_subtree(t: &Tree, n: u32, points: &Points) -> (Vec<f32>, Vec<f32>, u32) {
    if t.is_leaf(n) {
        let p = points.get(t.nodes[n as usize].point).to_vec();
        return (p.clone(), p, t.nodes[n as usize].mass);
    }
    let (l, r) = (t.nodes[n as usize].left, t.nodes[n as usize].right);
    assert_eq!(t.nodes[l as usize].parent, n);
    assert_eq!(t.nodes[r as usize].parent, n);
    let (llo, lhi, lm) = check_subtree(t, l, points);
    let (rlo, rhi, rm) = check_subtree(t, r, points);
    let (lo, hi) = t.bounds(n, points);
    for k in 0..t.dims {
        assert_eq!(lo[k], llo[k].min(rlo[k]));
        assert_eq!(hi[k], lhi[k].max(rhi[k]));
    }
    let (cd, cut) = (
        t.nodes[n as usize].cut_dim as usize,
        t.nodes[n as usize].cut,
    );
    assert!(
        lhi[cd] <= cut && cut < rlo[cd],
        "cut {cut} between {} and {}",
        lhi[cd],
        rlo[cd]
    );
    assert_eq!(t.nodes[n as usize].mass, lm + rm);
    (lo.to_vec(), hi.to_vec(), lm + rm)
}

#[test]
fn bad_inputs_and_parameters_are_errors() {
    let mut rcf = RandomCutForest::new(small()).unwrap();
    assert_eq!(
        rcf.update(&[1.0, 2.0]).unwrap_err(),
        DetectError::FeatureCount {
            expected: 1,
            got: 2
        }
    );
    assert!(matches!(
        rcf.score(&[f64::NAN]),
        Err(DetectError::NonFinite { .. })
    ));
    for bad in [
        RcfParams {
            dimensions: 0,
            ..small()
        },
        RcfParams {
            shingle_size: 0,
            ..small()
        },
        RcfParams {
            num_trees: 0,
            ..small()
        },
        RcfParams {
            sample_size: 1,
            ..small()
        },
        RcfParams {
            time_decay: Some(-1.0),
            ..small()
        },
    ] {
        assert!(matches!(
            RandomCutForest::new(bad),
            Err(DetectError::InvalidParam { .. })
        ));
    }
}

#[test]
fn grader_is_quiet_in_warmup_and_grades_outliers() {
    let mut g = AnomalyGrader::new(3.0, 50);
    let mut rng = Rng::seed_from_u64(5);
    for _ in 0..50 {
        assert_eq!(g.grade(1.0 + rng.next_f64() * 0.1), 0.0);
    }
    // A big value in warm-up would also be quiet; after it, it is graded.
    for _ in 0..200 {
        assert_eq!(g.grade(1.0 + rng.next_f64() * 0.1), 0.0);
    }
    let grade = g.grade(5.0);
    assert!(grade > 0.5 && grade <= 1.0, "{grade}");
    assert_eq!(g.grade(1.05), 0.0);
}
