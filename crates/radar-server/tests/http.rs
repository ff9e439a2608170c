//! Every endpoint against a real server on a free port: good requests work,
//! bad ones get a 4xx naming the problem, and nothing makes it panic.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use radar_core::schema::parse_streams;
use radar_core::{Matrix, Rng};
use radar_detect::{IsolationForest, IsolationForestParams};
use radar_log::EventLog;
use radar_log::embedded::{EmbeddedLog, Options};
use radar_pipeline::labels::LabelStore;
use radar_pipeline::metrics::Metrics;
use radar_pipeline::scorer::{Served, Shared};
use radar_pipeline::sinks::AlertStore;
use radar_registry::{Bundle, Reference, Registry};
use radar_server::http::{AppState, StreamApi, router};
use serde_json::Value;

const DECL: &str = r#"
[streams.tx]
timestamp = "ts"
entity = "card"
id = "id"
max_event_bytes = 2000
[streams.tx.fields]
amount = { type = "float", min = 0.0 }
kind = { type = "category" }
[[streams.tx.features]]
kind = "log1p"
field = "amount"
[[streams.tx.features]]
kind = "zscore"
field = "amount"
"#;

struct Server {
    url: String,
    shared: Arc<Shared>,
    labels: LabelStore,
    _dir: tempfile::TempDir,
    _stop: Arc<AtomicBool>,
}

async fn server() -> Server {
    server_behind(|_| None).await
}

/// A server whose door `door` makes from the data directory, if any.
async fn server_behind(
    door: impl FnOnce(&std::path::Path) -> Option<Arc<radar_server::door::Door>>,
) -> Server {
    server_of(DECL, door).await
}

/// A server of every stream `decl` declares (their series in one
/// registry, as `radar up` has them); `shared` is the first stream's.
async fn server_of(
    decl: &str,
    door: impl FnOnce(&std::path::Path) -> Option<Arc<radar_server::door::Door>>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let door = door(dir.path());
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), Options::default()).unwrap());
    let families = Arc::new(radar_pipeline::metrics::MetricFamilies::new());
    let streams: Vec<StreamApi> = parse_streams(decl)
        .unwrap()
        .into_iter()
        .map(|(name, c)| {
            log.create_topic(&name, 2).unwrap();
            let metrics = Arc::new(Metrics::in_families(&families, &name));
            StreamApi::new(
                Shared::new(c.build(&name).unwrap(), Default::default(), 2, metrics).unwrap(),
            )
        })
        .collect();
    let shared = streams[0].shared.clone();
    let registry = Registry::open(
        dir.path().join("radar.db"),
        dir.path().to_str().unwrap(),
        &[],
    )
    .unwrap();
    let labels = LabelStore::open(dir.path().join("labels.db")).unwrap();
    let state = AppState {
        max_events_per_request: 200,
        log,
        streams: Arc::new(streams),
        alerts: AlertStore::open(dir.path().join("alerts.db")).unwrap(),
        labels: labels.clone(),
        registry,
        dead_letters: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(state, 64 << 10, door))
            .await
            .unwrap();
    });
    Server {
        url,
        shared,
        labels,
        _dir: dir,
        _stop: Arc::new(AtomicBool::new(false)),
    }
}

fn load_model(s: &Server) {
    let mut rng = Rng::seed_from_u64(1);
    let x = Matrix::new((0..400).map(|_| rng.normal()).collect(), 2).unwrap();
    let forest = IsolationForest::fit(
        &IsolationForestParams {
            random_state: Some(0),
            ..Default::default()
        },
        x.view(),
    )
    .unwrap();
    let scores = forest.score(x.view()).unwrap();
    s.shared.model.store(Some(Arc::new(Served {
        name: "tx-iforest".into(),
        version: 1,
        bundle: Bundle {
            stream: "tx".into(),
            columns: s.shared.schema.columns.clone(),
            threshold: forest.threshold(),
            reference: Reference::of(x.view(), &scores),
            detector: Box::new(forest),
            supervised: None,
            trained: serde_json::json!({}),
        },
    })));
}

