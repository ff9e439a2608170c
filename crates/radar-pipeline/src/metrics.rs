//! The metrics every part of the pipeline keeps, in one Prometheus
//! registry per process (prometheus-client, OpenMetrics text), every
//! series labelled with its stream:
//!
//! - per component (`ingest`, `capture`, `scorer`, each sink), the same
//!   four counters, as Vector's components have: `received`, `sent`,
//!   `errors`, `dropped` (with a reason);
//! - the stream's own: events in, dead letters by reason (wherever they
//!   are found), scored, alerts, the served model's version, decision
//!   latency, consumer lag per partition;
//! - component health (`radar_component_up`, `radar_component_errors`),
//!   read from [`Health`] when rendered.
//!
//! Counters are atomics: the hot path increments without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use radar_core::decode::Reason;
use radar_core::health::{Health, State};

/// Upper bounds (seconds) of the decision-latency histogram.
const BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0,
    2.0, 5.0, 10.0,
];

/// The upper bound (seconds) of the bucket holding quantile `q` of
/// bucket `counts` (as [`Histogram::counts`] gives, or a difference of
/// two), or None when they are all zero.
pub fn quantile_of(counts: &[u64], q: f64) -> Option<f64> {
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

/// A latency histogram on atomics that can also tell its quantiles (for
/// reports), at the resolution of its buckets.
#[derive(Default, Debug)]
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
    /// without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_of(&self.counts(), q)
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

    /// Each bucket's count now (the last is above every bound).
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// The histogram as registered: shared with whoever observes it.
#[derive(Debug, Default, Clone)]
struct Registered(Arc<Histogram>);

impl TypedMetric for Registered {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Registered {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len() + 1);
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts[i].load(Ordering::Relaxed);
            cumulative += c;
            buckets.push((*b, c));
        }
        let last = self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        cumulative += last;
        buckets.push((f64::MAX, last));
        encoder.encode_histogram::<NoLabelSet>(
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            cumulative,
            &buckets,
            None,
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    stream: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    stream: String,
    component: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    stream: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabel {
    stream: String,
    feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    stream: String,
    partition: u32,
}

type GaugeF64 = Gauge<f64, AtomicU64>;

/// The four counters of one component.
#[derive(Clone)]
pub struct ComponentCounters {
    stream: String,
    name: String,
    received: Counter,
    sent: Counter,
    errors: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl ComponentCounters {
    pub fn received(&self, n: u64) {
        self.received.inc_by(n);
    }
    pub fn sent(&self, n: u64) {
        self.sent.inc_by(n);
    }
    pub fn errors(&self, n: u64) {
        self.errors.inc_by(n);
    }
    /// `n` items this component let go of, and why (`queue_full`,
    /// `invalid`, `duplicate`, `gave_up` …).
    pub fn dropped(&self, reason: &str, n: u64) {
        if n > 0 {
            self.dropped
                .get_or_create(&self.drop_label(reason))
                .inc_by(n);
        }
    }
    fn drop_label(&self, reason: &str) -> DropLabels {
        DropLabels {
            stream: self.stream.clone(),
            component: self.name.clone(),
            reason: reason.to_owned(),
        }
    }
    pub fn sent_total(&self) -> u64 {
        self.sent.get()
    }
    pub fn dropped_total(&self) -> u64 {
        // Families cannot be iterated; the reasons used are few and known.
        [
            "queue_full",
            "gave_up",
            "refused",
            "closed",
            "duplicate",
            "invalid",
        ]
        .iter()
        .map(|r| self.dropped.get_or_create(&self.drop_label(r)).get())
        .sum()
    }
}

/// Every metric family of the process, each labelled by stream, in one
/// registry: a process serving several streams exposes each family once
/// (OpenMetrics allows a family's name only once), one series per stream.
pub struct MetricFamilies {
    registry: Mutex<Registry>,
    events_in: Family<StreamLabel, Counter>,
    dead_letters: Family<ReasonLabel, Counter>,
    scored: Family<StreamLabel, Counter>,
    alerts: Family<StreamLabel, Counter>,
    backfill: Family<StreamLabel, Counter>,
    model_version: Family<StreamLabel, Gauge>,
    decision_latency: Family<StreamLabel, Registered>,
    lag: Family<PartitionLabel, Gauge>,
    component_received: Family<ComponentLabel, Counter>,
    component_sent: Family<ComponentLabel, Counter>,
    component_errors: Family<ComponentLabel, Counter>,
    component_dropped: Family<DropLabels, Counter>,
    up: Family<ComponentLabel, Gauge>,
    health_errors: Family<ComponentLabel, Gauge>,
    drift_wasserstein: Family<FeatureLabel, GaugeF64>,
    drift_psi: Family<FeatureLabel, GaugeF64>,
    drifted_share: Family<StreamLabel, GaugeF64>,
    alert_rate_ratio: Family<StreamLabel, GaugeF64>,
    drift_windows: Family<StreamLabel, Counter>,
    drift_detected: Family<StreamLabel, Counter>,
    webhook_sent: Family<StreamLabel, Counter>,
    webhook_failed: Family<StreamLabel, Counter>,
    webhook_dropped: Family<StreamLabel, Counter>,
}

impl Default for MetricFamilies {
    fn default() -> Self {
        MetricFamilies::new()
    }
}

impl MetricFamilies {
    pub fn new() -> MetricFamilies {
        let f = MetricFamilies {
            registry: Mutex::new(Registry::default()),
            events_in: Family::default(),
            dead_letters: Family::default(),
            scored: Family::default(),
            alerts: Family::default(),
            backfill: Family::default(),
            model_version: Family::default(),
            decision_latency: Family::default(),
            lag: Family::default(),
            component_received: Family::default(),
            component_sent: Family::default(),
            component_errors: Family::default(),
            component_dropped: Family::default(),
            up: Family::default(),
            health_errors: Family::default(),
            drift_wasserstein: Family::default(),
            drift_psi: Family::default(),
            drifted_share: Family::default(),
            alert_rate_ratio: Family::default(),
            drift_windows: Family::default(),
            drift_detected: Family::default(),
            webhook_sent: Family::default(),
            webhook_failed: Family::default(),
            webhook_dropped: Family::default(),
        };
        let mut r = Registry::with_prefix("radar");
        r.register(
            "events_in",
            "Events received by ingest.",
            f.events_in.clone(),
        );
        r.register(
            "dead_letters",
            "Events refused, by reason, wherever they were found.",
            f.dead_letters.clone(),
        );
        r.register("scored", "Events scored.", f.scored.clone());
        r.register("alerts", "Alerts raised (new event ids).", f.alerts.clone());
        r.register(
            "backfill_events",
            "Events scored as backfill (appended before alerts started): state, no alerts.",
            f.backfill.clone(),
        );
        r.register(
            "model_version",
            "Version of the model being served.",
            f.model_version.clone(),
        );
        r.register(
            "decision_latency_seconds",
            "From ingest to decision.",
            f.decision_latency.clone(),
        );
        r.register(
            "consumer_lag",
            "Records not yet scored, per partition.",
            f.lag.clone(),
        );
        r.register(
            "feature_drift_wasserstein",
            "Normed Wasserstein distance of each feature (and `score`) in the last drift window from the model's reference.",
            f.drift_wasserstein.clone(),
        );
        r.register(
            "feature_drift_psi",
            "Population stability index of each feature (and `score`) in the last drift window.",
            f.drift_psi.clone(),
        );
        r.register(
            "drifted_feature_share",
            "Share of features that drifted in the last window.",
            f.drifted_share.clone(),
        );
        r.register(
            "alert_rate_ratio",
            "Alert rate of the last drift window over the rate the model's reference expects.",
            f.alert_rate_ratio.clone(),
        );
        r.register(
            "drift_windows",
            "Drift windows finished.",
            f.drift_windows.clone(),
        );
        r.register(
            "drift_detected",
            "Drift windows in which the stream drifted.",
            f.drift_detected.clone(),
        );
        r.register(
            "webhook_sent",
            "Alerts delivered to the webhook.",
            f.webhook_sent.clone(),
        );
        r.register(
            "webhook_failed",
            "Webhook deliveries that failed after retries.",
            f.webhook_failed.clone(),
        );
        r.register(
            "webhook_dropped",
            "Alerts not queued for the webhook because its queue was full.",
            f.webhook_dropped.clone(),
        );
        r.register(
            "component_received",
            "Items a component took in.",
            f.component_received.clone(),
        );
        r.register(
            "component_sent",
            "Items a component passed on or stored.",
            f.component_sent.clone(),
        );
        r.register(
            "component_failures",
            "Operations of a component that failed (retried or not).",
            f.component_errors.clone(),
        );
        r.register(
            "component_dropped",
            "Items a component let go of, by reason.",
            f.component_dropped.clone(),
        );
        r.register(
            "component_up",
            "Whether a component (log, capture, scorer, sinks) is working: 1 ok, 0 degraded or failed.",
            f.up.clone(),
        );
        r.register(
            "component_errors_total",
            "Errors a component met (each failed retry counts).",
            f.health_errors.clone(),
        );
        *f.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        f
    }

    /// Sets the component gauges of `stream` from its health now.
    fn refresh_health(&self, stream: &str, health: &Health) {
        for (name, s) in health.snapshot() {
            let label = ComponentLabel {
                stream: stream.to_owned(),
                component: name,
            };
            self.up
                .get_or_create(&label)
                .set((s.state == State::Ok) as i64);
            self.health_errors
                .get_or_create(&label)
                .set(s.errors.min(i64::MAX as u64) as i64);
        }
    }

    /// The exposition of every stream, each with its component health as
    /// it is now.
    pub fn render(&self, streams: &[(&Metrics, &Health)]) -> String {
        for (metrics, health) in streams {
            self.refresh_health(&metrics.stream, health);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Every metric of one stream's pipeline: its series in the process's
/// [`MetricFamilies`].
pub struct Metrics {
    stream: String,
    families: Arc<MetricFamilies>,
    pub events_in: Counter,
    pub scored_total: Counter,
    pub alerts_total: Counter,
    /// Events scored as backfill: appended before alerts started.
    pub backfill_total: Counter,
    pub model_version: Gauge,
    pub decision_latency: Arc<Histogram>,
    /// The webhook's own series (older than the component counters, kept
    /// for dashboards that read them).
    pub webhook_sent: Counter,
    pub webhook_failed: Counter,
    pub webhook_dropped: Counter,
    /// The lag gauges' values, to sum them (a family cannot be read back).
    lag_by_partition: Mutex<std::collections::BTreeMap<u32, u64>>,
    /// Mirrors of the counters above for quick reads (reports, tests).
    pub scored: AtomicU64,
    pub alerts: AtomicU64,
}

impl Metrics {
    /// `stream`'s metrics in families of their own (one stream per
    /// process, tests).
    pub fn new(stream: &str) -> Metrics {
        Metrics::in_families(&Arc::new(MetricFamilies::new()), stream)
    }

    /// `stream`'s series in `families`, shared with the process's other
    /// streams.
    pub fn in_families(families: &Arc<MetricFamilies>, stream: &str) -> Metrics {
        let label = StreamLabel {
            stream: stream.to_owned(),
        };
        let f = families;
        let m = Metrics {
            stream: stream.to_owned(),
            families: families.clone(),
            events_in: f.events_in.get_or_create(&label).clone(),
            scored_total: f.scored.get_or_create(&label).clone(),
            alerts_total: f.alerts.get_or_create(&label).clone(),
            backfill_total: f.backfill.get_or_create(&label).clone(),
            model_version: f.model_version.get_or_create(&label).clone(),
            decision_latency: f.decision_latency.get_or_create(&label).0.clone(),
            webhook_sent: f.webhook_sent.get_or_create(&label).clone(),
            webhook_failed: f.webhook_failed.get_or_create(&label).clone(),
            webhook_dropped: f.webhook_dropped.get_or_create(&label).clone(),
            lag_by_partition: Mutex::new(Default::default()),
            scored: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
        };
        // Series that exist from the start, so dashboards see them before
        // the first window or refusal.
        for family in [&f.drifted_share, &f.alert_rate_ratio] {
            let _ = family.get_or_create(&label);
        }
        for family in [&f.drift_windows, &f.drift_detected] {
            let _ = family.get_or_create(&label);
        }
        for code in Reason::CODES {
            let _ = f.dead_letters.get_or_create(&ReasonLabel {
                stream: stream.to_owned(),
                reason: (*code).to_owned(),
            });
        }
        m
    }

    /// The stream these series are labelled with.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The families these series are part of.
    pub fn families(&self) -> &Arc<MetricFamilies> {
        &self.families
    }

    fn stream_label(&self) -> StreamLabel {
        StreamLabel {
            stream: self.stream.clone(),
        }
    }

    /// The counters of `component`.
    pub fn component(&self, component: &str) -> ComponentCounters {
        let label = ComponentLabel {
            stream: self.stream.clone(),
            component: component.to_owned(),
        };
        let f = &self.families;
        ComponentCounters {
            stream: self.stream.clone(),
            name: component.to_owned(),
            received: f.component_received.get_or_create(&label).clone(),
            sent: f.component_sent.get_or_create(&label).clone(),
            errors: f.component_errors.get_or_create(&label).clone(),
            dropped: f.component_dropped.clone(),
        }
    }

    /// A dead letter filed (by capture, which files each once), by its
    /// reason code.
    pub fn dead_letter_code(&self, reason: &str) {
        self.families
            .dead_letters
            .get_or_create(&ReasonLabel {
                stream: self.stream.clone(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Events scored so far.
    pub fn scored(&self) -> u64 {
        self.scored.load(Ordering::Relaxed)
    }

    /// New alerts so far.
    pub fn alerts(&self) -> u64 {
        self.alerts.load(Ordering::Relaxed)
    }

    pub fn add_scored(&self, n: u64) {
        self.scored_total.inc_by(n);
        self.scored.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_alerts(&self, n: u64) {
        self.alerts_total.inc_by(n);
        self.alerts.fetch_add(n, Ordering::Relaxed);
    }

    fn lag_label(&self, partition: u32) -> PartitionLabel {
        PartitionLabel {
            stream: self.stream.clone(),
            partition,
        }
    }

    /// Sets the lag of the partitions held here; partitions no longer in
    /// `lag` (held by another worker now) stop being reported.
    pub fn set_lag(&self, lag: &[(u32, u64)]) {
        if let Ok(mut total) = self.lag_by_partition.lock() {
            let gone: Vec<u32> = total
                .keys()
                .copied()
                .filter(|p| !lag.iter().any(|(q, _)| q == p))
                .collect();
            for partition in gone {
                total.remove(&partition);
                self.families.lag.remove(&self.lag_label(partition));
            }
            for &(partition, l) in lag {
                total.insert(partition, l);
            }
        }
        for &(partition, l) in lag {
            self.families
                .lag
                .get_or_create(&self.lag_label(partition))
                .set(l.min(i64::MAX as u64) as i64);
        }
    }

    /// Events not yet scored, over all partitions, as last set.
    pub fn lag_total(&self) -> u64 {
        self.lag_by_partition
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Sets the drift gauges from a finished window.
    pub fn set_drift(&self, w: &crate::drift::DriftWindow) {
        let f = &self.families;
        for c in w.features.iter().chain(&w.score) {
            let label = FeatureLabel {
                stream: self.stream.clone(),
                feature: c.column.clone(),
            };
            f.drift_wasserstein.get_or_create(&label).set(c.wasserstein);
            f.drift_psi.get_or_create(&label).set(c.psi);
        }
        let label = self.stream_label();
        f.drifted_share.get_or_create(&label).set(w.drifted_share);
        f.alert_rate_ratio
            .get_or_create(&label)
            .set(w.alert_rate_ratio());
        f.drift_windows.get_or_create(&label).inc();
        if w.drift {
            f.drift_detected.get_or_create(&label).inc();
        }
    }

    /// The exposition of the families (every stream in them), with this
    /// stream's component health as it is now.
    pub fn render(&self, health: &Health) -> String {
        self.families.render(&[(self, health)])
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_their_labels() {
        let m = Metrics::new("tx");
        m.add_scored(5);
        m.component("webhook").sent(2);
        m.component("webhook").dropped("queue_full", 3);
        m.set_lag(&[(0, 7), (1, 0)]);
        m.decision_latency.observe_micros(1500);
        let health = Health::default();
        health.degraded("capture", "storage down");
        let text = m.render(&health);
        for line in [
            "radar_scored_total{stream=\"tx\"} 5",
            "radar_component_sent_total{stream=\"tx\",component=\"webhook\"} 2",
            "radar_component_dropped_total{stream=\"tx\",component=\"webhook\",reason=\"queue_full\"} 3",
            "radar_consumer_lag{stream=\"tx\",partition=\"0\"} 7",
            "radar_component_up{stream=\"tx\",component=\"capture\"} 0",
            "radar_decision_latency_seconds_count{stream=\"tx\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(m.component("webhook").dropped_total(), 3);
    }

    #[test]
    fn streams_sharing_families_expose_each_family_once() {
        let families = Arc::new(MetricFamilies::new());
        let (a, b) = (
            Metrics::in_families(&families, "cards"),
            Metrics::in_families(&families, "logins"),
        );
        a.add_scored(3);
        b.add_scored(4);
        b.component("scorer").errors(1);
        a.set_lag(&[(0, 2)]);
        b.set_lag(&[(0, 5)]);
        let (ha, hb) = (Health::default(), Health::default());
        hb.degraded("scorer", "no model");
        let text = families.render(&[(&a, &ha), (&b, &hb)]);
        for line in [
            "radar_scored_total{stream=\"cards\"} 3",
            "radar_scored_total{stream=\"logins\"} 4",
            "radar_consumer_lag{stream=\"cards\",partition=\"0\"} 2",
            "radar_consumer_lag{stream=\"logins\",partition=\"0\"} 5",
            "radar_component_failures_total{stream=\"logins\",component=\"scorer\"} 1",
            "radar_component_up{stream=\"logins\",component=\"scorer\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let n = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), n, "a family declared twice:\n{text}");
        assert!(n >= 20, "{n} families");
    }
}
