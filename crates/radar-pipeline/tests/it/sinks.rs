//! The alert sinks against real services: a log topic (the embedded log,
//! and a Kafka-protocol broker when one is given), and a webhook that
//! answers what the test tells it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use radar_core::health::Health;
use radar_log::EventLog;
use radar_pipeline::metrics::Metrics;
use radar_pipeline::sinks::topic::TopicConfig;
use radar_pipeline::sinks::webhook::WebhookConfig;
use radar_pipeline::sinks::{Alert, AlertSink, AlertStore, Sinks};

fn alert(i: usize) -> Alert {
    Alert {
        event_id: format!("e{i}"),
        position: format!("tx/0/{i}"),
        stream: "tx".into(),
        entity: Some(format!("c{}", i % 3)),
        score: 0.9,
        threshold: 0.5,
        model: "tx-iforest".into(),
        model_version: 1,
        event_time: "2026-01-01T00:00:00Z".into(),
        event_time_us: 1_767_225_600_000_000,
        decided_at_us: 0,
        latency_ms: 1.0,
        contributions: Vec::new(),
    }
}

/// Reads every record of `topic` until `n` arrived (or 30 s passed).
fn read_topic(log: &dyn EventLog, topic: &str, n: usize) -> Vec<Alert> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got = Vec::new();
        for p in 0..log.partitions(topic).unwrap() {
            let mut at = 0;
            loop {
                let batch = log.read(topic, p, at, 1000).unwrap();
                let Some(last) = batch.last() else { break };
                at = last.offset + 1;
                for s in batch {
                    let a: Alert = serde_json::from_slice(&s.record.value).unwrap();
                    assert_eq!(s.record.key.as_deref(), Some(a.position.as_bytes()));
                    got.push(a);
                }
            }
        }
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn topic_sink_delivers_each_new_alert_once(log: Arc<dyn EventLog>, topic: &str) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new("tx"));
    let sink = TopicConfig {
        topic: topic.to_owned(),
        partitions: 2,
        queue: 100,
    }
    .build(log.clone(), metrics.clone(), Arc::new(Health::default()))
    .unwrap();
    let sinks = Sinks::new(
        AlertStore::open(dir.path().join("alerts.db")).unwrap(),
        vec![Box::new(sink)],
        metrics.clone(),
    );
    let first: Vec<Alert> = (0..10).map(alert).collect();
    assert_eq!(sinks.emit(&first).unwrap(), 10);
    // A replay after a crash: the ledger knows them, nothing goes out again.
    let again: Vec<Alert> = (5..15).map(alert).collect();
    assert_eq!(sinks.emit(&again).unwrap(), 5);
    let got = read_topic(log.as_ref(), topic, 15);
    let mut ids: Vec<String> = got.iter().map(|a| a.event_id.clone()).collect();
    ids.sort();
    let mut want: Vec<String> = (0..15).map(|i| format!("e{i}")).collect();
    want.sort();
    assert_eq!(ids, want, "each alert once on the topic");
    let text = metrics.render(&Health::default());
    assert!(
        text.contains("radar_component_sent_total{stream=\"tx\",component=\"alerts_topic\"} 15"),
        "{text}"
    );
}

#[test]
fn topic_sink_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(radar_log::embedded::EmbeddedLog::open(dir.path(), Default::default()).unwrap());
    topic_sink_delivers_each_new_alert_once(log, "alerts");
}

#[cfg(feature = "kafka")]
#[test]
fn topic_sink_on_a_kafka_protocol_broker() {
    let Ok(brokers) = std::env::var("RADAR_KAFKA_BROKERS") else {
        if std::env::var_os("RADAR_SKIP_KAFKA_BROKER").is_some() {
            eprintln!(
                "no broker: the Kafka alert sink was NOT checked (RADAR_SKIP_KAFKA_BROKER set)"
            );
            return;
        }
        panic!(
            "set RADAR_KAFKA_BROKERS (scripts/test starts a broker), or RADAR_SKIP_KAFKA_BROKER=1"
        );
    };
    let log: Arc<dyn EventLog> = Arc::new(
        radar_log::kafka::KafkaLog::connect(radar_log::kafka::KafkaConfig::plaintext(brokers))
            .unwrap(),
    );
    let topic = format!(
        "alerts-{}-{}",
        std::process::id(),
        radar_core::time::now_micros() % 1_000_000
    );
    topic_sink_delivers_each_new_alert_once(log, &topic);
}

