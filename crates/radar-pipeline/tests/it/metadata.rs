//! The metadata store's conformance suite: the registry (runs, versions,
//! aliases, audit trail, leases), labels, API keys and alerts, each case run
//! on SQLite and on a real PostgreSQL server (started by `scripts/test`,
//! found through RADAR_POSTGRES_URL; every case gets a fresh database).

use std::time::Duration;

use radar_core::labels::Label;
use radar_pipeline::access::{KeyStore, Role};
use radar_pipeline::labels::{IndexedEvent, LabelStore, Recorded};
use radar_pipeline::sinks::{Alert, AlertQuery, AlertStore};
use radar_registry::Registry;
use radar_registry::meta::Target;

/// A metadata store for one case, removed when dropped.
struct Store {
    target: Target,
    /// The storage root (artifacts), and the SQLite file's directory.
    dir: tempfile::TempDir,
    #[cfg(feature = "postgres")]
    database: Option<(String, String)>,
}

impl Store {
    fn sqlite() -> Store {
        let dir = tempfile::tempdir().unwrap();
        Store {
            target: Target::Sqlite(dir.path().join("radar.db")),
            dir,
            #[cfg(feature = "postgres")]
            database: None,
        }
    }

    /// A fresh database on the server at RADAR_POSTGRES_URL; None (said)
    /// when there is none and RADAR_SKIP_POSTGRES is set.
    #[cfg(feature = "postgres")]
    fn postgres() -> Option<Store> {
        let Ok(server) = std::env::var("RADAR_POSTGRES_URL") else {
            if std::env::var_os("RADAR_SKIP_POSTGRES").is_some() {
                eprintln!(
                    "no PostgreSQL: this case was NOT checked on it (RADAR_SKIP_POSTGRES set)"
                );
                return None;
            }
            panic!(
                "set RADAR_POSTGRES_URL to a PostgreSQL server (scripts/test starts one), or RADAR_SKIP_POSTGRES=1"
            );
        };
        let name: String = format!("radar_test_{}", radar_registry::new_run_id())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Some(Store {
            target: Target::Postgres(url.to_string()),
            dir: tempfile::tempdir().unwrap(),
            database: Some((server, name)),
        })
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn registry(&self) -> Registry {
        Registry::open(&self.target, self.root(), &[]).unwrap()
    }
}

#[cfg(feature = "postgres")]
impl Drop for Store {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.database {
            // Best effort: a leftover database of a failed case is harmless.
            if let Ok(mut admin) = postgres::Client::connect(server, postgres::NoTls) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// One `#[test]` per backend for each case.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn sqlite() {
                    super::$case(&super::Store::sqlite());
                }
                #[cfg(feature = "postgres")]
                #[test]
                fn postgres() {
                    if let Some(store) = super::Store::postgres() {
                        super::$case(&store);
                    }
                }
            }
        )*
    };
}

conformance!(
    runs_are_started_ended_and_listed,
    versions_are_numbered_per_model_and_hold_their_artifact,
    concurrent_registrations_take_distinct_versions,
    aliases_move_roll_back_and_keep_their_history,
    the_audit_trail_keeps_events_in_order,
    a_lease_is_held_by_one_holder_until_it_ends,
    labels_are_accepted_once_and_only_for_known_events,
    labels_move_label_features_in_recorded_order,
    keys_are_created_listed_checked_and_revoked,
    alerts_are_kept_once_per_position_and_queried,
    shadow_alerts_and_drift_windows_are_kept,
    reopening_keeps_everything_and_migrates_nothing_twice,
);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn runs_are_started_ended_and_listed(store: &Store) {
    let registry = store.registry();
    let params = serde_json::json!({"trees": 100});
    let a = registry.start_run("tx", &params).unwrap();
    let b = registry.start_run("tx", &params).unwrap();
    registry
        .end_run(
            &a,
            "finished",
            &serde_json::json!({"auc": 0.9}),
            &serde_json::json!({"trigger": "drift"}),
            Some("snap-1"),
            Some("cfg-hash"),
        )
        .unwrap();
    let run = registry.run(&a).unwrap();
    assert_eq!(run.status, "finished");
    assert_eq!(run.metrics["auc"], 0.9);
    assert_eq!(run.params, params);
    assert_eq!(run.tags["trigger"], "drift");
    assert_eq!(run.dataset_snapshot.as_deref(), Some("snap-1"));
    assert!(run.ended_at.is_some());
    assert_eq!(registry.run(&b).unwrap().status, "running");
    let listed: Vec<String> = registry
        .runs(10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&a) && listed.contains(&b));
    assert_eq!(registry.runs(1).unwrap().len(), 1);
    assert!(registry.run("no-such-run").is_err());
}

