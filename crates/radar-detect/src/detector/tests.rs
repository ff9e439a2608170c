use radar_core::{Matrix, Rng};

use super::*;
use crate::hst::HstParams;
use crate::rcf::RcfParams;
use crate::{IsolationForestParams, MaxSamples};

fn series(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| (i as f64 * 0.2).sin() + 0.05 * rng.normal())
        .collect()
}

fn detectors() -> Vec<Box<dyn Detector>> {
    let rows: Vec<Vec<f64>> = series(600, 1).windows(2).map(|w| w.to_vec()).collect();
    let train = Matrix::from_rows(&rows).unwrap();
    let iforest = IsolationForest::fit(
        &IsolationForestParams {
            n_estimators: 20,
            max_samples: MaxSamples::Count(64),
            random_state: Some(3),
            ..IsolationForestParams::default()
        },
        train.view(),
    )
    .unwrap();
    let hst = HalfSpaceTrees::new(
        HstParams {
            n_trees: 10,
            height: 8,
            window_size: 50,
            limits: None,
            seed: 4,
        },
        2,
    )
    .unwrap();
    let rcf = RandomCutForest::new(RcfParams {
        dimensions: 2,
        shingle_size: 4,
        num_trees: 10,
        sample_size: 64,
        output_after: 32,
        random_seed: 5,
        ..RcfParams::default()
    })
    .unwrap();
    let ecod = crate::JointTail::fit(&crate::JointTailParams::default(), train.view()).unwrap();
    let copod = crate::JointTail::fit(
        &crate::JointTailParams {
            rule: crate::TailRule::Copod,
            max_knots: 100,
        },
        train.view(),
    )
    .unwrap();
    let eif = crate::ExtendedIsolationForest::fit(
        &crate::EifParams {
            n_trees: 10,
            sample_size: 64,
            contamination: crate::Contamination::Fraction(0.1),
            ..crate::EifParams::default()
        },
        train.view(),
    )
    .unwrap();
    let mut ensemble = crate::RankEnsemble::new(vec![
        Box::new(iforest.clone()),
        Box::new(crate::JointTail::new(crate::JointTailParams::default(), 2).unwrap()),
    ])
    .unwrap();
    ensemble.fit(train.view()).unwrap();
    vec![
        Box::new(iforest),
        Box::new(hst),
        Box::new(rcf),
        Box::new(ecod),
        Box::new(copod),
        Box::new(eif),
        Box::new(ensemble),
    ]
}

fn rows() -> Vec<Vec<f64>> {
    series(400, 2).windows(2).map(|w| w.to_vec()).collect()
}

#[test]
fn every_detector_round_trips_through_load_mid_stream() {
    let rows = rows();
    for mut d in detectors() {
        for row in &rows[..200] {
            d.observe(row, LearnPolicy::All).unwrap();
        }
        let bytes = d.to_bytes();
        let mut back = load(&bytes).unwrap();
        assert_eq!(back.kind(), d.kind());
        assert_eq!(back.n_features(), 2);
        for row in &rows[200..] {
            let a = d.observe(row, LearnPolicy::All).unwrap();
            let b = back.observe(row, LearnPolicy::All).unwrap();
            assert_eq!(a, b, "{:?}", d.kind());
            assert_eq!(d.explain_row(row).unwrap(), back.explain_row(row).unwrap());
        }
        assert_eq!(d.to_bytes(), back.to_bytes());
    }
}

