//! The demo's report: what it holds, and how it looks to people.

use radar_pipeline::demo::Caught;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ModelPhase {
    pub version: i64,
    pub detector: String,
    #[serde(flatten)]
    pub caught: Caught,
}

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub bootstrap_events: usize,
    pub live_events_sent: u64,
    pub live_events_scored: u64,
    pub live_seconds: f64,
    pub live_events_per_second: f64,
    pub target_rate: Option<f64>,
    #[serde(flatten)]
    pub caught: Caught,
    /// Each phase's champion and how it did on the events it decided.
    pub models: Vec<ModelPhase>,
    pub labels_recorded: u64,
    pub decision_latency_p50_ms: Option<f64>,
    pub decision_latency_p99_ms: Option<f64>,
    pub ingest_request_p99_ms: Option<f64>,
    pub model: String,
    pub model_version: i64,
    pub data_dir: String,
    pub url: String,
}

pub fn print_demo(r: &DemoReport, stream: &str, total: f64) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("≤ {v:.1} ms"));
    println!();
    println!("radar demo report ({total:.0} s in all)");
    println!(
        "  history        {} events ingested, captured, trained on",
        r.bootstrap_events
    );
    println!(
        "  live           {} events sent over HTTP in {:.1} s: {:.0} events/s{}; {} scored",
        r.live_events_sent,
        r.live_seconds,
        r.live_events_per_second,
        r.target_rate
            .map_or(" (as fast as radar took them)".into(), |t| format!(
                " (target {t:.0})"
            )),
        r.live_events_scored
    );
    println!(
        "  alerts         {} on live events; {} frauds among them",
        r.caught.alerts_on_live_events, r.caught.frauds_in_live_events
    );
    println!(
        "  precision      {:.3}   recall {:.3}   F1 {:.3}   (all live events)",
        r.caught.precision, r.caught.recall, r.caught.f1
    );
    for m in &r.models {
        println!(
            "  v{:<3} {:<40} precision {:.3}  recall {:.3}  ({} frauds, {} alerts)",
            m.version,
            m.detector,
            m.caught.precision,
            m.caught.recall,
            m.caught.frauds_in_live_events,
            m.caught.alerts_on_live_events
        );
    }
    println!(
        "  labels         {} recorded through the labels API half-way",
        r.labels_recorded
    );
    println!("  recall by kind");
    for (k, v) in &r.caught.recall_by_kind {
        println!(
            "    {k:<22} {:.3}  ({} of {})",
            v.recall, v.caught, v.frauds
        );
    }
    println!(
        "  decision latency (ingest to decision) p50 {}  p99 {}",
        ms(r.decision_latency_p50_ms),
        ms(r.decision_latency_p99_ms)
    );
    println!("  ingest request p99 {}", ms(r.ingest_request_p99_ms));
    println!(
        "  model          {} v{} (champion)",
        r.model, r.model_version
    );
    println!(
        "  data           {}/ (log, lake/, radar.db, alerts.db)",
        r.data_dir
    );
    println!();
    println!("next:");
    println!(
        "  radar up --data-dir {} --config examples/transactions.toml   # serve it again",
        r.data_dir
    );
    println!("  curl -s {}/v1/alerts?limit=5", r.url);
    println!(
        "  curl -s -XPOST {}/v1/streams/{stream}/score -H 'content-type: application/json' -d '{{\"event_id\":\"t1\",\"ts\":\"2026-02-01T03:00:00Z\",\"card_id\":\"card-0000001\",\"amount\":2500,\"merchant_category\":\"jewelry\",\"lat\":48.85,\"lon\":2.35,\"device\":\"dev-new\"}}'",
        r.url
    );
    println!("  curl -s {}/metrics", r.url);
    println!("  radar models ls --data-dir {}", r.data_dir);
}
