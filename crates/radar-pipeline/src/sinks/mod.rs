//! Where alerts go. The alerts table is the ledger: it keeps each log position
//! once and says which alerts are new; every other sink gets only those,
//! in decision order. One folder per sink, each with its config checked
//! before it is built:
//!
//! - [`table`]: the alerts table (SQLite), which the scorer must be able
//!   to write before it moves on; it keeps each log position once;
//! - [`stdout`]: JSON lines on standard output;
//! - [`webhook`]: an HTTP POST per alert from a bounded queue, retried
//!   when a retry can help;
//! - [`topic`]: a topic of the event log (a Kafka topic when the log is
//!   Kafka), from a bounded queue.
//!
//! Sinks other than the table never make the scorer wait: they queue,
//! and what does not fit is dropped and counted.
//!
//! Besides alerts on events, the sinks other than the table carry
//! [`Notice`]s: what a person must hear about the models (a drifted
//! window, a candidate that failed the gate, a rejected challenger, a
//! rolled-back champion). A receiver tells them apart by the `notice`
//! field, which alerts do not have.

pub mod stdout;
pub mod table;
pub mod topic;
pub mod webhook;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
pub use table::{AlertError, AlertQuery, AlertStore};

/// A feature's share of an alert's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contribution {
    pub feature: String,
    pub share: f64,
    pub value: f64,
    /// `above` or `below` the data, when the detector can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// How a contribution's direction is written.
pub fn direction_name(above: Option<bool>) -> Option<String> {
    above.map(|a| if a { "above" } else { "below" }.to_owned())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub event_id: String,
    /// Where the event sits in the log (`stream/partition/offset`): the
    /// alert's identity. Not the event id, which a client chooses: reusing
    /// a harmless event's id must not silence an alert on another.
    #[serde(default)]
    pub position: String,
    pub stream: String,
    pub entity: Option<String>,
    pub score: f64,
    pub threshold: f64,
    pub model: String,
    pub model_version: i64,
    /// Event time (RFC 3339).
    pub event_time: String,
    pub event_time_us: i64,
    /// When the decision was made (UTC µs).
    pub decided_at_us: i64,
    /// From ingest to decision.
    pub latency_ms: f64,
    pub contributions: Vec<Contribution>,
}

/// Something about the models a person must hear of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `drift`, `gate_failed`, `rejected` or `rolled_back`.
    pub notice: String,
    pub stream: String,
    pub model: String,
    pub version: i64,
    pub message: String,
    pub figures: serde_json::Value,
    /// When it happened (RFC 3339).
    pub at: String,
}

impl Notice {
    pub fn new(
        notice: &str,
        stream: &str,
        model: &str,
        version: i64,
        message: String,
        figures: serde_json::Value,
    ) -> Notice {
        Notice {
            notice: notice.to_owned(),
            stream: stream.to_owned(),
            model: model.to_owned(),
            version,
            message,
            figures,
            at: radar_core::time::format_rfc3339(radar_core::time::now_micros()),
        }
    }
}

/// What a queued sink sends on: written as the alert or the notice itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outgoing {
    Alert(Alert),
    Notice(Notice),
}

impl Outgoing {
    /// The key a topic keeps it under: an alert's log position; a
    /// notice's kind and model.
    pub fn key(&self) -> String {
        match self {
            Outgoing::Alert(a) => a.position.clone(),
            Outgoing::Notice(n) => format!("notice:{}:{}", n.notice, n.model),
        }
    }
}

/// A destination for alerts.
pub trait AlertSink: Send + Sync {
    /// The component name in `/metrics` and `/readyz`.
    fn name(&self) -> &'static str;

    /// Takes new alerts, in decision order. Returns once they are durable
    /// (the table) or queued (the others, which never wait on a network
    /// and count what they drop). An error is returned only by a sink
    /// that must hold every alert before the scorer moves on.
    fn deliver(&self, alerts: &[Alert]) -> Result<(), AlertError>;

    /// Takes a notice; like alerts, it never waits on a network. The
    /// table keeps notices elsewhere (drift windows, the audit trail).
    fn notify(&self, _notice: &Notice) {}
}

/// The ledger and the sinks after it.
pub struct Sinks {
    pub ledger: AlertStore,
    others: Vec<Box<dyn AlertSink>>,
    metrics: Arc<Metrics>,
}

impl Sinks {
    pub fn new(
        ledger: AlertStore,
        others: Vec<Box<dyn AlertSink>>,
        metrics: Arc<Metrics>,
    ) -> Sinks {
        Sinks {
            ledger,
            others,
            metrics,
        }
    }

    /// Records alerts in the ledger; those not seen before go on to every
    /// other sink. Returns how many were new.
    pub fn emit(&self, alerts: &[Alert]) -> Result<usize, AlertError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let fresh = self.ledger.insert(alerts)?;
        let table = self.metrics.component(self.ledger.name());
        table.received(alerts.len() as u64);
        table.sent(fresh.len() as u64);
        table.dropped("duplicate", (alerts.len() - fresh.len()) as u64);
        self.metrics.add_alerts(fresh.len() as u64);
        if fresh.is_empty() {
            return Ok(0);
        }
        for sink in &self.others {
            // Only the ledger may hold the scorer up; the others count
            // their own failures.
            if let Err(e) = sink.deliver(&fresh) {
                tracing::warn!(sink = sink.name(), error = %e, "an alert sink failed");
                self.metrics.component(sink.name()).errors(1);
            }
        }
        Ok(fresh.len())
    }

    /// Passes a notice to every sink other than the table.
    pub fn notify(&self, notice: &Notice) {
        tracing::warn!(notice = %notice.notice, model = %notice.model, version = notice.version, message = %notice.message, "notice");
        for sink in &self.others {
            sink.notify(notice);
        }
    }
}