async fn post(s: &Server, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const GOOD: &str =
    r#"{"id":"e1","ts":"2026-01-01T00:00:00Z","card":"c1","amount":12.5,"kind":"food"}"#;

#[tokio::test]
async fn ingest_accepts_objects_arrays_and_ndjson() {
    let s = server().await;
    let (status, body) = post(&s, "/v1/streams/tx/events", GOOD).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    assert!(body["results"][0]["offset"].is_u64());
    let (status, body) = post(&s, "/v1/streams/tx/events", format!("[{GOOD},{GOOD}]")).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(2)));
    let (status, body) = post(
        &s,
        "/v1/streams/tx/events",
        format!("{GOOD}\n{GOOD}\n\n{GOOD}\n"),
    )
    .await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(3)));
}

#[tokio::test]
async fn ingest_reports_bad_events_by_field() {
    let s = server().await;
    let mixed = format!(
        "{GOOD}\n{{\"id\":\"e2\",\"ts\":\"2026-01-01T00:00:00Z\",\"card\":\"c1\",\"kind\":\"x\"}}\nnot json\n"
    );
    let (status, body) = post(&s, "/v1/streams/tx/events", mixed).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(body["results"][1]["reason"], "missing");
    assert_eq!(body["results"][1]["field"], "amount");
    assert_eq!(body["results"][1]["error"], "field `amount` is missing");
    assert_eq!(body["results"][2]["reason"], "not_json");

    let (status, body) = post(
        &s,
        "/v1/streams/tx/events",
        r#"{"id":"e","ts":"soon","card":"c","amount":1,"kind":"k"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["results"][0]["reason"], "bad_timestamp");
    let (status, body) = post(&s, "/v1/streams/tx/events", "").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("empty"));
    let (status, body) = post(&s, "/v1/streams/tx/events", "[1, 2").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not a JSON array"),
        "{body}"
    );
    let (status, body) = post(&s, "/v1/streams/tx/events", "[]").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&s, "/v1/streams/nope/events", GOOD).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("stream `nope`"));
    let (status, _) = post(&s, "/v1/streams/tx/events", vec![b'{'; 100_000]).await;
    assert_eq!(status, 413);
    // A too-large single event is refused by the declaration's limit.
    let big = format!(
        r#"{{"id":"e","ts":"2026-01-01T00:00:00Z","card":"c","amount":1,"kind":"{}"}}"#,
        "k".repeat(3000)
    );
    let (status, body) = post(&s, "/v1/streams/tx/events", big).await;
    assert_eq!(
        (status, body["results"][0]["reason"].as_str()),
        (400, Some("too_large"))
    );
}

#[tokio::test]
async fn score_needs_a_model_and_explains() {
    let s = server().await;
    let (status, body) = post(&s, "/v1/streams/tx/score", GOOD).await;
    assert_eq!(status, 503);
    assert!(body["error"].as_str().unwrap().contains("no champion"));
    let (status, _) = get(&s, "/readyz").await;
    assert_eq!(status, 503);
    load_model(&s);
    let (status, _) = get(&s, "/readyz").await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &s,
        "/v1/streams/tx/score",
        format!("[{GOOD}, {{\"id\":1}}]"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["results"][0];
    assert!(r["score"].as_f64().unwrap() > 0.0);
    assert!(r["contributions"].as_array().unwrap().len() == 2);
    assert_eq!(body["results"][1]["reason"], "missing");
    assert_eq!(body["model_version"], 1);
    let (status, _) = post(&s, "/v1/streams/tx/score", "").await;
    assert_eq!(status, 400);
    let (status, _) = post(&s, "/v1/streams/other/score", GOOD).await;
    assert_eq!(status, 404);
}

/// A few events are scored on the request's thread, more on the blocking
/// pool, and a request finding the feature state locked waits for it: all
/// three answer the same.
#[tokio::test]
async fn score_answers_alike_inline_pooled_and_after_waiting() {
    let s = server().await;
    load_model(&s);
    let (status, one) = post(&s, "/v1/streams/tx/score", GOOD).await;
    assert_eq!(status, 200, "{one}");
    let many = [GOOD; 9].join("\n");
    let (status, pooled) = post(&s, "/v1/streams/tx/score", many).await;
    assert_eq!(status, 200, "{pooled}");
    assert_eq!(pooled["results"].as_array().unwrap().len(), 9);
    for (i, r) in pooled["results"].as_array().unwrap().iter().enumerate() {
        let mut r = r.clone();
        assert_eq!(r["index"], i);
        r["index"] = 0.into();
        assert_eq!(r, one["results"][0]);
    }
    let shared = s.shared.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _state = shared.state.write().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    });
    held_rx.recv().unwrap();
    let (status, waited) = post(&s, "/v1/streams/tx/score", GOOD).await;
    holder.join().unwrap();
    assert_eq!(status, 200, "{waited}");
    assert_eq!(waited["results"][0], one["results"][0]);
}

