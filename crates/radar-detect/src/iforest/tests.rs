use radar_core::{Matrix, Rng};

use super::build::to_f32;
use super::*;

fn params(seed: u64) -> IsolationForestParams {
    IsolationForestParams {
        random_state: Some(seed),
        ..IsolationForestParams::default()
    }
}

/// Gaussian blob with a few far-away rows at the end.
fn blob_with_outliers(n: usize, d: usize, outliers: usize, seed: u64) -> Matrix {
    let mut rng = Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        for _ in 0..d {
            let v = rng.normal();
            data.push(if i >= n - outliers { v + 8.0 } else { v });
        }
    }
    Matrix::new(data, d).unwrap()
}

/// Path-length sum by walking the canonical trees directly: the reference
/// the compiled layouts must agree with.
fn reference_path_sum(model: &IsolationForest, row: &[f64]) -> f64 {
    let t = &model.trees;
    let mut sum = 0.0;
    for tree in 0..t.len() {
        let (mut i, _) = t.range(tree);
        let mut depth = 0;
        while t.right[i] != 0 {
            i = if to_f32(row[t.feature[i] as usize]) <= t.threshold[i] {
                i + 1
            } else {
                t.right[i] as usize
            };
            depth += 1;
        }
        sum += depth as f64 + path_length_correction(t.n_samples[i] as usize);
    }
    sum
}

#[test]
fn path_length_correction_matches_the_paper() {
    assert_eq!(path_length_correction(0), 0.0);
    assert_eq!(path_length_correction(1), 0.0);
    assert_eq!(path_length_correction(2), 1.0);
    assert!((path_length_correction(256) - 10.244_770_920_119_917).abs() < 1e-12);
}

#[test]
fn expected_path_lengths_match_the_analytic_values() {
    // Rows 0, 1, 10 (ψ = 3, height limit 2). Row 10 is isolated at depth 1
    // when the first threshold falls in (1, 10) (probability 0.9), else at
    // depth 2: E[h] = 1.1. Row 0: 0.9·2 + 0.1·1 = 1.9.
    let x = Matrix::new(vec![0.0, 1.0, 10.0], 1).unwrap();
    let p = IsolationForestParams {
        n_estimators: 40_000,
        ..params(1)
    };
    let model = IsolationForest::fit(&p, x.view()).unwrap();
    let c3 = path_length_correction(3);
    let expected = |h: f64| (-h / c3).exp2();
    let s = model.score(x.view()).unwrap();
    assert!(
        (s[2] - expected(1.1)).abs() < 0.004,
        "{} vs {}",
        s[2],
        expected(1.1)
    );
    assert!(
        (s[0] - expected(1.9)).abs() < 0.004,
        "{} vs {}",
        s[0],
        expected(1.9)
    );
}

#[test]
fn outliers_score_higher_than_inliers() {
    let x = blob_with_outliers(1000, 3, 10, 2);
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    let s = model.score(x.view()).unwrap();
    assert!(s.iter().all(|&v| v > 0.0 && v < 1.0));
    let inlier_max = s[..990].iter().cloned().fold(0.0, f64::max);
    let outlier_min = s[990..].iter().cloned().fold(1.0, f64::min);
    assert!(outlier_min > inlier_max, "{outlier_min} <= {inlier_max}");
    // With the auto threshold (0.5) the far rows are flagged.
    let flagged = model.predict(x.view()).unwrap();
    assert!(flagged[990..].iter().all(|&f| f));
    let decision = model.decision_function(x.view()).unwrap();
    assert!(decision[995] < 0.0);
    assert!((decision[0] - (0.5 - s[0])).abs() < 1e-15);
}

