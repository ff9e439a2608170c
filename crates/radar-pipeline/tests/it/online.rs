//! The scorer running an online detector named by the stream declaration,
//! on a stream whose normal behaviour moves: after the drift, what used to
//! be normal is the anomaly. Half-Space Trees and Random Cut Forest learn
//! the new normal and keep finding the anomalies; an Isolation Forest
//! champion trained before the drift, frozen, loses them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use radar_core::schema::parse_streams;
use radar_core::time::format_rfc3339;
use radar_core::{Matrix, Rng};
use radar_detect::{IsolationForest, IsolationForestParams};
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};
use radar_pipeline::metrics::Metrics;
use radar_pipeline::online::OnlineModel;
use radar_pipeline::scorer::{self, Served, Shared};
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
    let partitions = 2;
    Shared::new(
        schema.clone(),
        Default::default(),
        partitions,
        metrics.clone(),
    )
    .unwrap()
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
    let options = crate::scorer_options(dir.path(), &schema.name, Duration::from_secs(1));
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

/// Scorers in one group split the stream's partitions, and each
/// partition's state (features and online detector) moves with it: a run
/// where a second scorer joins mid-stream and the first leaves later
/// raises exactly the alerts one scorer alone raises over the same events.
/// An online detector makes the check sharp: a part rebuilt cold, or
/// scored twice, would score differently.
#[test]
fn scorers_in_one_group_split_partitions_and_alert_as_one_scorer() {
    const PARTITIONS: u32 = 4;
    let decl = declaration(
        "[streams.m.detector]\nkind = \"half_space_trees\"\nthreshold = 0.808\nwarmup = 100\nlimits = { raw_x = [-12.0, 14.0], raw_y = [-12.0, 14.0] }",
    );
    let (name, config) = parse_streams(&decl).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let events = stream();
    let chunk = |log: &EmbeddedLog, range: std::ops::Range<usize>| {
        let records: Vec<Record> = range
            .map(|i| {
                let (x, y, _) = events[i];
                let ts = 1_700_000_000_000_000 + i as i64 * 1_000_000;
                let body = format!(
                    r#"{{"id":"{i}","ts":"{}","x":{x},"y":{y}}}"#,
                    format_rfc3339(ts)
                );
                Record::new(
                    Some(format!("k{}", i % 37).as_bytes()),
                    body.into_bytes(),
                    ts,
                )
            })
            .collect();
        log.append("m", &records).unwrap();
    };
    let caught_up = |log: &EmbeddedLog| {
        (0..PARTITIONS).all(|p| {
            log.committed("m", "scorer", p).unwrap() == Some(log.offsets("m", p).unwrap().1)
        })
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // (alerted event ids, events scored per worker)
    let run = |workers: usize| -> (HashSet<usize>, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().join("log"), Options::default()).unwrap();
        log.create_topic("m", PARTITIONS).unwrap();
        let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
        let options = crate::scorer_options(dir.path(), &schema.name, Duration::from_millis(50));
        let metrics: Vec<Arc<Metrics>> = (0..2).map(|_| Arc::new(Metrics::new("m"))).collect();
        let shared: Vec<Shared> = metrics
            .iter()
            .map(|m| {
                Shared::new(schema.clone(), Default::default(), PARTITIONS, m.clone()).unwrap()
            })
            .collect();
        let sinks: Vec<Sinks> = metrics
            .iter()
            .map(|m| Sinks::new(store.clone(), Vec::new(), m.clone()))
            .collect();
        let stops: Vec<AtomicBool> = (0..2).map(|_| AtomicBool::new(false)).collect();
        let third = EVENTS / 3;
        std::thread::scope(|s| {
            let worker = |k: usize| {
                let (log, shared, sinks, options, stop) =
                    (&log, &shared[k], &sinks[k], &options, &stops[k]);
                s.spawn(move || scorer::run(log, shared, sinks, options, stop))
            };
            let first = worker(0);
            chunk(&log, 0..third);
            wait("the first scorer scored", &|| caught_up(&log));
            let second = (workers == 2).then(|| worker(1));
            if workers == 2 {
                wait("the second scorer took partitions", &|| {
                    shared[1].state.read().unwrap().held().len() == 2
                        && shared[0].state.read().unwrap().held().len() == 2
                });
            }
            chunk(&log, third..2 * third);
            wait("both scored the second third", &|| caught_up(&log));
            let (first, rest) = if workers == 2 {
                // The first leaves: the second takes all four.
                stops[0].store(true, Ordering::Relaxed);
                first.join().unwrap().unwrap();
                (None, second)
            } else {
                (Some(first), None)
            };
            chunk(&log, 2 * third..EVENTS);
            wait("the last third scored", &|| caught_up(&log));
            for (k, h) in [(0, first), (1, rest)] {
                if let Some(h) = h {
                    stops[k].store(true, Ordering::Relaxed);
                    h.join().unwrap().unwrap();
                }
            }
        });
        let alerted = store
            .event_ids()
            .unwrap()
            .iter()
            .map(|id| id.parse().unwrap())
            .collect();
        (alerted, metrics.iter().map(|m| m.scored()).collect())
    };
    let (alone, scored_alone) = run(1);
    let (split, scored_split) = run(2);
    assert_eq!(scored_alone, vec![EVENTS as u64, 0]);
    assert!(
        scored_split.iter().all(|&n| n > 0),
        "both workers scored: {scored_split:?}"
    );
    // A part taken over resumes from its checkpoint: what the first worker
    // scored after its last one is scored again, nothing more.
    let total: u64 = scored_split.iter().sum();
    assert!(
        (EVENTS as u64..EVENTS as u64 + EVENTS as u64 / 3).contains(&total),
        "events scored by both: {total}"
    );
    assert!(
        alone.len() > 40,
        "the stream raises alerts: {}",
        alone.len()
    );
    assert_eq!(split, alone, "split scorers alert as one does");
}