fn versions_are_numbered_per_model_and_hold_their_artifact(store: &Store) {
    let registry = store.registry();
    let rt = rt();
    let metrics = serde_json::json!({"threshold": 0.6});
    let v1 = rt
        .block_on(registry.register("tx-iforest", None, b"one", &metrics))
        .unwrap();
    let v2 = rt
        .block_on(registry.register("tx-iforest", None, b"two", &metrics))
        .unwrap();
    let other = rt
        .block_on(registry.register("tx-hst", None, b"one", &metrics))
        .unwrap();
    assert_eq!((v1.version, v2.version, other.version), (1, 2, 1));
    assert_eq!(rt.block_on(registry.artifact(&v2)).unwrap(), b"two");
    assert_eq!(registry.version("tx-iforest", 1).unwrap().sha256, v1.sha256);
    assert_eq!(registry.version("tx-iforest", 2).unwrap().metrics, metrics);
    assert!(registry.version("tx-iforest", 3).is_err());
    assert_eq!(registry.versions().unwrap().len(), 3);
    assert!(
        rt.block_on(registry.register("bad name!", None, b"x", &metrics))
            .is_err()
    );
}

/// Two workers registering the same model at once (each with its own
/// connection) never share a version number, and none is skipped.
fn concurrent_registrations_take_distinct_versions(store: &Store) {
    let per_worker = 8;
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let registry = store.registry();
            std::thread::spawn(move || {
                let rt = rt();
                (0..per_worker)
                    .map(|i| {
                        let artifact = format!("worker {w} model {i}");
                        rt.block_on(registry.register(
                            "tx-iforest",
                            None,
                            artifact.as_bytes(),
                            &serde_json::json!({}),
                        ))
                        .unwrap()
                        .version
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut versions: Vec<i64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=3 * per_worker as i64).collect::<Vec<_>>());
}

fn aliases_move_roll_back_and_keep_their_history(store: &Store) {
    let registry = store.registry();
    let rt = rt();
    for artifact in [b"a", b"b", b"c"] {
        rt.block_on(registry.register("m", None, artifact, &serde_json::json!({})))
            .unwrap();
    }
    assert_eq!(registry.alias("m", "champion").unwrap(), None);
    registry.set_alias("m", "champion", 1, "first").unwrap();
    registry.set_alias("m", "champion", 3, "better").unwrap();
    assert_eq!(registry.alias("m", "champion").unwrap(), Some(3));
    assert!(registry.set_alias("m", "champion", 9, "no such").is_err());
    assert_eq!(registry.rollback("m", "champion", "worse live").unwrap(), 1);
    assert_eq!(registry.alias("m", "champion").unwrap(), Some(1));
    let moves: Vec<(Option<i64>, i64, String)> = registry
        .alias_history("m")
        .unwrap()
        .into_iter()
        .map(|m| (m.from_version, m.to_version, m.reason))
        .collect();
    assert_eq!(
        moves,
        vec![
            (None, 1, "first".to_owned()),
            (Some(1), 3, "better".to_owned()),
            (Some(3), 1, "worse live".to_owned()),
        ]
    );
    registry.set_alias("m", "challenger", 2, "trained").unwrap();
    registry.remove_alias("m", "challenger").unwrap();
    assert_eq!(registry.alias("m", "challenger").unwrap(), None);
    assert!(registry.rollback("m", "nobody", "x").is_err());
}

fn the_audit_trail_keeps_events_in_order(store: &Store) {
    let registry = store.registry();
    rt().block_on(registry.register("m", None, b"a", &serde_json::json!({})))
        .unwrap();
    for (event, reason) in [
        ("shadow", "trained"),
        ("canary", "gate passed"),
        ("promoted", "canary healthy"),
    ] {
        registry
            .record_event("m", 1, event, reason, &serde_json::json!({"auc": 0.8}))
            .unwrap();
    }
    let events = registry.events("m").unwrap();
    let steps: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(steps, ["shadow", "canary", "promoted"]);
    assert_eq!(events[1].reason, "gate passed");
    assert_eq!(events[2].figures["auc"], 0.8);
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(
        registry
            .record_event(
                "m",
                7,
                "promoted",
                "no such version",
                &serde_json::json!({})
            )
            .is_err()
    );
    assert!(registry.events("other").unwrap().is_empty());
}

/// What a lease guards runs on one holder at a time; its holder extends
/// it; once it ends (released, or expired after a crash) another takes it.
fn a_lease_is_held_by_one_holder_until_it_ends(store: &Store) {
    let (a, b) = (store.registry(), store.registry());
    let long = Duration::from_secs(60);
    assert!(a.try_lease("retrain:tx", "worker-a", long).unwrap());
    assert!(!b.try_lease("retrain:tx", "worker-b", long).unwrap());
    assert!(
        a.try_lease("retrain:tx", "worker-a", long).unwrap(),
        "the holder extends its lease"
    );
    assert!(
        b.try_lease("retrain:other", "worker-b", long).unwrap(),
        "leases are per name"
    );
    // Only the holder releases it.
    b.release_lease("retrain:tx", "worker-b").unwrap();
    assert!(!b.try_lease("retrain:tx", "worker-b", long).unwrap());
    a.release_lease("retrain:tx", "worker-a").unwrap();
    assert!(
        b.try_lease("retrain:tx", "worker-b", Duration::from_millis(50))
            .unwrap()
    );
    assert!(!a.try_lease("retrain:tx", "worker-a", long).unwrap());
    std::thread::sleep(Duration::from_millis(120));
    assert!(
        a.try_lease("retrain:tx", "worker-a", long).unwrap(),
        "an expired lease is taken over"
    );

    // Many contenders at once: exactly one wins.
    let winners: usize = (0..6)
        .map(|i| {
            let registry = store.registry();
            std::thread::spawn(move || {
                registry
                    .try_lease(
                        "retrain:race",
                        &format!("worker-{i}"),
                        Duration::from_secs(60),
                    )
                    .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| usize::from(t.join().unwrap()))
        .sum();
    assert_eq!(winners, 1);
}

fn label(event_id: &str, fraud: bool, known_at: i64) -> Label {
    Label {
        event_id: event_id.into(),
        fraud,
        kind: fraud.then(|| "card-testing".to_owned()),
        source: "analyst".into(),
        known_at,
        author: Some("ana".into()),
    }
}

fn indexed(id: &str, keys: Vec<u64>) -> IndexedEvent<'static> {
    IndexedEvent {
        id: id.into(),
        ts: 1_000,
        entity: Some("card-1"),
        keys,
        partition: Some(0),
    }
}

fn labels_are_accepted_once_and_only_for_known_events(store: &Store) {
    let labels = LabelStore::open(&store.target).unwrap();
    // More events than one multi-row insert takes, and some twice.
    let events: Vec<_> = (0..250)
        .map(|i| indexed(&format!("e{i}"), vec![]))
        .collect();
    labels.index_events("tx", &events).unwrap();
    labels.index_events("tx", &events[..10]).unwrap();
    let recorded = labels
        .record(
            "tx",
            &[
                label("e1", true, 10),
                label("e249", false, 11),
                label("nope", true, 12),
            ],
        )
        .unwrap();
    let (Recorded::Accepted { seq: first }, Recorded::Accepted { seq: second }) =
        (recorded[0].clone(), recorded[1].clone())
    else {
        panic!("both known events' labels are accepted: {recorded:?}");
    };
    assert!(first < second);
    assert_eq!(recorded[2], Recorded::UnknownEvent);
    assert_eq!(
        labels.record("tx", &[label("e1", true, 10)]).unwrap(),
        vec![Recorded::Duplicate { seq: first }]
    );
    // Another stream does not know tx's events.
    assert_eq!(
        labels.record("other", &[label("e1", true, 10)]).unwrap(),
        vec![Recorded::UnknownEvent]
    );
    assert_eq!(labels.last_seq("tx").unwrap(), second);
    assert_eq!(labels.last_seq("other").unwrap(), 0);
    let listed = labels.list("tx", None, 0, 10).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].label, label("e1", true, 10));
    assert_eq!(labels.list("tx", None, first, 10).unwrap().len(), 1);
    assert_eq!(
        labels.list("tx", Some("e249"), 0, 10).unwrap()[0].seq,
        second
    );
    assert!(labels.book("tx").unwrap().fraud_as_of("e1", 10));
    assert!(!labels.book("tx").unwrap().fraud_as_of("e1", 9));
}

fn labels_move_label_features_in_recorded_order(store: &Store) {
    use radar_core::features::LabelChange;
    let labels = LabelStore::open(&store.target).unwrap();
    labels
        .index_events(
            "tx",
            &[indexed("e1", vec![7, u64::MAX]), indexed("e2", vec![])],
        )
        .unwrap();
    labels
        .record(
            "tx",
            &[
                label("e1", true, 100),
                label("e1", true, 150),
                label("e2", true, 160),
                label("e1", false, 200),
            ],
        )
        .unwrap();
    let (last, moves) = labels.moves_since("tx", 0, 100).unwrap();
    assert_eq!(last, labels.last_seq("tx").unwrap());
    let seen: Vec<(Vec<u64>, i64, LabelChange)> = moves
        .into_iter()
        .map(|m| (m.keys, m.at, m.change))
        .collect();
    assert_eq!(
        seen,
        vec![
            (vec![7, u64::MAX], 100, LabelChange::Fraud),
            (
                vec![7, u64::MAX],
                200,
                LabelChange::Retracted { since: 100 }
            ),
        ]
    );
    assert_eq!(labels.moves_since("tx", last, 100).unwrap(), (last, vec![]));
}

fn keys_are_created_listed_checked_and_revoked(store: &Store) {
    let keys = KeyStore::open(&store.target).unwrap();
    let reader = keys.create("dashboard", Role::Read, None).unwrap();
    let expired = keys.create("old", Role::Ingest, Some(1)).unwrap();
    assert!(keys.create("", Role::Read, None).is_err());
    let listed = keys.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|k| k.name == "dashboard" && k.role == Role::Read)
    );
    let active = keys.active().unwrap();
    let now = radar_core::time::now_micros();
    assert_eq!(active.check(Some(&reader.key), now).unwrap().1, Role::Read);
    assert!(active.check(Some(&expired.key), now).is_err());
    let forged = format!("{}0", &reader.key[..reader.key.len() - 1]);
    assert!(active.check(Some(&forged), now).is_err() || forged == reader.key);
    keys.revoke(&reader.info.id).unwrap();
    keys.revoke(&reader.info.id).unwrap();
    assert!(
        keys.active()
            .unwrap()
            .check(Some(&reader.key), now)
            .is_err()
    );
    assert!(keys.list().unwrap().iter().any(|k| k.revoked_at.is_some()));
    assert!(keys.revoke("00000000").is_err());
}