#[test]
fn same_seed_same_model_whatever_the_thread_count() {
    let x = blob_with_outliers(20_000, 4, 50, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m = IsolationForest::fit(&params(7), x.view()).unwrap();
            let s = m.score(x.view()).unwrap();
            (m, s)
        })
    };
    let (m1, s1) = run(1);
    let (m2, s2) = run(2);
    let (m3, s3) = run(3);
    assert_eq!(m1, m2);
    assert_eq!(m1, m3);
    let bits = |s: &[f64]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&s1), bits(&s2));
    assert_eq!(bits(&s1), bits(&s3));
    let other = IsolationForest::fit(&params(8), x.view()).unwrap();
    assert_ne!(m1, other);
}

#[test]
fn unseeded_fits_record_their_seed_and_reproduce() {
    let x = blob_with_outliers(500, 2, 5, 4);
    let a = IsolationForest::fit(&IsolationForestParams::default(), x.view()).unwrap();
    let again = IsolationForest::fit(&params(a.seed()), x.view()).unwrap();
    assert_eq!(a, again);
}

#[test]
fn batch_single_row_and_reference_scores_agree() {
    let x = blob_with_outliers(3000, 5, 30, 5);
    for max_samples in [MaxSamples::Auto, MaxSamples::Count(2048)] {
        // 2048 samples give depth 11: the explicit (sparse) layout.
        let p = IsolationForestParams {
            max_samples,
            n_estimators: 30,
            ..params(9)
        };
        let model = IsolationForest::fit(&p, x.view()).unwrap();
        let sparse = matches!(model.layout, Layout::Sparse { .. });
        assert_eq!(sparse, max_samples != MaxSamples::Auto);
        let batch = model.score(x.view()).unwrap();
        for i in (0..x.rows()).step_by(7) {
            let row = x.row(i);
            let one = model.score_row(row).unwrap();
            let reference = model.score_from_path_sum(reference_path_sum(&model, row));
            assert_eq!(one.to_bits(), batch[i].to_bits(), "row {i}");
            assert!(
                (one - reference).abs() < 1e-12,
                "sparse {sparse} row {i}: {one} vs {reference}"
            );
        }
    }
}

