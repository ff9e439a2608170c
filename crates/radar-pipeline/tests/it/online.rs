//! The scorer running an online detector named by the stream declaration,
//! on a stream whose normal behaviour moves: after the drift, what used to
//! be normal is the anomaly. Half-Space Trees and Random Cut Forest learn
//! the new normal and keep finding the anomalies; an Isolation Forest
//! champion trained before the drift, frozen, loses them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use radar_core::features::FeatureEngine;
use radar_core::schema::parse_streams;
use radar_core::time::format_rfc3339;
use radar_core::{Matrix, Rng};
use radar_detect::{IsolationForest, IsolationForestParams};
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};
use radar_pipeline::metrics::Metrics;
use radar_pipeline::online::OnlineModel;
use radar_pipeline::scorer::{self, ScorerOptions, Served, Shared};
use radar_pipeline::sinks::{AlertStore, Sinks};
use radar_registry::{Bundle, Reference};

const EVENTS: usize = 8_000;
const DRIFT: usize = 4_000;
/// Anomalies from here on are scored after the detectors had time to adapt.
const SETTLED: usize = 5_500;

fn declaration(detector: &str) -> String {
    format!(
        r#"
[streams.m]
timestamp = "ts"
id = "id"
[streams.m.fields]
x = {{ type = "float" }}
y = {{ type = "float" }}
[[streams.m.features]]
kind = "raw"
field = "x"
[[streams.m.features]]
kind = "raw"
field = "y"
{detector}
"#
    )
}

fn is_anomaly(i: usize) -> bool {
    i % 100 == 25
}

/// (x, y, is_anomaly) per event: normal around (0, 0) then around (8, 8);
/// one event in 100 is an anomaly: 6 away from the centre in a random
/// direction before the drift, at the old normal (0, 0) after it.
fn stream() -> Vec<(f64, f64, bool)> {
    let mut rng = Rng::seed_from_u64(7);
    (0..EVENTS)
        .map(|i| {
            let anomaly = is_anomaly(i);
            let angle = rng.next_f64() * std::f64::consts::TAU;
            let (cx, cy) = match (i < DRIFT, anomaly) {
                (true, false) => (0.0, 0.0),
                (true, true) => (6.0 * angle.cos(), 6.0 * angle.sin()),
                (false, false) => (8.0, 8.0),
                (false, true) => (0.0, 0.0),
            };
            (cx + 0.7 * rng.normal(), cy + 0.7 * rng.normal(), anomaly)
        })
        .collect()
}

/// A scorer's state for `schema` as `radar up` makes it, nothing served.
fn shared_state(schema: &radar_core::schema::StreamSchema, metrics: &Arc<Metrics>) -> Shared {
    Shared {
        schema: schema.clone(),
        engine: Arc::new(RwLock::new(FeatureEngine::new(schema.clone()))),
        model: Arc::new(ArcSwapOption::empty()),
        online: OnlineModel::from_schema(schema)
            .unwrap()
            .map(|m| Arc::new(Mutex::new(m))),
        metrics: metrics.clone(),
        health: Default::default(),
        drift: Default::default(),
        challenger: Default::default(),
        rollout: Arc::new(Mutex::new(radar_pipeline::rollout::Rollout::new(
            Default::default(),
        ))),
        recent: Default::default(),
    }
}

/// Runs the scorer over the stream; returns the ids of alerted events.
fn score(decl: &str, champion: Option<IsolationForest>) -> HashSet<usize> {
    score_with_restart(decl, champion, None)
}