fn alert(i: i64, entity: &str, score: f64) -> Alert {
    Alert {
        event_id: format!("e{i}"),
        position: format!("tx/0/{i}"),
        stream: "tx".into(),
        entity: Some(entity.into()),
        score,
        threshold: 0.5,
        model: "tx-iforest".into(),
        model_version: 1,
        event_time: String::new(),
        event_time_us: 1_000_000 * i,
        decided_at_us: 0,
        latency_ms: 1.0,
        contributions: Vec::new(),
    }
}

fn alerts_are_kept_once_per_position_and_queried(store: &Store) {
    let alerts = AlertStore::open(&store.target).unwrap();
    let batch: Vec<Alert> = (1..=5)
        .map(|i| {
            alert(
                i,
                if i % 2 == 0 { "even" } else { "odd" },
                0.5 + i as f64 / 10.0,
            )
        })
        .collect();
    assert_eq!(alerts.insert(&batch).unwrap().len(), 5);
    // A rescored batch is not alerted again; the same id at another
    // position is another alert.
    assert_eq!(alerts.insert(&batch[..2]).unwrap().len(), 0);
    let reused = Alert {
        position: "tx/1/40".into(),
        ..alert(1, "odd", 0.99)
    };
    assert_eq!(alerts.insert(&[reused]).unwrap().len(), 1);
    assert_eq!(alerts.count().unwrap(), 6);
    let mut ids = alerts.event_ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["e1", "e1", "e2", "e3", "e4", "e5"]);

    let ids_of = |q: AlertQuery, since: Option<i64>| -> Vec<String> {
        alerts
            .query(&q, since)
            .unwrap()
            .into_iter()
            .map(|a| a.event_id)
            .collect()
    };
    // Newest event first.
    assert_eq!(
        ids_of(AlertQuery::default(), Some(3_000_000)),
        ["e5", "e4", "e3"]
    );
    assert_eq!(
        ids_of(
            AlertQuery {
                entity: Some("even".into()),
                ..AlertQuery::default()
            },
            None
        ),
        ["e4", "e2"]
    );
    assert_eq!(
        ids_of(
            AlertQuery {
                min_score: Some(0.85),
                ..AlertQuery::default()
            },
            None
        ),
        ["e5", "e4", "e1"]
    );
    assert_eq!(
        ids_of(
            AlertQuery {
                limit: Some(2),
                offset: Some(1),
                ..AlertQuery::default()
            },
            None
        ),
        ["e4", "e3"]
    );
    // Streams share the table; a query may keep to one.
    let other = Alert {
        event_id: "l1".into(),
        stream: "logins".into(),
        position: "logins/0/1".into(),
        ..alert(9, "odd", 0.7)
    };
    assert_eq!(alerts.insert(&[other]).unwrap().len(), 1);
    let of_stream = |s: &str| AlertQuery {
        stream: Some(s.into()),
        limit: Some(100),
        ..AlertQuery::default()
    };
    assert_eq!(ids_of(of_stream("logins"), None), ["l1"]);
    assert_eq!(ids_of(of_stream("tx"), None).len(), 6);
    assert!(ids_of(of_stream("nope"), None).is_empty());
}