/// A webhook that answers each POST with the next status of `script`
/// (then 200), counting requests.
fn scripted_webhook(script: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(Mutex::new(script.into_iter()));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (c, script) = (c.clone(), script.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    let status = script.lock().unwrap().next().unwrap_or(200);
                    let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, count)
}

fn webhook(url: String) -> (Box<dyn AlertSink>, Arc<Metrics>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Arc::new(Metrics::new("tx"));
    let sink = WebhookConfig {
        url,
        queue: 10,
        retry_for: Duration::from_secs(30),
    }
    .build(metrics.clone(), Arc::new(Health::default()), rt.handle())
    .unwrap();
    (Box::new(sink), metrics, rt)
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn webhook_retries_only_what_a_retry_can_fix() {
    // 503 and 429 are retried until the alert goes through.
    let (url, count) = scripted_webhook(vec![503, 429]);
    let (sink, metrics, _rt) = webhook(url);
    sink.deliver(&[alert(1)]).unwrap();
    wait_for("delivered after two retries", || {
        metrics.webhook_sent.get() == 1
    });
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // A 400 is the receiver refusing this alert: not retried.
    let (url, count) = scripted_webhook(vec![400]);
    let (sink, metrics, _rt) = webhook(url);
    sink.deliver(&[alert(1), alert(2)]).unwrap();
    wait_for("the second alert delivered", || {
        metrics.webhook_sent.get() == 1
    });
    assert_eq!(count.load(Ordering::SeqCst), 2, "one try each");
    assert_eq!(metrics.webhook_failed.get(), 1);
}

#[test]
fn sink_configs_are_checked_before_they_build() {
    for (url, queue, message) in [
        ("not a url", 10, "webhook URL"),
        ("ftp://host/x", 10, "http:// or https://"),
        ("http://127.0.0.1:9/x", 0, "at least 1"),
    ] {
        let e = WebhookConfig {
            url: url.into(),
            queue,
            retry_for: Duration::from_secs(1),
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains(message), "{url}: {e}");
    }
}

/// Regression: the ledger kept each event id once, so a client that
/// reused a harmless event's id for a fraudulent one silenced its alert.
/// It keeps each log position once: the same position twice is one alert
/// (a rescored batch), the same id at two positions two.
#[test]
fn regression_a_reused_event_id_silenced_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let store = AlertStore::open(dir.path().join("alerts.db")).unwrap();
    let first = alert(1);
    let reused = Alert {
        position: "tx/0/99".into(),
        score: 0.97,
        ..alert(1)
    };
    assert_eq!(store.insert(std::slice::from_ref(&first)).unwrap().len(), 1);
    assert_eq!(store.insert(std::slice::from_ref(&first)).unwrap().len(), 0);
    assert_eq!(
        store.insert(std::slice::from_ref(&reused)).unwrap().len(),
        1
    );
    assert_eq!(
        store.event_ids().unwrap(),
        vec!["e1".to_owned(), "e1".to_owned()]
    );
}

/// An alerts table made when alerts were keyed by event id opens, keeps
/// its rows, and takes alerts by position from then on.
#[test]
fn an_alerts_table_keyed_by_event_id_is_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE alerts (event_id TEXT PRIMARY KEY, stream TEXT NOT NULL, entity TEXT,
                score REAL NOT NULL, event_time INTEGER NOT NULL, decided_at INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE INDEX alerts_time ON alerts(event_time);",
        )
        .unwrap();
        let body = serde_json::to_string(&alert(7)).unwrap();
        conn.execute(
            "INSERT INTO alerts VALUES ('e7', 'tx', 'c1', 0.9, 1, 2, ?1)",
            [body],
        )
        .unwrap();
    }
    let store = AlertStore::open(&path).unwrap();
    assert_eq!(store.event_ids().unwrap(), vec!["e7".to_owned()]);
    assert_eq!(store.insert(&[alert(8)]).unwrap().len(), 1);
    drop(store);
    let store = AlertStore::open(&path).unwrap();
    assert_eq!(store.event_ids().unwrap().len(), 2);
}
