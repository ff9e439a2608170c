use radar_core::Matrix;
use radar_detect::{
    Detector, HalfSpaceTrees, HstParams, IsolationForest, IsolationForestParams, RandomCutForest,
    RcfParams,
};

use super::*;

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::open(
        dir.path().join("radar.db"),
        dir.path().to_str().unwrap(),
        &[],
    )
    .unwrap();
    (dir, r)
}

fn bundle() -> Bundle {
    let x = Matrix::new((0..200).map(|i| (i % 17) as f64).collect(), 2).unwrap();
    let forest = IsolationForest::fit(
        &IsolationForestParams {
            random_state: Some(1),
            ..Default::default()
        },
        x.view(),
    )
    .unwrap();
    let scores = forest.score(x.view()).unwrap();
    Bundle {
        stream: "tx".into(),
        columns: vec!["a".into(), "b".into()],
        threshold: forest.threshold(),
        reference: Reference::of(x.view(), &scores),
        detector: Box::new(forest),
        supervised: None,
        trained: serde_json::json!({"rows": 100}),
    }
}

#[tokio::test]
async fn runs_versions_aliases_and_artifacts() {
    let (_dir, reg) = registry();
    let run = reg
        .start_run("tx", &serde_json::json!({"n_estimators": 100}))
        .unwrap();
    reg.end_run(
        &run,
        "finished",
        &serde_json::json!({"auc": 0.9}),
        &serde_json::json!({}),
        Some("snap"),
        Some("cfg"),
    )
    .unwrap();
    let r = reg.run(&run).unwrap();
    assert_eq!(r.status, "finished");
    assert_eq!(r.metrics["auc"], 0.9);
    assert_eq!(r.dataset_snapshot.as_deref(), Some("snap"));
    assert_eq!(reg.runs(10).unwrap().len(), 1);

    let b = bundle();
    let v1 = reg
        .register(
            "tx-iforest",
            Some(&run),
            &b.to_bytes(),
            &serde_json::json!({"auc": 0.9}),
        )
        .await
        .unwrap();
    let v2 = reg
        .register(
            "tx-iforest",
            Some(&run),
            &b.to_bytes(),
            &serde_json::json!({"auc": 0.91}),
        )
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.sha256, v2.sha256, "content-addressed");

    reg.set_alias("tx-iforest", "champion", 1, "first").unwrap();
    reg.set_alias("tx-iforest", "champion", 2, "better")
        .unwrap();
    assert_eq!(reg.alias("tx-iforest", "champion").unwrap(), Some(2));
    assert_eq!(
        reg.version("tx-iforest", 2).unwrap().aliases,
        vec!["champion".to_string()]
    );
    assert_eq!(
        reg.rollback("tx-iforest", "champion", "regression")
            .unwrap(),
        1
    );
    assert_eq!(reg.alias("tx-iforest", "champion").unwrap(), Some(1));
    let history = reg.alias_history("tx-iforest").unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(
        (history[2].from_version, history[2].to_version),
        (Some(2), 1)
    );
    assert_eq!(history[2].reason, "regression");

    let bytes = reg
        .artifact(&reg.version("tx-iforest", 1).unwrap())
        .await
        .unwrap();
    let back = Bundle::from_bytes(&bytes).unwrap();
    assert_eq!(back.detector.to_bytes(), b.detector.to_bytes());
    assert_eq!(back.columns, b.columns);

    assert!(matches!(
        reg.set_alias("tx-iforest", "champion", 9, "x"),
        Err(RegistryError::NoVersion { .. })
    ));
    assert!(matches!(
        reg.rollback("other", "champion", "x"),
        Err(RegistryError::NoRollback { .. })
    ));
    // The audit trail keeps each step with its reason and figures, in order.
    reg.record_event(
        "tx-iforest",
        2,
        "gate_failed",
        "alert rate 9.1× the champion's",
        &serde_json::json!({"alert_rate_ratio": 9.1}),
    )
    .unwrap();
    reg.record_event("tx-iforest", 1, "rolled_back", "r", &serde_json::json!({}))
        .unwrap();
    let events = reg.events("tx-iforest").unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.version, e.event.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "gate_failed"), (1, "rolled_back")]
    );
    assert_eq!(events[0].figures["alert_rate_ratio"], 9.1);
    assert!(matches!(
        reg.record_event("tx-iforest", 9, "trained", "x", &serde_json::json!({})),
        Err(RegistryError::NoVersion { .. })
    ));
    assert!(
        reg.register("bad name!", None, b"x", &serde_json::json!({}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn corrupted_artifacts_are_refused() {
    let (dir, reg) = registry();
    let v = reg
        .register("m", None, &bundle().to_bytes(), &serde_json::json!({}))
        .await
        .unwrap();
    let file = dir.path().join(&v.artifact);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(
        reg.artifact(&v).await,
        Err(RegistryError::Corrupt { .. })
    ));
}

/// Every detector kind goes into a bundle, through the registry and back
/// out, scoring exactly as before.
#[tokio::test]
async fn every_detector_kind_round_trips_through_the_registry() {
    let (_dir, reg) = registry();
    let x = Matrix::new((0..600).map(|i| ((i * 7) % 23) as f64).collect(), 2).unwrap();
    let mut detectors: Vec<Box<dyn Detector>> = vec![
        Box::new(
            IsolationForest::fit(
                &IsolationForestParams {
                    random_state: Some(1),
                    ..Default::default()
                },
                x.view(),
            )
            .unwrap(),
        ),
        Box::new(HalfSpaceTrees::new(HstParams::default(), 2).unwrap()),
        Box::new(
            RandomCutForest::new(RcfParams {
                dimensions: 2,
                ..RcfParams::default()
            })
            .unwrap(),
        ),
    ];
    for d in &mut detectors {
        if d.is_online() {
            d.fit(x.view()).unwrap();
        }
    }
    for detector in detectors {
        let kind = detector.kind();
        let scores = detector.score_batch(x.view()).unwrap();
        let b = Bundle {
            stream: "tx".into(),
            columns: vec!["a".into(), "b".into()],
            threshold: 0.5,
            reference: Reference::of(x.view(), &scores),
            detector,
            supervised: None,
            trained: serde_json::json!({}),
        };
        let name = format!("tx-{}", kind.name());
        let v = reg
            .register(&name, None, &b.to_bytes(), &serde_json::json!({}))
            .await
            .unwrap();
        let back = Bundle::from_bytes(&reg.artifact(&v).await.unwrap()).unwrap();
        assert_eq!(back.detector.kind(), kind);
        assert_eq!(
            back.detector.score_batch(x.view()).unwrap(),
            scores,
            "{name}"
        );
    }
}

/// The bug: a run id was the start time in µs plus a suffix derived from
/// that same time, so two runs started in the same microsecond (two
/// workers, or a tight loop) got the same id and the second insert failed.
#[test]
fn regression_run_ids_collided_within_a_microsecond() {
    let ids: Vec<String> = (0..100_000).map(|_| new_run_id()).collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    assert!(
        ids.iter()
            .all(|id| id.starts_with("run-") && id.len() == 30)
    );
}

/// A hybrid bundle (a forest and boosted trees over the features and the
/// forest's score) round-trips and scores with the supervised part.
#[tokio::test]
async fn a_hybrid_bundle_round_trips_through_the_registry() {
    let (_dir, reg) = registry();
    let x = Matrix::new((0..1200).map(|i| ((i * 7) % 23) as f64).collect(), 2).unwrap();
    let forest = IsolationForest::fit(
        &IsolationForestParams {
            random_state: Some(1),
            ..Default::default()
        },
        x.view(),
    )
    .unwrap();
    let scores = forest.score(x.view()).unwrap();
    let with: Vec<f64> = (0..x.rows())
        .flat_map(|i| [x.row(i)[0], x.row(i)[1], scores[i]])
        .collect();
    let with = Matrix::new(with, 3).unwrap();
    let y: Vec<bool> = (0..x.rows()).map(|i| x.row(i)[0] > 18.0).collect();
    let gbdt = radar_detect::Gbdt::fit(
        &radar_detect::GbdtParams {
            n_trees: 20,
            ..Default::default()
        },
        with.view(),
        &y,
    )
    .unwrap();
    let b = Bundle {
        stream: "tx".into(),
        columns: vec!["a".into(), "b".into()],
        threshold: 0.5,
        reference: Reference::of(x.view(), &scores),
        detector: Box::new(forest),
        supervised: Some(Box::new(gbdt.clone())),
        trained: serde_json::json!({}),
    };
    let v = reg
        .register("tx-hybrid", None, &b.to_bytes(), &serde_json::json!({}))
        .await
        .unwrap();
    let back = Bundle::from_bytes(&reg.artifact(&v).await.unwrap()).unwrap();
    let row = [20.0, 3.0];
    assert_eq!(back.score_row(&row).unwrap(), b.score_row(&row).unwrap());
    let p = gbdt
        .predict_proba(&[20.0, 3.0, b.detector.score_row(&row).unwrap()])
        .unwrap();
    assert_eq!(back.score_row(&row).unwrap(), p);
    let explained = back.explain(&row).unwrap();
    assert_eq!(explained.len(), 3);
    assert!(
        explained
            .iter()
            .any(|e| e.input == crate::bundle::UNSUPERVISED_SCORE)
    );
}
