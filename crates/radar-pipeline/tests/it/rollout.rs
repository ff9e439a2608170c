//! A challenger through the real scorer, log, alerts table and registry:
//! one that behaves is shadowed, canaried and promoted; one whose alert
//! rate explodes is rejected before it decides more, its would-be alerts
//! kept apart; every step in the audit trail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use radar_core::schema::{RolloutOptions, parse_streams};
use radar_core::time::format_rfc3339;
use radar_core::{Matrix, Rng};
use radar_detect::{IsolationForest, IsolationForestParams};
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};
use radar_pipeline::metrics::Metrics;
use radar_pipeline::rollout::Rollout;
use radar_pipeline::scorer::{self, ScorerOptions, Served, Shared};
use radar_pipeline::sinks::{AlertStore, Sinks};
use radar_registry::{Bundle, Reference, Registry};

const EVENTS: usize = 8_000;

const DECLARATION: &str = r#"
[streams.m]
timestamp = "ts"
id = "id"
entity = "e"
[streams.m.fields]
x = { type = "float" }
y = { type = "float" }
[[streams.m.features]]
kind = "raw"
field = "x"
[[streams.m.features]]
kind = "raw"
field = "y"
"#;

fn bundle(forest: &IsolationForest, threshold: f64, columns: &[String], x: &Matrix) -> Bundle {
    let scores = forest.score(x.view()).unwrap();
    Bundle {
        stream: "m".into(),
        columns: columns.to_vec(),
        threshold,
        reference: Reference::of(x.view(), &scores),
        detector: Box::new(forest.clone()),
        supervised: None,
        trained: serde_json::json!({}),
    }
}

