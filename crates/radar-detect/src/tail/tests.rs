use proptest::prelude::*;
use radar_core::{Matrix, Rng};

use super::*;

fn gaussian(n: usize, d: usize, seed: u64) -> Matrix {
    let mut rng = Rng::seed_from_u64(seed);
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..d).map(|_| rng.normal()).collect())
        .collect();
    Matrix::from_rows(&rows).unwrap()
}

/// −ln of the share of `col` at or below / at or above `x`, by counting.
fn brute_tails(col: &[f64], x: f64) -> (f64, f64) {
    let n = col.len() as f64;
    let below = col.iter().filter(|&&v| v <= x).count() as f64;
    let above = col.iter().filter(|&&v| v >= x).count() as f64;
    (-(below.max(0.5) / n).ln(), -(above.max(0.5) / n).ln())
}

#[test]
fn tails_are_the_empirical_shares_with_ties_counted() {
    let rows: Vec<Vec<f64>> = [1.0, 2.0, 2.0, 2.0, 3.0, 7.0]
        .iter()
        .map(|&v| vec![v])
        .collect();
    let m = Matrix::from_rows(&rows).unwrap();
    let d = JointTail::fit(&JointTailParams::default(), m.view()).unwrap();
    let col: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    for x in [0.0, 1.0, 2.0, 2.5, 3.0, 7.0, 9.0] {
        let (l, r) = d.tails(0, x);
        let (bl, br) = brute_tails(&col, x);
        assert!((l - bl).abs() < 1e-12 && (r - br).abs() < 1e-12, "x = {x}");
    }
    // Positive skew: ECOD's term is the larger tail; a value far above all
    // knots is finite.
    assert_eq!(d.skew[0], 1);
    assert!((d.score_row(&[9.0]).unwrap() - (12.0f64).ln()).abs() < 1e-12);
}

#[test]
fn the_odd_feature_scores_and_explains_the_row() {
    let train = gaussian(2000, 4, 1);
    for rule in [TailRule::Ecod, TailRule::Copod] {
        let params = JointTailParams {
            rule,
            ..JointTailParams::default()
        };
        let d = JointTail::fit(&params, train.view()).unwrap();
        let typical = d.score_row(&[0.0, 0.1, -0.1, 0.0]).unwrap();
        let odd = d.score_row(&[0.0, 0.1, -4.5, 0.0]).unwrap();
        assert!(odd > typical + 3.0, "{rule:?}: {odd} vs {typical}");
        let (shares, above) = d.explain(&[0.0, 0.1, -4.5, 0.0]).unwrap();
        assert!(shares[2] > 0.8, "{rule:?}: {shares:?}");
        assert!(!above[2]);
        let (_, above) = d.explain(&[0.0, 4.5, 0.0, 0.0]).unwrap();
        assert!(above[1]);
    }
}

#[test]
fn thinned_knots_keep_the_extremes_and_the_shares_close() {
    let train = gaussian(10_000, 1, 2);
    let full = JointTail::fit(&JointTailParams::default(), train.view()).unwrap();
    let thin = JointTail::fit(
        &JointTailParams {
            max_knots: 500,
            ..JointTailParams::default()
        },
        train.view(),
    )
    .unwrap();
    assert_eq!(thin.knots[0].len(), 500);
    assert_eq!(thin.knots[0].first(), full.knots[0].first());
    assert_eq!(thin.knots[0].last(), full.knots[0].last());
    for x in [-2.0, -0.5, 0.0, 1.0, 2.5] {
        let (a, b) = (full.tails(0, x), thin.tails(0, x));
        // Shares agree within a knot's spacing.
        assert!(((-a.0).exp() - (-b.0).exp()).abs() < 0.005, "x = {x}");
    }
}

#[test]
fn bad_input_is_refused_with_what_was_wrong() {
    let train = gaussian(100, 2, 3);
    let d = JointTail::fit(&JointTailParams::default(), train.view()).unwrap();
    assert_eq!(
        d.score_row(&[1.0]).unwrap_err(),
        DetectError::FeatureCount {
            expected: 2,
            got: 1
        }
    );
    assert!(matches!(
        d.score_row(&[1.0, f64::NAN]),
        Err(DetectError::NonFinite { column: 1, .. })
    ));
    let unfitted = JointTail::new(JointTailParams::default(), 2).unwrap();
    assert!(unfitted.score_row(&[0.0, 0.0]).is_err());
    assert!(
        JointTail::new(
            JointTailParams {
                max_knots: 1,
                ..JointTailParams::default()
            },
            2
        )
        .is_err()
    );
}

#[test]
fn model_files_round_trip_and_refuse_unsorted_knots() {
    let train = gaussian(300, 3, 4);
    let d = JointTail::fit(
        &JointTailParams {
            rule: TailRule::Copod,
            max_knots: 64,
        },
        train.view(),
    )
    .unwrap();
    let back = JointTail::from_bytes(&d.to_bytes()).unwrap();
    assert_eq!(back, d);
    let mut broken = d.clone();
    broken.knots[1].swap(0, 5);
    assert!(JointTail::from_bytes(&broken.to_bytes()).is_err());
}

proptest! {
    /// Scoring a row is the sum of its features' terms, each at least
    /// ln(1) = 0 and at most ln(2·knots) (plus the other tail for an
    /// unskewed feature), whatever the data.
    #[test]
    fn scores_are_bounded_sums_of_terms(
        values in prop::collection::vec(-1e6f64..1e6, 6..200),
        probe in prop::collection::vec(-2e6f64..2e6, 2),
    ) {
        let rows: Vec<Vec<f64>> = values.chunks_exact(2).map(|c| c.to_vec()).collect();
        let m = Matrix::from_rows(&rows).unwrap();
        let d = JointTail::fit(&JointTailParams::default(), m.view()).unwrap();
        let s = d.score_row(&probe).unwrap();
        let cap = 2.0 * 2.0 * (2.0 * rows.len() as f64).ln();
        prop_assert!(s.is_finite() && s >= 0.0 && s <= cap, "score {s}");
        let terms: f64 = (0..2).map(|j| d.term(j, probe[j]).0).sum();
        prop_assert!((terms - s).abs() < 1e-9);
    }
}
