//! `radar demo` end to end with a short live phase: the real binary, the
//! real HTTP ingest, and a report whose figures add up.

use crate::{radar, stderr};

#[test]
fn demo_runs_the_whole_loop_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let out = radar(&[
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--duration",
        "4s",
        "--rate",
        "1000",
        "--cardholders",
        "2000",
        "--bootstrap-days",
        "10",
        "--port",
        &port,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("radar demo report"), "{text}");
    let json_start = text.find("{\n").expect("JSON report");
    let r: serde_json::Value = serde_json::from_str(&text[json_start..]).unwrap();
    let sent = r["live_events_sent"].as_u64().unwrap();
    assert!(sent >= 3000, "sent {sent}");
    assert_eq!(r["live_events_scored"], sent, "every live event was scored");
    assert!(r["bootstrap_events"].as_u64().unwrap() > 10_000);
    let rate = r["live_events_per_second"].as_f64().unwrap();
    // The pacer never sends faster than asked (1,000/s); how close it
    // comes depends on the machine's load, which a test must not assert.
    assert!(rate > 0.0 && rate < 1200.0, "rate {rate}");
    let frauds = r["frauds_in_live_events"].as_u64().unwrap();
    let tp = r["true_positives"].as_u64().unwrap();
    let alerts = r["alerts_on_live_events"].as_u64().unwrap();
    assert!(frauds > 0 && alerts > 0);
    let precision = r["precision"].as_f64().unwrap();
    let recall = r["recall"].as_f64().unwrap();
    assert!((precision - tp as f64 / alerts as f64).abs() < 1e-9);
    assert!((recall - tp as f64 / frauds as f64).abs() < 1e-9);
    assert!(
        recall > 0.3 && precision > 0.3,
        "precision {precision} recall {recall}"
    );
    assert_eq!(
        r["recall_by_kind"]
            .as_object()
            .unwrap()
            .values()
            .map(|k| k["frauds"].as_u64().unwrap())
            .sum::<u64>(),
        frauds
    );
    assert!(r["decision_latency_p99_ms"].as_f64().is_some());
    assert!(data.join("radar.db").exists() && data.join("lake").is_dir());
}