/// Runs the scorer over the stream with champion v1 and challenger v2
/// (whose threshold is `challenger_threshold`); returns the registry, the
/// alerts table and the two versions' bundles' thresholds.
fn run(
    challenger_threshold: impl Fn(f64) -> f64,
) -> (tempfile::TempDir, Registry, AlertStore, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (name, config) = parse_streams(DECLARATION)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let schema = config.build(&name).unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), Options::default()).unwrap();
    log.create_topic("m", 1).unwrap();
    let mut rng = Rng::seed_from_u64(3);
    let records: Vec<Record> = (0..EVENTS)
        .map(|i| {
            let ts = 1_700_000_000_000_000 + i as i64 * 1_000_000;
            let (x, y) = (rng.normal(), rng.normal());
            let body = format!(
                r#"{{"id":"{i}","e":"card-{}","ts":"{}","x":{x},"y":{y}}}"#,
                i % 500,
                format_rfc3339(ts)
            );
            Record::new(None, body.into_bytes(), ts)
        })
        .collect();
    log.append("m", &records).unwrap();

    let train = Matrix::new((0..4000).map(|_| rng.normal()).collect(), 2).unwrap();
    let forest = IsolationForest::fit(
        &IsolationForestParams {
            random_state: Some(1),
            contamination: radar_detect::Contamination::Fraction(0.01),
            ..Default::default()
        },
        train.view(),
    )
    .unwrap();
    let champion = bundle(&forest, forest.threshold(), &schema.columns, &train);
    let challenger = bundle(
        &forest,
        challenger_threshold(forest.threshold()),
        &schema.columns,
        &train,
    );
    let registry = Registry::open(
        dir.path().join("registry.db"),
        dir.path().join("artifacts").to_str().unwrap(),
        &[],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for b in [&champion, &challenger] {
        rt.block_on(registry.register("m-iforest", None, &b.to_bytes(), &serde_json::json!({})))
            .unwrap();
    }
    registry
        .set_alias("m-iforest", "champion", 1, "test")
        .unwrap();
    registry
        .set_alias("m-iforest", "challenger", 2, "test")
        .unwrap();

    let metrics = Arc::new(Metrics::new("m"));
    let mut shared = Shared::new(schema.clone(), Default::default(), 1, metrics.clone()).unwrap();
    shared.rollout = Arc::new(Mutex::new(Rollout::new(RolloutOptions {
        shadow_events: 1000,
        canary_events: 1000,
        canary_share: 0.3,
        max_alert_rate_ratio: 3.0,
        watch_events: 1500,
    })));
    let threshold = challenger.threshold;
    shared.model.store(Some(Arc::new(Served {
        name: "m-iforest".into(),
        version: 1,
        bundle: champion,
    })));
    shared.challenger.store(Some(Arc::new(Served {
        name: "m-iforest".into(),
        version: 2,
        bundle: challenger,
    })));
    let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
    let options = ScorerOptions {
        registry: Some(registry.clone()),
        ..crate::scorer_options(dir.path(), &schema.name, Duration::from_secs(1))
    };
    let sinks = Sinks::new(store.clone(), Vec::new(), metrics.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let watch_stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        // The challenger's watcher empties its slot once the alias goes.
        let (reg, sh, ws, handle) = (
            registry.clone(),
            shared.clone(),
            watch_stop.clone(),
            rt.handle().clone(),
        );
        let watcher = s.spawn(move || {
            scorer::watch_model(reg, "m-iforest".into(), "challenger".into(), sh, ws, handle)
        });
        let worker = s.spawn(|| scorer::run(&log, &shared, &sinks, &options, &stop));
        let start = Instant::now();
        while metrics.scored() < EVENTS as u64 {
            assert!(start.elapsed() < Duration::from_secs(120), "scorer stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
        watch_stop.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
    });
    (dir, registry, store, threshold)
}

fn all() -> radar_pipeline::sinks::AlertQuery {
    radar_pipeline::sinks::AlertQuery {
        limit: Some(10_000),
        ..Default::default()
    }
}

#[test]
fn a_sound_challenger_is_shadowed_canaried_and_promoted() {
    // The same forest at the same threshold: it behaves as the champion.
    let (_dir, registry, store, _) = run(|t| t);
    assert_eq!(registry.alias("m-iforest", "champion").unwrap(), Some(2));
    assert_eq!(registry.alias("m-iforest", "challenger").unwrap(), None);
    let events: Vec<String> = registry
        .events("m-iforest")
        .unwrap()
        .into_iter()
        .map(|e| format!("v{} {}", e.version, e.event))
        .collect();
    assert_eq!(events, vec!["v2 shadow", "v2 canary", "v2 promoted"]);
    // In shadow its alerts were kept apart; in canary it decided some.
    assert!(store.shadow_count("m-iforest", 2).unwrap() > 0);
    let alerts = store.query(&all(), None).unwrap();
    assert!(
        alerts.iter().any(|a| a.model_version == 2),
        "the canary decided"
    );
    assert!(alerts.iter().any(|a| a.model_version == 1));
    // Every alert, the champion's (explained on the pool's threads) and the
    // canary's, says which features drove it, largest share first.
    for a in &alerts {
        let shares: Vec<f64> = a.contributions.iter().map(|c| c.share).collect();
        assert!((1..=3).contains(&shares.len()), "{a:?}");
        assert!(shares.windows(2).all(|w| w[0] >= w[1]), "{a:?}");
        assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)), "{a:?}");
        assert!(a.contributions.iter().all(|c| !c.feature.is_empty()));
    }
    // Drift windows of the served models were kept (8,000 events, windows
    // of 1,000).
    let windows = store.drift_windows(100).unwrap();
    assert!(windows.len() >= 7, "{}", windows.len());
    assert!(windows.iter().all(|w| w["events"] == 1000));
}

#[test]
fn a_challenger_whose_alert_rate_explodes_is_rejected_before_it_decides() {
    // A threshold far below the champion's: it alerts on most events.
    let (_dir, registry, store, threshold) = run(|t| t - 0.15);
    assert!(threshold > 0.0);
    assert_eq!(registry.alias("m-iforest", "champion").unwrap(), Some(1));
    assert_eq!(registry.alias("m-iforest", "challenger").unwrap(), None);
    let trail = registry.events("m-iforest").unwrap();
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!((trail[0].version, trail[0].event.as_str()), (2, "shadow"));
    assert_eq!((trail[1].version, trail[1].event.as_str()), (2, "rejected"));
    assert!(trail[1].reason.contains("shadow"), "{}", trail[1].reason);
    assert!(trail[1].figures["challenger_alert_rate"].as_f64().unwrap() > 0.05);
    // Rejected in shadow: it never decided an alert.
    let alerts = store.query(&all(), None).unwrap();
    assert!(alerts.iter().all(|a| a.model_version == 1));
    assert!(store.shadow_count("m-iforest", 2).unwrap() > 0);
}