#[tokio::test]
async fn reads_validate_their_parameters() {
    let s = server().await;
    for (path, expect) in [
        ("/v1/alerts", 200),
        (
            "/v1/alerts?limit=5&min_score=0.5&entity=c1&since=2026-01-01T00:00:00Z",
            200,
        ),
        ("/v1/alerts?since=yesterday", 400),
        ("/v1/alerts?limit=0", 400),
        ("/v1/alerts?limit=many", 400),
        ("/v1/alerts?colour=red", 400),
        ("/v1/models", 200),
        ("/v1/models/tx-iforest", 404),
        ("/v1/models/tx-iforest/versions/7", 404),
        ("/v1/models/tx-iforest/versions/seven", 400),
        ("/v1/runs", 200),
        ("/healthz", 200),
        ("/nope", 404),
    ] {
        let (status, body) = get(&s, path).await;
        assert_eq!(status, expect, "{path}: {body}");
        if expect >= 400 {
            assert!(
                body["error"].is_string() || body.is_string(),
                "{path}: {body}"
            );
        }
    }
    let (status, body) = get(&s, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("radar_events_in_total"));
}

#[tokio::test]
async fn random_bodies_never_break_the_server() {
    let s = server().await;
    load_model(&s);
    let mut rng = Rng::seed_from_u64(9);
    let pieces: [&[u8]; 12] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"\n",
        b"null",
        b"1e999",
        b"\"ts\"",
        "é\u{0}".as_bytes(),
    ];
    for i in 0..300 {
        let mut body = Vec::new();
        for _ in 0..rng.below(40) {
            if rng.below(3) == 0 {
                body.push(rng.below(256) as u8);
            } else {
                body.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
            }
        }
        let path = if i % 2 == 0 {
            "/v1/streams/tx/events"
        } else {
            "/v1/streams/tx/score"
        };
        let (status, body) = post(&s, path, body).await;
        assert!([200, 202, 400, 413].contains(&status), "{status}: {body}");
    }
    assert_eq!(get(&s, "/healthz").await.0, 200);
}

/// The bug: a model version that does not exist answered 500 (every
/// registry error was "internal"). Errors now keep their kind, and the
/// server maps the kind to a status in one place.
#[tokio::test]
async fn regression_a_missing_model_version_was_a_500() {
    let s = server().await;
    let (status, body) = get(&s, "/v1/models/tx-iforest/versions/3").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
    assert!(
        body["error"].as_str().unwrap().contains("no version 3"),
        "{body}"
    );
    let (status, body) = get(&s, "/v1/models/nobody").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = get(&s, "/v1/models/tx-iforest/versions/x").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("version")));
}

