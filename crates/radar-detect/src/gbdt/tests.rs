use radar_core::{Matrix, Rng};

use super::*;
use crate::metrics;

/// Two features; positives where exactly one of them is high (XOR), which
/// no single split separates, plus 5% label noise.
fn xor(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * 3);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b, c) = (rng.next_f64(), rng.next_f64(), rng.normal());
        data.extend([a, b, c]);
        let positive = (a > 0.7) != (b > 0.7);
        y.push(positive != (rng.next_f64() < 0.05));
    }
    (Matrix::new(data, 3).unwrap(), y)
}

#[test]
fn learns_an_interaction_no_single_split_separates() {
    let (x, y) = xor(4_000, 1);
    let model = Gbdt::fit(&GbdtParams::default(), x.view(), &y).unwrap();
    let (xt, yt) = xor(4_000, 2);
    let scores: Vec<f64> = (0..xt.rows())
        .map(|i| model.predict_proba(xt.row(i)).unwrap())
        .collect();
    let auc = metrics::roc_auc(&scores, &yt).unwrap();
    assert!(auc > 0.9, "auc {auc}");
    // The noise feature earns little credit.
    let credit = |f: usize| -> f64 {
        (0..500)
            .map(|i| model.contributions(xt.row(i)).unwrap()[f].abs())
            .sum()
    };
    assert!(
        credit(2) < 0.2 * (credit(0) + credit(1)),
        "{} {} {}",
        credit(0),
        credit(1),
        credit(2)
    );
}

#[test]
fn contributions_add_up_to_the_margin() {
    let (x, y) = xor(2_000, 3);
    let model = Gbdt::fit(
        &GbdtParams {
            n_trees: 50,
            ..GbdtParams::default()
        },
        x.view(),
        &y,
    )
    .unwrap();
    for i in 0..200 {
        let row = x.row(i);
        let sum: f64 =
            model.contributions(row).unwrap().iter().sum::<f64>() + model.expected_margin();
        let m = model.margin(row).unwrap();
        assert!((sum - m).abs() < 1e-9, "{sum} vs {m}");
    }
}

#[test]
fn probabilities_are_calibrated_to_the_base_rate() {
    // 3% positives that depend on one feature.
    let mut rng = Rng::seed_from_u64(4);
    let n = 20_000;
    let mut data = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let a = rng.next_f64();
        data.extend([a, rng.normal()]);
        y.push(rng.next_f64() < 0.01 + 0.1 * (a > 0.8) as u8 as f64);
    }
    let x = Matrix::new(data, 2).unwrap();
    let model = Gbdt::fit(&GbdtParams::default(), x.view(), &y).unwrap();
    let mean: f64 = (0..n)
        .map(|i| model.predict_proba(x.row(i)).unwrap())
        .sum::<f64>()
        / n as f64;
    let rate = y.iter().filter(|&&l| l).count() as f64 / n as f64;
    assert!(
        (mean - rate).abs() < 0.2 * rate,
        "mean p {mean} vs rate {rate}"
    );
    // The high group is about 10 times as likely.
    let p_hi = model.predict_proba(&[0.9, 0.0]).unwrap();
    let p_lo = model.predict_proba(&[0.3, 0.0]).unwrap();
    assert!(p_hi > 4.0 * p_lo, "{p_hi} {p_lo}");
}

#[test]
fn model_files_round_trip_and_are_checked() {
    let (x, y) = xor(1_000, 5);
    let model = Gbdt::fit(
        &GbdtParams {
            n_trees: 20,
            ..GbdtParams::default()
        },
        x.view(),
        &y,
    )
    .unwrap();
    let bytes = model.to_bytes();
    let back = Gbdt::from_bytes(&bytes).unwrap();
    assert_eq!(back, model);
    let loaded = crate::load(&bytes).unwrap();
    assert_eq!(
        loaded.score_row(x.row(7)).unwrap(),
        model.predict_proba(x.row(7)).unwrap()
    );
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(
            Gbdt::from_bytes(&b).is_err(),
            "a flipped bit at {i} went unnoticed"
        );
    }
}

#[test]
fn bad_inputs_are_named() {
    let (x, y) = xor(100, 6);
    let e = Gbdt::fit(&GbdtParams::default(), x.view(), &y[..50]).unwrap_err();
    assert!(e.to_string().contains("labels"), "{e}");
    let e = Gbdt::fit(&GbdtParams::default(), x.view(), &[false; 100]).unwrap_err();
    assert!(e.to_string().contains("both classes"), "{e}");
    let e = GbdtParams {
        learning_rate: 0.0,
        ..GbdtParams::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("learning_rate"), "{e}");
    let model = Gbdt::fit(
        &GbdtParams {
            n_trees: 3,
            ..GbdtParams::default()
        },
        x.view(),
        &y,
    )
    .unwrap();
    assert!(model.predict_proba(&[1.0]).is_err());
    assert!(model.predict_proba(&[f64::NAN, 0.0, 0.0]).is_err());
}

/// The lockstep walk gives exactly the tree-by-tree margin (remainders of
/// fewer than eight trees included).
#[test]
fn lockstep_margins_equal_plain_walks() {
    let (x, y) = xor(1_500, 8);
    for n_trees in [1, 7, 8, 13, 40] {
        let model = Gbdt::fit(
            &GbdtParams {
                n_trees,
                max_depth: 5,
                ..GbdtParams::default()
            },
            x.view(),
            &y,
        )
        .unwrap();
        for i in 0..300 {
            let row = x.row(i);
            let plain = model
                .trees
                .iter()
                .fold(model.base, |acc, t| acc + leaf_of(t, row).value);
            assert_eq!(
                model.margin(row).unwrap(),
                plain,
                "{n_trees} trees, row {i}"
            );
        }
    }
}