/// A worker that lost a partition without a rebalance telling it (its
/// session timed out while it was stalled) must not undo the progress of
/// the worker that holds the partition now: once another worker wrote the
/// partition's checkpoint, this one drops its state of it instead of
/// writing over it.
#[test]
fn a_checkpoint_another_worker_wrote_is_never_overwritten() {
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
    let caught_up =
        |p: u32| log.committed("m", "scorer", p).unwrap() == Some(log.offsets("m", p).unwrap().1);
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let metrics = Arc::new(Metrics::new("m"));
    let shared = shared_state(&schema, &metrics);
    let options = crate::scorer_options(dir.path(), &schema.name, Duration::from_millis(50));
    let checkpoints = options.checkpoints.clone();
    let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
    let sinks = Sinks::new(store, Vec::new(), metrics.clone());
    let stop = AtomicBool::new(false);
    // The other worker's checkpoint of partition 0: further along.
    let theirs = {
        let state = shared.state.read().unwrap();
        let mut part = state.fresh(0).unwrap();
        part.next = 1_000_000;
        state.encode(0, &part)
    };
    std::thread::scope(|s| {
        let worker = s.spawn(|| scorer::run(&log, &shared, &sinks, &options, &stop));
        append(0);
        wait("the scorer scored both partitions", &|| {
            caught_up(0) && caught_up(1)
        });
        checkpoints.save(0, theirs.clone()).unwrap();
        append(200);
        wait("partition 1 scored on", &|| caught_up(1));
        wait("partition 0's state dropped", &|| {
            shared.state.read().unwrap().part(0).is_none()
        });
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
    });
    let (stored, _) = checkpoints.load(0).unwrap().unwrap();
    assert_eq!(
        stored, theirs,
        "the other worker's checkpoint was overwritten"
    );
    assert!(shared.state.read().unwrap().part(1).is_some());
}