#[test]
fn simd_and_scalar_dense_kernels_agree_bit_for_bit() {
    let x = blob_with_outliers(5000, 7, 40, 15);
    let model = IsolationForest::fit(&params(2), x.view()).unwrap();
    let mut scalar = model.clone();
    scalar.layout = Layout::compile_with(&model.trees, false);
    assert!(matches!(scalar.layout, Layout::Dense { simd: false, .. }));
    let a = model.score(x.view()).unwrap();
    let b = scalar.score(x.view()).unwrap();
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn fewer_rows_than_max_samples_uses_all_rows() {
    let x = blob_with_outliers(50, 2, 2, 6);
    let p = IsolationForestParams {
        max_samples: MaxSamples::Count(1000),
        ..params(0)
    };
    let model = IsolationForest::fit(&p, x.view()).unwrap();
    assert_eq!(model.max_samples(), 50);
    let auto = IsolationForest::fit(&params(0), x.view()).unwrap();
    assert_eq!(auto.max_samples(), 50);
    // The height limit follows: ceil(log2(50)) = 6.
    assert!((0..model.trees.len()).all(|t| model.trees.depth(t) <= 6));
    assert!((0..model.trees.len()).any(|t| model.trees.depth(t) == 6));
}

#[test]
fn a_single_row_scores_one_half() {
    let x = Matrix::new(vec![1.0, 2.0, 3.0], 3).unwrap();
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    assert_eq!(model.max_samples(), 1);
    assert_eq!(model.score(x.view()).unwrap(), vec![0.5]);
    assert_eq!(model.score_row(&[100.0, -4.0, 0.0]).unwrap(), 0.5);
}

#[test]
fn all_equal_rows_give_single_leaf_trees() {
    let x = Matrix::new(vec![3.0; 400], 4).unwrap();
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    assert!(model.trees.right.iter().all(|&r| r == 0));
    let s = model.score(x.view()).unwrap();
    // Every row lands in the root holding all 100 rows: h = c(100) = c(ψ).
    assert!(s.iter().all(|&v| (v - 0.5).abs() < 1e-12), "{:?}", &s[..3]);
    let e = model.explain_row(&[3.0; 4]).unwrap();
    assert_eq!(e.contributions, vec![0.25; 4]);
}

#[test]
fn constant_columns_are_never_split_on() {
    let mut rng = Rng::seed_from_u64(1);
    let mut data = Vec::new();
    for _ in 0..500 {
        data.extend_from_slice(&[7.0, rng.normal(), 7.0, rng.normal()]);
    }
    let x = Matrix::new(data, 4).unwrap();
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    for (i, &f) in model.trees.feature.iter().enumerate() {
        if model.trees.right[i] != 0 {
            assert!(f == 1 || f == 3, "split on constant column {f}");
        }
    }
}

#[test]
fn duplicate_rows_end_in_shallow_leaves_with_counts() {
    // 90% of rows identical: leaves holding them stop early (constant) and
    // carry their count.
    let mut data = vec![1.0; 900 * 2];
    let mut rng = Rng::seed_from_u64(2);
    for _ in 0..100 {
        data.extend_from_slice(&[rng.normal() * 5.0, rng.normal() * 5.0]);
    }
    let x = Matrix::new(data, 2).unwrap();
    let model = IsolationForest::fit(&params(3), x.view()).unwrap();
    let s = model.score(x.view()).unwrap();
    // The duplicated point is the most normal thing in the data.
    let dup = s[0];
    let spread_mean = s[900..].iter().sum::<f64>() / 100.0;
    assert!(dup < spread_mean, "{dup} vs {spread_mean}");
    assert!(
        model
            .trees
            .n_samples
            .iter()
            .zip(&model.trees.right)
            .any(|(&n, &r)| r == 0 && n > 100)
    );
}

#[test]
fn more_features_than_rows() {
    let x = blob_with_outliers(20, 300, 1, 7);
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    let s = model.score(x.view()).unwrap();
    let outlier = s[19];
    assert!(s[..19].iter().all(|&v| v < outlier));
}

#[test]
fn non_finite_input_names_row_and_column() {
    // Matrices refuse non-finite values where data enters, so fit and batch
    // scoring never see them; raw rows are checked when scored or explained.
    let mut x = blob_with_outliers(100, 3, 0, 8).data().to_vec();
    x[3 * 41 + 2] = f64::NAN;
    let err = Matrix::new(x, 3).unwrap_err();
    assert!(
        matches!(
            err,
            radar_core::MatrixError::NonFinite {
                row: 41,
                column: 2,
                ..
            }
        ),
        "{err}"
    );

    let clean = blob_with_outliers(1000, 3, 0, 8);
    let model = IsolationForest::fit(&params(0), clean.view()).unwrap();
    let err = model.score_row(&[0.0, f64::NAN, 0.0]).unwrap_err();
    assert!(matches!(
        err,
        DetectError::NonFinite {
            row: 0,
            column: 1,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "row 0, column 1: value NaN is not finite (NaN and infinity cannot be scored)"
    );
    let err = model.explain_row(&[f64::INFINITY, 0.0, 0.0]).unwrap_err();
    assert!(matches!(
        err,
        DetectError::NonFinite {
            row: 0,
            column: 0,
            ..
        }
    ));
    assert!(matches!(
        model.score_row(&[0.0, 1.0]),
        Err(DetectError::FeatureCount {
            expected: 3,
            got: 2
        })
    ));
    let narrow = Matrix::new(vec![0.0; 4], 2).unwrap();
    assert!(matches!(
        model.score(narrow.view()),
        Err(DetectError::FeatureCount {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        IsolationForest::fit(&params(0), Matrix::with_columns(3).unwrap().view()),
        Err(DetectError::Empty)
    ));
}

#[test]
fn huge_values_are_clamped_not_rejected() {
    let mut data = blob_with_outliers(200, 2, 0, 9).data().to_vec();
    data[0] = 1e300;
    let x = Matrix::new(data, 2).unwrap();
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    let s = model.score(x.view()).unwrap();
    assert!(s[0] > s[1..].iter().cloned().fold(0.0, f64::max));
}

#[test]
fn invalid_parameters_are_named() {
    let x = blob_with_outliers(100, 3, 0, 10);
    let cases = [
        (
            IsolationForestParams {
                n_estimators: 0,
                ..params(0)
            },
            "n_estimators",
        ),
        (
            IsolationForestParams {
                max_samples: MaxSamples::Count(0),
                ..params(0)
            },
            "max_samples",
        ),
        (
            IsolationForestParams {
                max_samples: MaxSamples::Fraction(1.5),
                ..params(0)
            },
            "max_samples",
        ),
        (
            IsolationForestParams {
                max_samples: MaxSamples::Fraction(0.001),
                ..params(0)
            },
            "max_samples",
        ),
        (
            IsolationForestParams {
                max_features: MaxFeatures::Count(4),
                ..params(0)
            },
            "max_features",
        ),
        (
            IsolationForestParams {
                max_features: MaxFeatures::Fraction(0.0),
                ..params(0)
            },
            "max_features",
        ),
        (
            IsolationForestParams {
                contamination: Contamination::Fraction(0.6),
                ..params(0)
            },
            "contamination",
        ),
        (
            IsolationForestParams {
                contamination: Contamination::Fraction(f64::NAN),
                ..params(0)
            },
            "contamination",
        ),
    ];
    for (p, name) in cases {
        match IsolationForest::fit(&p, x.view()) {
            Err(DetectError::InvalidParam { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{p:?}: expected an error on {name}, got {other:?}"),
        }
    }
}

#[test]
fn contamination_sets_the_share_flagged_on_training_data() {
    let x = blob_with_outliers(5000, 3, 0, 11);
    for c in [0.01, 0.1, 0.5] {
        let p = IsolationForestParams {
            contamination: Contamination::Fraction(c),
            ..params(0)
        };
        let model = IsolationForest::fit(&p, x.view()).unwrap();
        let flagged = model
            .predict(x.view())
            .unwrap()
            .iter()
            .filter(|&&f| f)
            .count();
        let share = flagged as f64 / 5000.0;
        assert!(
            (share - c).abs() < 0.002,
            "contamination {c}: flagged {share}"
        );
    }
}

#[test]
fn max_features_and_bootstrap_are_honoured() {
    let x = blob_with_outliers(2000, 6, 20, 12);
    let p = IsolationForestParams {
        max_features: MaxFeatures::Count(2),
        bootstrap: true,
        ..params(0)
    };
    let model = IsolationForest::fit(&p, x.view()).unwrap();
    assert_eq!(model.max_features(), 2);
    for t in 0..model.trees.len() {
        let (lo, hi) = model.trees.range(t);
        let mut used: Vec<u32> = (lo..hi)
            .filter(|&i| model.trees.right[i] != 0)
            .map(|i| model.trees.feature[i])
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() <= 2, "tree {t} used {used:?}");
        // Bootstrap draws 256 rows with replacement: the root counts them all.
        assert_eq!(model.trees.n_samples[lo], 256);
    }
    let s = model.score(x.view()).unwrap();
    let inlier_mean = s[..1980].iter().sum::<f64>() / 1980.0;
    assert!(s[1980..].iter().all(|&v| v > inlier_mean));
}

#[test]
fn explanation_ranks_the_anomalous_feature_first() {
    // Five independent features; anomalies differ in feature 3 only, their
    // other features are typical (within 1.5 standard deviations).
    let mut rng = Rng::seed_from_u64(13);
    let (n, d) = (2000, 5);
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        for _ in 0..d {
            data.push(rng.normal());
        }
    }
    let x = Matrix::new(data, d).unwrap();
    let model = IsolationForest::fit(&params(0), x.view()).unwrap();
    for k in 0..20 {
        let mut typical = || loop {
            let v = rng.normal();
            if v.abs() <= 1.5 {
                break v;
            }
        };
        let mut row: Vec<f64> = (0..d).map(|_| typical()).collect();
        row[3] = if k % 2 == 0 {
            6.0 + rng.next_f64()
        } else {
            -6.0 - rng.next_f64()
        };
        let e = model.explain_row(&row).unwrap();
        assert!((e.contributions.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(e.contributions.iter().all(|&c| c >= 0.0));
        let ranked = e.ranked();
        assert_eq!(ranked[0].0, 3, "row {row:?}: {ranked:?}");
        assert!(ranked[0].1 > 0.4, "{ranked:?}");
    }
}

mod serialization {
    use super::*;
    use crate::codec::DecodeError;
    use proptest::prelude::*;

    fn small_model() -> (IsolationForest, Matrix) {
        let x = blob_with_outliers(300, 3, 3, 14);
        let p = IsolationForestParams {
            n_estimators: 10,
            max_samples: MaxSamples::Count(64),
            contamination: Contamination::Fraction(0.05),
            ..params(5)
        };
        (IsolationForest::fit(&p, x.view()).unwrap(), x)
    }

    #[test]
    fn round_trip_gives_the_same_model_and_scores() {
        let (model, x) = small_model();
        let bytes = model.to_bytes();
        let back = IsolationForest::from_bytes(&bytes).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.threshold(), model.threshold());
        assert_eq!(
            back.score(x.view()).unwrap(),
            model.score(x.view()).unwrap()
        );
        assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn truncated_and_foreign_files_are_clear_errors() {
        let (model, _) = small_model();
        let bytes = model.to_bytes();
        for cut in [0, 7, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = IsolationForest::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    DetectError::Decode(
                        DecodeError::Truncated { .. } | DecodeError::WrongMagic { .. }
                    )
                ),
                "cut {cut}: {err}"
            );
        }
        let err = IsolationForest::from_bytes(b"{\"model\": \"json\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a radar model file (its first bytes are not `RADARMDL`)"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_byte_flip_is_detected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let (model, _) = small_model();
            let mut bytes = model.to_bytes();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(IsolationForest::from_bytes(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut file = b"RADARMDL".to_vec();
            file.extend_from_slice(&bytes);
            prop_assert!(IsolationForest::from_bytes(&file).is_err());
        }
    }
}

mod layouts {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Both compiled layouts agree with a direct walk of the trees, for
        /// any data (including heavy ties and signed zeros) and any row.
        #[test]
        fn layouts_agree_with_the_reference(
            values in prop::collection::vec(prop_oneof![-3i8..3i8, Just(0)], 60..400),
            probe in prop::collection::vec(-4.0f64..4.0, 3),
            samples in prop_oneof![Just(MaxSamples::Auto), Just(MaxSamples::Count(2048))],
            seed in 0u64..1000,
        ) {
            let d = 3;
            let n = values.len() / d;
            let data: Vec<f64> = values[..n * d].iter().map(|&v| if v == 0 { -0.0 } else { v as f64 / 2.0 }).collect();
            let x = Matrix::new(data, d).unwrap();
            let p = IsolationForestParams { n_estimators: 12, max_samples: samples, ..params(seed) };
            let model = IsolationForest::fit(&p, x.view()).unwrap();
            let scores = model.score(x.view()).unwrap();
            for (i, score) in scores.iter().enumerate() {
                let r = model.score_from_path_sum(reference_path_sum(&model, x.row(i)));
                prop_assert!((score - r).abs() < 1e-12);
            }
            let r = model.score_from_path_sum(reference_path_sum(&model, &probe));
            prop_assert!((model.score_row(&probe).unwrap() - r).abs() < 1e-12);
        }
    }
}
