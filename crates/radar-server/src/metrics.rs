//! Prometheus metrics: counters, gauges and a latency histogram on atomics,
//! rendered in the text exposition format.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use radar_core::decode::Reason;
use radar_core::health::{Health, State};

/// Upper bounds (seconds) of the decision-latency histogram.
const BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0,
    2.0, 5.0, 10.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe_micros(&self, micros: u64) {
        let secs = micros as f64 / 1e6;
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The upper bound (seconds) of the bucket holding quantile `q`, or None
    /// without observations. Resolution is the bucket grid.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(BUCKETS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }

    /// Forgets every observation (e.g. after a warm-up that should not
    /// count).
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        self.sum_micros.store(0, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Every metric radar exposes.
#[derive(Default)]
pub struct Metrics {
    pub events_in: AtomicU64,
    pub dead_letters: [AtomicU64; Reason::CODES.len()],
    pub scored: AtomicU64,
    pub alerts: AtomicU64,
    pub webhook_sent: AtomicU64,
    pub webhook_failed: AtomicU64,
    pub webhook_dropped: AtomicU64,
    pub model_version: AtomicU64,
    pub decision_latency: Histogram,
    /// (partition, lag) of the scorer, set by the scorer.
    pub lag: Mutex<Vec<(u32, u64)>>,
}

impl Metrics {
    pub fn dead_letter(&self, reason: &Reason) {
        if let Some(i) = Reason::CODES.iter().position(|c| *c == reason.code()) {
            self.dead_letters[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, stream: &str) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{stream=\"{stream}\"}} {v}"
            );
        };
        counter(
            &mut out,
            "radar_events_in_total",
            "Events received by ingest.",
            self.events_in.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP radar_dead_letters_total Events refused, by reason.\n# TYPE radar_dead_letters_total counter"
        );
        for (i, code) in Reason::CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "radar_dead_letters_total{{stream=\"{stream}\",reason=\"{code}\"}} {}",
                self.dead_letters[i].load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "radar_scored_total",
            "Events scored.",
            self.scored.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "radar_alerts_total",
            "Alerts raised.",
            self.alerts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "radar_webhook_sent_total",
            "Alerts delivered to the webhook.",
            self.webhook_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "radar_webhook_failed_total",
            "Webhook deliveries that failed after retries.",
            self.webhook_failed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "radar_webhook_dropped_total",
            "Alerts not queued for the webhook because its queue was full.",
            self.webhook_dropped.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP radar_model_version Version of the champion being served.\n# TYPE radar_model_version gauge\nradar_model_version{{stream=\"{stream}\"}} {}",
            self.model_version.load(Ordering::Relaxed)
        );
        self.decision_latency
            .render("radar_decision_latency_seconds", &mut out);
        let _ = writeln!(
            out,
            "# HELP radar_consumer_lag Records not yet scored, per partition.\n# TYPE radar_consumer_lag gauge"
        );
        if let Ok(lag) = self.lag.lock() {
            for (p, l) in lag.iter() {
                let _ = writeln!(
                    out,
                    "radar_consumer_lag{{stream=\"{stream}\",partition=\"{p}\"}} {l}"
                );
            }
        }
        out
    }
}

/// Component health as gauges (1 while a component is ok) and error
/// counters, one series per component.
pub fn render_health(health: &Health, out: &mut String) {
    let all = health.snapshot();
    let _ = writeln!(
        out,
        "# HELP radar_component_up Whether a component (log, capture, scorer, webhook) is working: 1 ok, 0 degraded or failed.\n# TYPE radar_component_up gauge"
    );
    for (name, s) in &all {
        let up = (s.state == State::Ok) as u8;
        let _ = writeln!(out, "radar_component_up{{component=\"{name}\"}} {up}");
    }
    let _ = writeln!(
        out,
        "# HELP radar_component_errors_total Errors a component met (each failed retry counts).\n# TYPE radar_component_errors_total counter"
    );
    for (name, s) in &all {
        let _ = writeln!(
            out,
            "radar_component_errors_total{{component=\"{name}\"}} {}",
            s.errors
        );
    }
}