fn shadow_alerts_and_drift_windows_are_kept(store: &Store) {
    let alerts = AlertStore::open(&store.target).unwrap();
    let challenger = |i| Alert {
        model_version: 2,
        ..alert(i, "x", 0.9)
    };
    assert_eq!(
        alerts
            .insert_shadow(&[challenger(1), challenger(2)])
            .unwrap(),
        2
    );
    assert_eq!(
        alerts
            .insert_shadow(&[challenger(2), challenger(3)])
            .unwrap(),
        1
    );
    assert_eq!(alerts.shadow_count("tx-iforest", 2).unwrap(), 3);
    assert_eq!(alerts.shadow_count("tx-iforest", 1).unwrap(), 0);
    assert_eq!(alerts.count().unwrap(), 0, "shadow alerts are not alerts");
    for (n, drift) in [(1, false), (2, true), (3, false)] {
        let window = radar_pipeline::drift::DriftWindow {
            model: "tx-iforest".into(),
            version: 1,
            ended_at: format!("2026-01-0{n}T00:00:00Z"),
            events: 100 * n,
            features: Vec::new(),
            score: None,
            drifted_share: 0.0,
            drift,
            alert_rate: 0.01,
            expected_alert_rate: 0.01,
        };
        alerts.insert_drift(&window).unwrap();
    }
    let recent = alerts.drift_windows(2).unwrap();
    let ended: Vec<&str> = recent
        .iter()
        .map(|w| w["ended_at"].as_str().unwrap())
        .collect();
    assert_eq!(ended, ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]);
    assert_eq!(recent[0]["drift"], true);
}