#[tokio::test]
async fn labels_are_recorded_with_history_and_bad_ones_named() {
    let s = server().await;
    s.labels
        .index_events(
            "tx",
            &[("e1", 1), ("e2", 2)].map(|(id, ts)| radar_pipeline::labels::IndexedEvent {
                id: id.into(),
                ts,
                entity: Some("c1"),
                keys: Vec::new(),
                partition: Some(0),
            }),
        )
        .unwrap();
    let (status, body) = post(
        &s,
        "/v1/labels",
        r#"[{"event_id":"e1","label":"true_positive","kind":"card_testing","source":"analyst","known_at":"2026-01-02T00:00:00Z"},
            {"event_id":"e2","label":"false_positive"},
            {"event_id":"nope","label":1},
            {"event_id":"e1","label":"maybe"},
            {"event_id":"e1","label":1,"known_at":"2999-01-01T00:00:00Z"}]"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[1]["status"], "accepted");
    assert_eq!(
        (r[2]["status"].as_str(), r[2]["field"].as_str()),
        (Some("unknown_event"), Some("event_id"))
    );
    assert_eq!(
        (r[3]["status"].as_str(), r[3]["field"].as_str()),
        (Some("invalid"), Some("label"))
    );
    assert_eq!(
        (r[4]["status"].as_str(), r[4]["field"].as_str()),
        (Some("invalid"), Some("known_at"))
    );
    assert!(r[4]["error"].as_str().unwrap().contains("future"), "{body}");
    // The same statement again: nothing new; a chargeback later: history.
    let (status, body) = post(
        &s,
        "/v1/labels",
        r#"{"event_id":"e1","label":"true_positive","kind":"card_testing","source":"analyst","known_at":"2026-01-02T00:00:00Z"}
{"event_id":"e2","label":"fraud","source":"chargeback","known_at":"2026-02-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["results"][0]["status"], "duplicate");
    assert_eq!(body["results"][1]["status"], "accepted");
    let (status, body) = get(&s, "/v1/labels?event_id=e2").await;
    assert_eq!(status, 200);
    let history: Vec<&str> = body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["legit", "fraud"], "{body}");
    // Well-formed labels all about unknown events: 404; mixed with a bad
    // one: 400.
    let (status, body) = post(&s, "/v1/labels", r#"{"event_id":"nope","label":1}"#).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["results"][0]["status"], "unknown_event");
    let (status, body) = post(
        &s,
        "/v1/labels",
        r#"[{"event_id":"nope","label":1},{"label":1}]"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get(&s, "/v1/labels?limit=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn drift_shows_the_last_window_per_feature_and_the_history() {
    let s = server().await;
    let (status, body) = get(&s, "/v1/streams/tx/drift").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["latest"].is_null());
    assert_eq!(body["options"]["window_events"], 1000);
    load_model(&s);
    let served = s.shared.model.load_full().unwrap();
    // A window whose first feature moved two deviations.
    let mut rng = Rng::seed_from_u64(5);
    let x = Matrix::new(
        (0..2000)
            .map(|i| rng.normal() + if i % 2 == 0 { 2.0 } else { 0.0 })
            .collect(),
        2,
    )
    .unwrap();
    let scores = served.bundle.score_batch(x.view()).unwrap();
    s.shared.drift.lock().unwrap().observe(
        (&served.name, served.version),
        &s.shared.schema.columns,
        &served.bundle.reference,
        served.bundle.threshold,
        x.view(),
        &scores,
        &[],
    );
    let (status, body) = get(&s, "/v1/streams/tx/drift").await;
    assert_eq!(status, 200, "{body}");
    let latest = &body["latest"];
    assert_eq!(latest["events"], 1000);
    assert_eq!(latest["features"][0]["drifted"], true, "{latest}");
    assert_eq!(latest["features"][1]["drifted"], false, "{latest}");
    assert_eq!(latest["drift"], true);
    assert_eq!(body["history"].as_array().unwrap().len(), 1);
    let (status, _) = get(&s, "/v1/streams/other/drift").await;
    assert_eq!(status, 404);
}

/// A POST must declare JSON or NDJSON: a web page's `text/plain` form
/// (which a browser sends cross-site without asking) cannot inject events,
/// and a compressed body is refused, not misread.
#[tokio::test]
async fn posts_must_declare_json_and_come_uncompressed() {
    let s = server().await;
    let event = r#"{"id":"a","ts":"2026-01-01T00:00:00Z","card":"c1","amount":5,"kind":"x"}"#;
    let client = reqwest::Client::new();
    let send = |ct: Option<&'static str>, enc: Option<&'static str>| {
        let mut r = client
            .post(format!("{}/v1/streams/tx/events", s.url))
            .body(event);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        if let Some(enc) = enc {
            r = r.header("content-encoding", enc);
        }
        r.send()
    };
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let r = send(ct, None).await.unwrap();
        assert_eq!(r.status().as_u16(), 415, "{ct:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unsupported_media_type");
        assert_eq!(body["field"], "Content-Type");
    }
    let r = send(Some("application/json"), Some("gzip")).await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-ndjson",
    ] {
        let r = send(Some(ct), None).await.unwrap();
        assert_eq!(r.status().as_u16(), 202, "{ct}");
    }
}