/// The same, stopping the scorer once it scored `restart_after` events and
/// starting a fresh one (new process state, same checkpoint) to finish.
fn score_with_restart(
    decl: &str,
    champion: Option<IsolationForest>,
    restart_after: Option<u64>,
) -> HashSet<usize> {
    let dir = tempfile::tempdir().unwrap();
    let (name, config) = parse_streams(decl).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), Options::default()).unwrap();
    log.create_topic("m", 1).unwrap();
    let records: Vec<Record> = stream()
        .iter()
        .enumerate()
        .map(|(i, (x, y, _))| {
            let ts = 1_700_000_000_000_000 + i as i64 * 1_000_000;
            let body = format!(
                r#"{{"id":"{i}","ts":"{}","x":{x},"y":{y}}}"#,
                format_rfc3339(ts)
            );
            Record::new(None, body.into_bytes(), ts)
        })
        .collect();
    log.append("m", &records).unwrap();

    let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
    let options = ScorerOptions {
        group: "scorer".into(),
        checkpoint: dir.path().join("scorer.ckpt"),
        checkpoint_every: Duration::from_secs(1),
        explain_top: 3,
        labels: None,
        registry: None,
        // The log is written before the scorer starts: all of it alerts.
        alerts_from: Some(i64::MIN),
    };
    let mut done = 0u64;
    let targets = match restart_after {
        Some(first) => vec![first, EVENTS as u64],
        None => vec![EVENTS as u64],
    };
    for target in targets {
        let metrics = Arc::new(Metrics::new("m"));
        let shared = shared_state(&schema, &metrics);
        if let Some(forest) = &champion {
            let x = Matrix::from_rows(&[vec![0.0, 0.0]]).unwrap();
            let scores = forest.score(x.view()).unwrap();
            shared.model.store(Some(Arc::new(Served {
                name: "m-iforest".into(),
                version: 1,
                bundle: Bundle {
                    stream: "m".into(),
                    columns: schema.columns.clone(),
                    threshold: forest.threshold(),
                    reference: Reference::of(x.view(), &scores),
                    detector: Box::new(forest.clone()),
                    supervised: None,
                    trained: serde_json::json!({}),
                },
            })));
        }
        let sinks = Sinks::new(store.clone(), Vec::new(), metrics.clone());
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            let worker = s.spawn(|| scorer::run(&log, &shared, &sinks, &options, &stop));
            let start = Instant::now();
            while done + metrics.scored() < target {
                assert!(start.elapsed() < Duration::from_secs(120), "scorer stalled");
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::Relaxed);
            worker.join().unwrap().unwrap();
        });
        done += metrics.scored();
    }
    assert_eq!(done, EVENTS as u64, "every event scored exactly once");
    store
        .event_ids()
        .unwrap()
        .iter()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// (recall on settled post-drift anomalies, false-alarm rate on settled
/// post-drift normal events).
fn judge(alerted: &HashSet<usize>) -> (f64, f64) {
    let events = stream();
    let (mut hit, mut anomalies, mut false_alarms, mut normal) = (0, 0, 0, 0);
    for (i, &(_, _, anomaly)) in events.iter().enumerate().skip(SETTLED) {
        if anomaly {
            anomalies += 1;
            hit += alerted.contains(&i) as usize;
        } else {
            normal += 1;
            false_alarms += alerted.contains(&i) as usize;
        }
    }
    (
        hit as f64 / anomalies as f64,
        false_alarms as f64 / normal as f64,
    )
}

