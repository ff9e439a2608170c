//! Retraining behind the gate through the real lake and registry: the
//! first candidate becomes the champion, a sound one the challenger, an
//! explosive one is refused; every step is in the audit trail.

use radar_pipeline::retrain::{self, GateOptions};
use radar_pipeline::train::{self, TrainSpec};

use crate::labels::{DECLARATION, record, stream};

#[test]
fn candidates_pass_or_fail_the_gate_and_the_trail_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (config, labels) = stream(dir.path(), DECLARATION);
    record(&config, &labels);
    let schema = config.stream(None).unwrap();
    let mut spec = TrainSpec::for_stream(&schema);
    spec.model = "tx".into();
    spec.holdout = 0.0;
    spec.gbdt.n_trees = 30;
    let gate = GateOptions::default();

    let first = retrain::retrain(&config, &spec, &gate, &train::quiet).unwrap();
    assert!(first.passed, "{first:?}");
    assert_eq!(first.alias.as_deref(), Some("champion"));
    assert!(first.labelled_frauds >= gate.min_frauds, "{first:?}");
    assert!(first.candidate.average_precision.is_some());

    // Retrained on the same lake with the same spec: as good as the
    // champion, so it becomes the challenger.
    let second = retrain::retrain(&config, &spec, &gate, &train::quiet).unwrap();
    assert!(second.passed, "{second:?}");
    assert_eq!(second.alias.as_deref(), Some("challenger"));
    let registry = config.open_registry().unwrap();
    assert_eq!(
        registry.alias("tx", "champion").unwrap(),
        Some(first.candidate.version)
    );
    assert_eq!(
        registry.alias("tx", "challenger").unwrap(),
        Some(second.candidate.version)
    );

    // A candidate told that a third of the traffic is fraud alerts on a
    // third of it: refused, and nothing moves.
    spec.contamination = 0.3;
    spec.alert_budget = Some(300.0);
    let bad = retrain::retrain(&config, &spec, &gate, &train::quiet).unwrap();
    assert!(!bad.passed, "{bad:?}");
    assert!(bad.reason.contains("alert"), "{}", bad.reason);
    assert_eq!(
        registry.alias("tx", "challenger").unwrap(),
        Some(second.candidate.version)
    );

    let trail: Vec<(i64, String)> = registry
        .events("tx")
        .unwrap()
        .into_iter()
        .map(|e| (e.version, e.event))
        .collect();
    let (a, b, c) = (
        first.candidate.version,
        second.candidate.version,
        bad.candidate.version,
    );
    assert_eq!(
        trail,
        vec![
            (a, "trained".into()),
            (a, "gate_passed".into()),
            (b, "trained".into()),
            (b, "gate_passed".into()),
            (c, "trained".into()),
            (c, "gate_failed".into()),
        ]
    );
}

/// The watcher retrains by itself once enough labels arrived, through the
/// gate, and says why in the audit trail.
#[test]
fn new_labels_start_a_retrain_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let declaration = format!(
        "{DECLARATION}\n[streams.transactions.retrain]\nnew_labels = 50\nmin_interval_minutes = 0\n"
    );
    let (config, labels) = stream(dir.path(), &declaration);
    let schema = config.stream(None).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| retrain::watch(&config, &schema, "tx", None, &|_| {}, &stop));
        // Nothing yet: no labels arrived since it started.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let registry = config.open_registry().unwrap();
        assert!(registry.events("tx").unwrap().is_empty());
        record(&config, &labels);
        let start = std::time::Instant::now();
        let trail = loop {
            let trail = registry.events("tx").unwrap();
            if trail.len() >= 2 {
                break trail;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(120),
                "no retrain"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap().unwrap();
        assert_eq!(trail[0].event, "trained");
        assert!(trail[0].reason.contains("labels"), "{}", trail[0].reason);
        assert_eq!(trail[1].event, "gate_passed", "{trail:?}");
        assert_eq!(registry.alias("tx", "champion").unwrap(), Some(1));
    });
}

/// Regression: a training window (`retrain.window_days`) started every
/// entity's state cold at the window's first event, so a model retrained
/// on the last days learned cold-start features serving never shows (its
/// reference looked drifted at once and its alerts were half wrong). A
/// window's features are now those of the same events in a pass over the
/// whole lake.
#[test]
fn regression_a_training_window_started_every_entity_cold() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = stream(dir.path(), DECLARATION);
    let schema = config.stream(None).unwrap();
    let lake = config.open_lake().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = train::LakeWindow::load(&lake, &rt, &schema, (None, None), i64::MAX, &train::quiet)
        .unwrap();
    let from = all.records[all.records.len() / 2].ts;
    let window = train::LakeWindow::load(
        &lake,
        &rt,
        &schema,
        (Some(from), None),
        i64::MAX,
        &train::quiet,
    )
    .unwrap();
    let tail: Vec<usize> = (0..all.records.len())
        .filter(|&i| all.records[i].ts >= from)
        .collect();
    assert_eq!(window.records.len(), tail.len());
    assert!(window.records.len() < all.records.len());
    for (k, &i) in tail.iter().enumerate() {
        assert_eq!(window.ids[k], all.ids[i]);
        let (a, b) = (window.features.row(k), all.features.row(i));
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "row {k}: {a:?} vs {b:?}"
        );
        assert_eq!(window.history[k], all.history[i]);
    }
}