/// Keys and roles: no key or a bad one is 401, the wrong role 403, a
/// revoked or expired key stops working; health stays open; an ingest key
/// learns only what it sent was accepted.
#[tokio::test]
async fn every_endpoint_checks_its_role() {
    use radar_pipeline::access::{KeyStore, Role};
    let mut made = None;
    let s = server_behind(|dir| {
        let store = KeyStore::open(dir.join("keys.db")).unwrap();
        let now = radar_core::time::now_micros();
        let keys: Vec<_> = [
            Role::Ingest,
            Role::Score,
            Role::Read,
            Role::Label,
            Role::Admin,
        ]
        .into_iter()
        .map(|r| store.create(r.name(), r, None).unwrap().key)
        .collect();
        let expired = store.create("old", Role::Read, Some(now - 1)).unwrap().key;
        let door =
            radar_server::door::Door::new(store.clone(), true, false, Default::default()).unwrap();
        made = Some((store, keys, expired, door.clone()));
        Some(door)
    })
    .await;
    let (store, keys, expired, door) = made.unwrap();
    door.keep_fresh(&tokio::runtime::Handle::current());
    load_model(&s);
    let [ingest, score, read, label, admin] = [0, 1, 2, 3, 4].map(|i| keys[i].clone());
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, key: Option<&str>| {
        let mut r = client.request(method.parse().unwrap(), format!("{}{path}", s.url));
        if method == "POST" {
            r = r.header("content-type", "application/json").body(
                r#"{"id":"k1","ts":"2026-01-01T00:00:00Z","card":"c1","amount":5,"kind":"x"}"#,
            );
        }
        if let Some(k) = key {
            r = r.header("authorization", format!("Bearer {k}"));
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let events = "/v1/streams/tx/events";
    let scoring = "/v1/streams/tx/score";
    for (path, method) in [
        (events, "POST"),
        (scoring, "POST"),
        ("/v1/alerts", "GET"),
        ("/v1/labels", "GET"),
        ("/v1/models", "GET"),
        ("/metrics", "GET"),
    ] {
        let (status, body) = call(method, path, None).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert!(body.contains("unauthorized"), "{body}");
    }
    assert_eq!(call("GET", "/healthz", None).await.0, 200);
    assert_eq!(call("GET", "/readyz", None).await.0, 200);
    assert_eq!(call("GET", "/v1/alerts", Some("rk_nonsense")).await.0, 401);
    assert_eq!(call("GET", "/v1/alerts", Some(&expired)).await.0, 401);
    // Each role its own endpoints; admin all.
    let (status, body) = call("POST", events, Some(&ingest)).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        !body.contains("score") && !body.contains("threshold"),
        "{body}"
    );
    assert_eq!(call("POST", scoring, Some(&ingest)).await.0, 403);
    assert_eq!(call("GET", "/v1/alerts", Some(&ingest)).await.0, 403);
    assert_eq!(call("POST", scoring, Some(&score)).await.0, 200);
    assert_eq!(call("POST", events, Some(&score)).await.0, 403);
    assert_eq!(call("GET", "/v1/alerts", Some(&read)).await.0, 200);
    assert_eq!(call("POST", scoring, Some(&read)).await.0, 403);
    assert_eq!(call("POST", "/v1/labels", Some(&read)).await.0, 403);
    assert_ne!(call("POST", "/v1/labels", Some(&label)).await.0, 403);
    assert_eq!(call("GET", "/v1/alerts", Some(&label)).await.0, 403);
    for (path, method) in [
        (events, "POST"),
        (scoring, "POST"),
        ("/v1/alerts", "GET"),
        ("/metrics", "GET"),
    ] {
        let (status, body) = call(method, path, Some(&admin)).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
    }
    let (status, body) = call("POST", scoring, Some(&ingest)).await;
    assert!(body.contains("needs `score`"), "{status} {body}");
    // Revoked: refused within the door's reload.
    store.revoke(&read[3..11]).unwrap();
    let t = std::time::Instant::now();
    while call("GET", "/v1/alerts", Some(&read)).await.0 != 401 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "the revoked key still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Limits: more events in a request than allowed is 413; `/score` with no
/// valid event is 400; an array's events are checked one by one as sent
/// (a duplicate key inside is refused, not silently merged); a key over
/// its rate gets 429 with Retry-After.
#[tokio::test]
async fn limits_caps_and_what_is_checked_per_event() {
    use radar_pipeline::access::{KeyStore, Role};
    let ev = |i: usize| {
        format!(r#"{{"id":"l{i}","ts":"2026-01-01T00:00:00Z","card":"c1","amount":5,"kind":"x"}}"#)
    };
    let s = server().await;
    load_model(&s);
    let many: String = (0..201).map(|i| ev(i) + "\n").collect();
    let (status, body) = post(&s, "/v1/streams/tx/events", many).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too_many_events");
    let (status, body) = post(&s, "/v1/streams/tx/score", "{\"id\":1}\n{\"nope\":true}").await;
    assert_eq!(status, 400, "{body}");
    let dup = r#"[{"id":"d1","ts":"2026-01-01T00:00:00Z","card":"c1","amount":5,"amount":900000,"kind":"x"}]"#;
    let (status, body) = post(&s, "/v1/streams/tx/events", dup).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("duplicate"), "{body}");

    let mut key = None;
    let s = server_behind(|dir| {
        let store = KeyStore::open(dir.join("keys.db")).unwrap();
        key = Some(store.create("burst", Role::Admin, None).unwrap().key);
        let limits = radar_server::door::Limits {
            rate: Some(1.0),
            concurrent: None,
        };
        Some(radar_server::door::Door::new(store, true, true, limits).unwrap())
    })
    .await;
    let key = key.unwrap();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = client
            .get(format!("{}/v1/alerts", s.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            retry_after = r.headers().get("retry-after").cloned();
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["code"], "rate_limited");
        }
    }
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some());
}

