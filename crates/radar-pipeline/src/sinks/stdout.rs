//! Alerts (and notices) as JSON lines on standard output.

use std::io::Write;
use std::sync::Arc;

use super::{Alert, AlertError, AlertSink, Notice};
use crate::metrics::Metrics;

pub struct Stdout {
    metrics: Arc<Metrics>,
}

impl Stdout {
    pub fn new(metrics: Arc<Metrics>) -> Stdout {
        Stdout { metrics }
    }
}

impl AlertSink for Stdout {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn deliver(&self, alerts: &[Alert]) -> Result<(), AlertError> {
        let counters = self.metrics.component(self.name());
        counters.received(alerts.len() as u64);
        let mut out = std::io::stdout().lock();
        for a in alerts {
            let line = serde_json::to_string(a).unwrap_or_default();
            // A closed stdout (`radar up | head`) drops, it does not stop
            // scoring.
            if writeln!(out, "{line}").is_ok() {
                counters.sent(1);
            } else {
                counters.dropped("closed", 1);
            }
        }
        let _ = out.flush();
        Ok(())
    }

    fn notify(&self, notice: &Notice) {
        let line = serde_json::to_string(notice).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}