#[test]
fn corrupt_model_files_are_errors_and_never_panic() {
    let rows = rows();
    let mut rng = Rng::seed_from_u64(9);
    for mut d in detectors() {
        for row in &rows {
            d.observe(row, LearnPolicy::All).unwrap();
        }
        let bytes = d.to_bytes();
        // The checksum catches flips in the file.
        for _ in 0..50 {
            let mut b = bytes.clone();
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 << rng.below(8);
            assert!(load(&b).is_err());
        }
        for cut in (0..bytes.len()).step_by(97) {
            assert!(load(&bytes[..cut]).is_err());
        }
        // Validation catches what a checksum cannot (a model written wrong):
        // mutated payloads, resealed, either fail to load or score safely.
        let (kind, payload) = codec::open(&bytes).unwrap();
        for _ in 0..300 {
            let mut p = payload.to_vec();
            let i = rng.below(p.len() as u64) as usize;
            p[i] = rng.next_u64() as u8;
            if let Ok(mut m) = load(&codec::seal(kind, &p)) {
                for row in &rows[..20] {
                    let _ = m.observe(row, LearnPolicy::All);
                    let _ = m.explain_row(row);
                }
            }
        }
    }
}

#[test]
fn explanations_are_shares() {
    let rows = rows();
    for mut d in detectors() {
        for row in &rows {
            d.observe(row, LearnPolicy::All).unwrap();
        }
        let e = d.explain_row(&[3.0, 0.0]).unwrap();
        assert_eq!(e.len(), 2);
        assert!(
            (e.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "{:?}: {e:?}",
            d.kind()
        );
    }
}

#[test]
fn learning_only_unflagged_rows_keeps_a_burst_anomalous() {
    let rows = rows();
    let burst = [2.5, 2.5];
    for policy_kind in [ModelKind::HalfSpaceTrees, ModelKind::RandomCutForest] {
        let run = |policy: LearnPolicy| {
            let mut d = detectors()
                .into_iter()
                .find(|d| d.kind() == policy_kind)
                .unwrap();
            for row in &rows {
                d.observe(row, LearnPolicy::All).unwrap();
            }
            let first = d.score_row(&burst).unwrap();
            for _ in 0..150 {
                d.observe(&burst, policy).unwrap();
            }
            (first, d.score_row(&burst).unwrap())
        };
        let (first, learned) = run(LearnPolicy::All);
        let threshold = first * 0.9;
        let (_, guarded) = run(LearnPolicy::Unflagged { threshold });
        assert!(
            learned < threshold,
            "{policy_kind:?}: all-learning {learned} vs {first}"
        );
        assert!(
            guarded >= threshold,
            "{policy_kind:?}: guarded {guarded} vs {first}"
        );
    }
}

#[test]
fn rcf_says_whether_an_anomaly_is_above_or_below() {
    let mut rcf = detectors().remove(2);
    for row in &rows() {
        rcf.observe(row, LearnPolicy::All).unwrap();
    }
    // Feature 1 far above the sine, feature 0 ordinary; then far below.
    let up = rcf.explain_directed(&[0.0, 5.0]).unwrap().1.unwrap();
    let down = rcf.explain_directed(&[0.0, -5.0]).unwrap().1.unwrap();
    assert!(up[1] && !down[1], "{up:?} {down:?}");
    assert_eq!(
        detectors()
            .remove(0)
            .explain_directed(&[0.0, 5.0])
            .unwrap()
            .1,
        None
    );
}

#[test]
fn batch_detectors_are_frozen_but_check_rows() {
    let mut d = detectors().remove(0);
    assert!(!d.is_online());
    let before = d.score_row(&[0.5, 0.5]).unwrap();
    d.update(&[0.5, 0.5]).unwrap();
    assert_eq!(d.score_row(&[0.5, 0.5]).unwrap(), before);
    assert!(d.update(&[0.5]).is_err());
    assert!(d.update(&[0.5, f64::INFINITY]).is_err());
}

/// The bug: the scorer learned "unflagged" events at score ≤ threshold,
/// this policy only below it; an event scored exactly at the threshold
/// raised no alert here yet was not learned. Unflagged now means "raised
/// no alert" everywhere: alerts fire above the threshold.
#[test]
fn regression_learn_policies_disagreed_at_the_threshold() {
    let p = LearnPolicy::Unflagged { threshold: 0.9 };
    assert!(p.learns(0.9), "at the threshold: no alert, so learned");
    assert!(p.learns(0.2));
    assert!(!p.learns(0.900_001));
}