/// Refused input does not fill the disk: past 100 invalid events in one
/// request, the rest are answered (with a summary by reason) and counted,
/// not kept as dead letters; valid events among them are still stored.
#[tokio::test]
async fn dead_letters_are_bounded_per_request() {
    let s = server().await;
    let mut body: String = (0..150)
        .map(|i| {
            format!(r#"{{"id":"bad{i}","ts":"2026-01-01T00:00:00Z","card":"c1","kind":"x"}}"#)
                + "\n"
        })
        .collect();
    body.push_str(r#"{"id":"good","ts":"2026-01-01T00:00:00Z","card":"c1","amount":5,"kind":"x"}"#);
    let (status, v) = post(&s, "/v1/streams/tx/events", body).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"], 150);
    let by_reason: u64 = v["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, 150);
    let last = &v["results"][150];
    assert!(
        last["offset"].is_u64(),
        "the valid event is acknowledged: {last}"
    );
    let (_, metrics) = get(&s, "/metrics").await;
    let text = metrics.as_str().unwrap().to_owned();
    let capped = text
        .lines()
        .find(|l| l.contains("dead_letter_cap") && l.contains("ingest"))
        .unwrap_or_else(|| panic!("no dead_letter_cap count in {text}"));
    assert!(capped.trim_end().ends_with(" 50"), "{capped}");
}

/// Every error is JSON with a stable code, also those the router makes on
/// its own (405, 413, 404), and the contract is served to anyone.
#[tokio::test]
async fn every_error_is_json_with_a_code_and_the_contract_is_served() {
    let s = server().await;
    let (status, body) = get(&s, "/v1/streams/tx/events").await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    let (status, body) = post(&s, "/v1/streams/tx/events", vec![b' '; 17 << 20]).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large", "{body}");
    let (status, body) = get(&s, "/nowhere").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = get(&s, "/v1/alerts?offset=18446744073709551615").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("offset")),
        "{body}"
    );
    let (status, body) = get(&s, "/v1/alerts?limit=99999999999999999999999").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_input")),
        "{body}"
    );
    let (status, doc) = get(&s, "/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert!(doc["paths"]["/v1/streams/{stream}/score"]["post"].is_object());
}

const LOGINS: &str = r#"
[streams.logins]
timestamp = "ts"
entity = "user"
id = "id"
[streams.logins.fields]
failures = { type = "int", min = 0 }
[[streams.logins.features]]
kind = "raw"
field = "failures"
"#;

#[tokio::test]
async fn one_server_serves_several_streams_each_by_its_path() {
    let s = server_of(&format!("{DECL}{LOGINS}"), |_| None).await;
    let login = r#"{"id":"l1","ts":"2026-01-01T00:00:00Z","user":"u1","failures":3}"#;
    // Each stream takes its own events, to its own topic.
    let (status, body) = post(&s, "/v1/streams/logins/events", login).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&s, "/v1/streams/tx/events", GOOD).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&s, "/v1/streams/logins/events", GOOD).await;
    assert_eq!(
        (status, body["results"][0]["field"].as_str()),
        (400, Some("user")),
        "a tx event is not a login: {body}"
    );
    let (status, body) = post(&s, "/v1/streams/nope/events", login).await;
    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("`tx`") && error.contains("`logins`"),
        "{error}"
    );
    // Labels name their stream; the route that does not is refused.
    let (status, body) = post(&s, "/v1/labels", r#"{"event_id":"l1","label":1}"#).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("stream")),
        "{body}"
    );
    let (status, body) = get(&s, "/v1/labels").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("stream")),
        "{body}"
    );
    s.labels
        .index_events(
            "logins",
            &[radar_pipeline::labels::IndexedEvent {
                id: "l1".into(),
                ts: 1,
                entity: Some("u1"),
                keys: Vec::new(),
                partition: Some(0),
            }],
        )
        .unwrap();
    let (status, body) = post(
        &s,
        "/v1/streams/tx/labels",
        r#"{"event_id":"l1","label":1}"#,
    )
    .await;
    assert_eq!(status, 404, "l1 is not a tx event: {body}");
    let (status, body) = post(
        &s,
        "/v1/streams/logins/labels",
        r#"{"event_id":"l1","label":1}"#,
    )
    .await;
    assert_eq!(
        (status, body["recorded"].as_u64()),
        (201, Some(1)),
        "{body}"
    );
    let (status, body) = get(&s, "/v1/streams/logins/labels").await;
    assert_eq!(
        (status, body["labels"][0]["event_id"].as_str()),
        (200, Some("l1"))
    );
    // The contract lists both streams, each with its event.
    let (_, doc) = get(&s, "/openapi.json").await;
    let stream = doc["paths"]["/v1/streams/{stream}/events"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "stream")
        .unwrap()
        .clone();
    assert_eq!(
        stream["schema"]["enum"],
        serde_json::json!(["logins", "tx"])
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Event.logins"]["required"],
        serde_json::json!(["id", "user", "ts", "failures"])
    );
    assert!(schemas["Event.tx"]["properties"]["amount"].is_object());
    assert_eq!(schemas["Event"]["anyOf"].as_array().unwrap().len(), 2);
    // One exposition: every family once, a series per stream.
    let text = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("radar_events_in_total{stream=\"logins\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("radar_events_in_total{stream=\"tx\"} 1"),
        "{text}"
    );
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), types.len(), "{text}");
    // Ready when every stream is; each says why not.
    let (status, body) = get(&s, "/readyz").await;
    assert_eq!(status, 503, "no model yet: {body}");
    for name in ["tx", "logins"] {
        assert_eq!(
            body["streams"][name]["status"], "waiting for a champion model",
            "{body}"
        );
    }
}