/// The thresholds are the declarations' own: each detector's standardised
/// scores have their own spread (Half-Space Trees' saturate near the top).
#[test]
fn online_detectors_keep_their_recall_after_drift_and_a_frozen_forest_loses_it() {
    let hst = score(
        &declaration(
            "[streams.m.detector]\nkind = \"half_space_trees\"\nthreshold = 0.808\nlimits = { raw_x = [-12.0, 14.0], raw_y = [-12.0, 14.0] }",
        ),
        None,
    );
    let rcf = score(
        &declaration(
            "[streams.m.detector]\nkind = \"random_cut_forest\"\ntime_decay = 0.004\nthreshold = 0.905",
        ),
        None,
    );
    // The champion learned the pre-drift stream.
    let events = stream();
    let train = Matrix::from_rows(
        &events[..2_000]
            .iter()
            .map(|&(x, y, _)| vec![x, y])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let forest = IsolationForest::fit(
        &IsolationForestParams {
            random_state: Some(0),
            ..Default::default()
        },
        train.view(),
    )
    .unwrap();
    let frozen = score(&declaration(""), Some(forest));

    let (hst_recall, hst_false) = judge(&hst);
    let (rcf_recall, rcf_false) = judge(&rcf);
    let (if_recall, _) = judge(&frozen);
    eprintln!(
        "recall after drift: hst {hst_recall:.2} (false alarms {hst_false:.3}), rcf {rcf_recall:.2} ({rcf_false:.3}), frozen iforest {if_recall:.2}"
    );
    assert!(
        hst_recall >= 0.8 && hst_false <= 0.03,
        "hst {hst_recall} {hst_false}"
    );
    assert!(
        rcf_recall >= 0.8 && rcf_false <= 0.03,
        "rcf {rcf_recall} {rcf_false}"
    );
    assert!(if_recall <= 0.2, "frozen iforest {if_recall}");
    // Before the drift all three find the anomalies.
    let before: Vec<usize> = (1_000..DRIFT).filter(|&i| is_anomaly(i)).collect();
    for (name, alerted) in [("hst", &hst), ("rcf", &rcf), ("iforest", &frozen)] {
        let found = before.iter().filter(|i| alerted.contains(i)).count();
        assert!(
            found as f64 >= 0.8 * before.len() as f64,
            "{name} found {found} of {} before the drift",
            before.len()
        );
    }
}

/// A restart resumes the online detector from the checkpoint: the alerts
/// are exactly those of an uninterrupted run.
#[test]
fn online_detector_state_survives_a_restart() {
    let decl = declaration(
        "[streams.m.detector]\nkind = \"random_cut_forest\"\ntime_decay = 0.004\nthreshold = 0.905\nnum_trees = 20",
    );
    let once = score(&decl, None);
    let twice = score_with_restart(&decl, None, Some(3_000));
    assert!(!once.is_empty());
    assert_eq!(once, twice);
}

/// Warm-up is said, not silent: the model reports it until its score
/// history is long enough to alert.
#[test]
fn warm_up_is_reported_until_it_ends() {
    let decl = declaration(
        "[streams.m.detector]\nkind = \"random_cut_forest\"\nwarmup = 50\nsample_size = 64",
    );
    let (name, config) = parse_streams(&decl).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let mut model = OnlineModel::from_schema(&schema).unwrap().unwrap();
    let events = stream();
    let mut flipped_at = None;
    for (i, &(x, y, _)) in events[..300].iter().enumerate() {
        let warming = model.warming_up();
        let score = model.observe(&[x, y]).unwrap();
        if warming {
            assert_eq!(score, 0.0, "event {i} scored while warming up");
        } else if flipped_at.is_none() {
            flipped_at = Some(i);
        }
    }
    // The forest scores from event 64 on (after 64 points); after 50 of
    // those scores the history is warm.
    assert_eq!(flipped_at, Some(64 + 50));
    assert!(!model.warming_up());
}

/// Alerts of a Random Cut Forest say which way each feature is off.
#[test]
fn rcf_explanations_carry_directions() {
    let decl = declaration("[streams.m.detector]\nkind = \"random_cut_forest\"\nsample_size = 64");
    let (name, config) = parse_streams(&decl).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let mut model = OnlineModel::from_schema(&schema).unwrap().unwrap();
    let mut rng = Rng::seed_from_u64(1);
    for _ in 0..500 {
        model
            .observe(&[8.0 + 0.5 * rng.normal(), 8.0 + 0.5 * rng.normal()])
            .unwrap();
    }
    let below = model.explain(&[0.0, 8.0]).unwrap();
    assert_eq!(below[0].0, 0, "x is the feature that is off: {below:?}");
    assert_eq!(below[0].2, Some(false));
    let above = model.explain(&[8.0, 16.0]).unwrap();
    assert_eq!((above[0].0, above[0].2), (1, Some(true)), "{above:?}");
}

/// A second member in the scorer's group (another `radar up` on the
/// stream) would split the partitions while each scorer's feature state
/// is one for all: the scorer says so in its health (so `/readyz`
/// answers 503), and takes it back once it holds every partition again.
#[test]
fn a_second_scorer_in_the_group_is_said_not_silently_split() {
    let dir = tempfile::tempdir().unwrap();
    let decl = declaration("[streams.m.detector]\nkind = \"half_space_trees\"");
    let (name, config) = parse_streams(&decl).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), Options::default()).unwrap();
    log.create_topic("m", 2).unwrap();
    let append = |from: usize| {
        let records: Vec<Record> = (from..from + 200)
            .map(|i| {
                let ts = 1_700_000_000_000_000 + i as i64 * 1_000_000;
                let body = format!(
                    r#"{{"id":"{i}","ts":"{}","x":1,"y":2}}"#,
                    format_rfc3339(ts)
                );
                Record::new(Some(format!("k{i}").as_bytes()), body.into_bytes(), ts)
            })
            .collect();
        log.append("m", &records).unwrap();
    };
    let metrics = Arc::new(Metrics::new("m"));
    let shared = shared_state(&schema, &metrics);
    let options = ScorerOptions {
        group: "scorer".into(),
        checkpoint: dir.path().join("scorer.ckpt"),
        checkpoint_every: Duration::from_millis(100),
        explain_top: 3,
        labels: None,
        registry: None,
        alerts_from: Some(i64::MIN),
    };
    let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
    let sinks = Sinks::new(store, Vec::new(), metrics.clone());
    let stop = AtomicBool::new(false);
    let said = |shared: &Shared| {
        shared
            .health
            .snapshot()
            .get(scorer::SHARED_GROUP)
            .map(|s| (s.state, s.reason.clone().unwrap_or_default()))
    };
    let wait_for = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::scope(|s| {
        let worker = s.spawn(|| scorer::run(&log, &shared, &sinks, &options, &stop));
        append(0);
        wait_for("the scorer scored alone", Box::new(|| metrics.scored() > 0));
        assert_eq!(said(&shared), None, "alone, nothing is said");

        let other = log.consumer("m", "scorer").unwrap();
        let mut from = 200;
        wait_for(
            "the split was not said",
            Box::new(|| {
                append(from);
                from += 200;
                said(&shared).is_some_and(|(state, _)| state == radar_core::health::State::Degraded)
            }),
        );
        let (_, reason) = said(&shared).unwrap();
        assert!(
            reason.contains("one scorer per stream") && reason.contains("of 2"),
            "{reason}"
        );
        assert!(!shared.health.all_ok());

        drop(other);
        wait_for(
            "the scorer did not take the group back",
            Box::new(|| {
                append(from);
                from += 200;
                said(&shared).is_some_and(|(state, _)| state == radar_core::health::State::Ok)
            }),
        );
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
    });
}