/// Every store opened again (and all of them at once, as `radar up`
/// workers starting together do) finds what was there, and its schema
/// steps are applied once.
fn reopening_keeps_everything_and_migrates_nothing_twice(store: &Store) {
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let target = store.target.clone();
            let root = store.root().to_owned();
            std::thread::spawn(move || {
                Registry::open(&target, &root, &[]).unwrap();
                LabelStore::open(&target).unwrap();
                KeyStore::open(&target).unwrap();
                AlertStore::open(&target).unwrap();
            })
        })
        .collect();
    for t in opens {
        t.join().unwrap();
    }
    let registry = store.registry();
    rt().block_on(registry.register("m", None, b"a", &serde_json::json!({})))
        .unwrap();
    AlertStore::open(&store.target)
        .unwrap()
        .insert(&[alert(1, "x", 0.9)])
        .unwrap();
    let registry = store.registry();
    assert_eq!(registry.versions().unwrap().len(), 1);
    assert_eq!(AlertStore::open(&store.target).unwrap().count().unwrap(), 1);
    let steps = registry
        .meta()
        .query(
            "SELECT component, COUNT(*) FROM radar_migrations GROUP BY component ORDER BY component",
            &[],
        )
        .unwrap();
    let steps: Vec<(String, i64)> = steps
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    for component in ["alerts", "keys", "labels", "registry"] {
        let applied = steps.iter().find(|(c, _)| c == component).map(|s| s.1);
        assert!(applied.is_some_and(|n| n >= 1), "{component}: {steps:?}");
    }
    let distinct: i64 = registry
        .meta()
        .query_opt(
            "SELECT COUNT(*) FROM (SELECT DISTINCT component, version FROM radar_migrations) AS d",
            &[],
        )
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    let all: i64 = registry
        .meta()
        .query_opt("SELECT COUNT(*) FROM radar_migrations", &[])
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(distinct, all);
}

