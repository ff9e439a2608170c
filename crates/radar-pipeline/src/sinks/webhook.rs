//! A webhook: each new alert POSTed as JSON, from a bounded queue drained
//! by a task, in order. A failure a retry can fix (a 5xx, 408, 429, a
//! time-out, a refused connection) is retried with backoff for up to
//! `retry_for`; any other 4xx is not. While the webhook fails, alerts wait
//! in the queue (what does not fit is dropped and counted: the scorer never
//! waits) and the `webhook` component says it is degraded.

use std::sync::Arc;
use std::time::Duration;

use radar_core::backoff::Backoff;
use radar_core::health::Health;
use tokio::sync::mpsc;

use super::{Alert, AlertError, AlertSink, Notice, Outgoing};
use crate::error::{PipelineError, Result};
use crate::metrics::{ComponentCounters, Metrics};

/// The health component and metrics name of the webhook sink.
pub const WEBHOOK: &str = "webhook";

/// Where and how to POST alerts.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Alerts waiting for delivery at most; more are dropped and counted.
    pub queue: usize,
    /// How long one alert is retried before it counts as failed.
    pub retry_for: Duration,
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<()> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| PipelineError::input(format!("webhook URL `{}`: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PipelineError::input(format!(
                "webhook URL `{}`: expected http:// or https://",
                self.url
            )));
        }
        if self.queue == 0 {
            return Err(PipelineError::input(
                "the webhook queue must hold at least 1 alert",
            ));
        }
        Ok(())
    }

    /// Starts the delivery task on `rt`.
    pub fn build(
        self,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        rt: &tokio::runtime::Handle,
    ) -> Result<Webhook> {
        self.validate()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| PipelineError::Internal(format!("cannot build an HTTP client: {e}")))?;
        let (tx, rx) = mpsc::channel(self.queue);
        let counters = metrics.component(WEBHOOK);
        rt.spawn(deliver(
            client,
            self.url,
            rx,
            counters.clone(),
            metrics.clone(),
            health,
            self.retry_for,
        ));
        Ok(Webhook {
            tx,
            counters,
            metrics,
        })
    }
}

pub struct Webhook {
    tx: mpsc::Sender<Outgoing>,
    counters: ComponentCounters,
    metrics: Arc<Metrics>,
}

impl AlertSink for Webhook {
    fn name(&self) -> &'static str {
        WEBHOOK
    }

    fn deliver(&self, alerts: &[Alert]) -> std::result::Result<(), AlertError> {
        self.counters.received(alerts.len() as u64);
        for a in alerts {
            if self.tx.try_send(Outgoing::Alert(a.clone())).is_err() {
                self.counters.dropped("queue_full", 1);
                self.metrics.webhook_dropped.inc();
            }
        }
        Ok(())
    }

    fn notify(&self, notice: &Notice) {
        // Counted by the component, not in the alert series
        // (`radar_webhook_dropped_total` counts alerts).
        self.counters.received(1);
        if self.tx.try_send(Outgoing::Notice(notice.clone())).is_err() {
            self.counters.dropped("queue_full", 1);
        }
    }
}

async fn deliver(
    client: reqwest::Client,
    url: String,
    mut rx: mpsc::Receiver<Outgoing>,
    counters: ComponentCounters,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    retry_for: Duration,
) {
    health.ok(WEBHOOK);
    let mut failing = false;
    while let Some(alert) = rx.recv().await {
        // The alert series count alerts; notices only the component's.
        let is_alert = matches!(alert, Outgoing::Alert(_));
        let started = std::time::Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let sent = loop {
            let reason = match client.post(&url).json(&alert).send().await {
                Ok(r) if r.status().is_success() => break true,
                Ok(r)
                    if r.status().is_client_error()
                        && !matches!(r.status().as_u16(), 408 | 429) =>
                {
                    health.degraded(
                        WEBHOOK,
                        format!(
                            "the webhook refused an alert with {} (not retried)",
                            r.status()
                        ),
                    );
                    failing = true;
                    break false;
                }
                Ok(r) => format!("the webhook answered {}", r.status()),
                Err(e) if e.is_timeout() => "the webhook timed out".to_owned(),
                Err(e) if e.is_connect() => "the webhook is unreachable".to_owned(),
                Err(_) => "the webhook request failed".to_owned(),
            };
            failing = true;
            counters.errors(1);
            if started.elapsed() >= retry_for {
                health.degraded(
                    WEBHOOK,
                    format!("{reason}; gave up on an alert after {retry_for:?}"),
                );
                break false;
            }
            health.degraded(WEBHOOK, format!("{reason}; retrying"));
            tokio::time::sleep(backoff.delay()).await;
        };
        if sent {
            counters.sent(1);
            if is_alert {
                metrics.webhook_sent.inc();
            }
            if failing {
                health.ok(WEBHOOK);
                failing = false;
            }
        } else {
            counters.dropped("gave_up", 1);
            if is_alert {
                metrics.webhook_failed.inc();
            }
        }
    }
}