/// An unreachable PostgreSQL is an error a retry may fix, and its message
/// never carries the password.
#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_is_unavailable_and_its_password_unsaid() {
    use radar_core::error::{Classify, ErrorKind};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = Target::Postgres(format!(
        "postgres://radar:hunter2secret@127.0.0.1:{port}/radar"
    ));
    let Err(e) = Registry::open(&target, "/tmp", &[]) else {
        panic!("nothing listens on port {port}");
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.to_string().contains("hunter2secret"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
}

/// `sslmode=require` speaks TLS to the server and checks its certificate:
/// against `sslrootcert` it connects (and the server says the session is
/// encrypted); against the system's roots, which never signed this test
/// CA, it refuses to connect.
#[cfg(feature = "postgres")]
#[test]
fn sslmode_require_encrypts_and_verifies_the_server() {
    let (Some(store), Ok(ca)) = (Store::postgres(), std::env::var("RADAR_POSTGRES_CA")) else {
        assert!(
            std::env::var_os("RADAR_SKIP_POSTGRES").is_some(),
            "set RADAR_POSTGRES_CA to the CA of the server's certificate (scripts/test does)"
        );
        return;
    };
    let Target::Postgres(url) = &store.target else {
        unreachable!("a PostgreSQL store")
    };
    let verified = Target::Postgres(format!("{url}?sslmode=require&sslrootcert={ca}"));
    let registry = Registry::open(&verified, store.root(), &[]).unwrap();
    let over_tls = |registry: &Registry| -> bool {
        registry
            .meta()
            .query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap()
    };
    assert!(over_tls(&registry), "the session is over TLS");
    assert!(
        !over_tls(&store.registry()),
        "without sslmode the session stays plain"
    );

    let unverified = Target::Postgres(format!("{url}?sslmode=require"));
    let Err(e) = Registry::open(&unverified, store.root(), &[]) else {
        panic!("connected to a server whose certificate no trusted root signed");
    };
    let said = format!("{e}").to_lowercase();
    assert!(
        said.contains("certificate") || said.contains("tls"),
        "{said}"
    );
}
