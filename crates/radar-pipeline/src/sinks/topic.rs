//! Alerts (and notices) appended to a topic of the event log, keyed by
//! log position, as JSON: a Kafka topic when the log is Kafka (downstream consumers read
//! alerts like any event). A thread drains a bounded queue, so a broker
//! that is away never holds the scorer up; appends are retried with
//! backoff while it is away, and what does not fit the queue is dropped
//! and counted. At-least-once: consumers deduplicate by the key (an
//! alert's log position).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use radar_core::backoff::Backoff;
use radar_core::health::Health;
use radar_log::{EventLog, Record};

use super::{Alert, AlertError, AlertSink, Notice, Outgoing};
use crate::error::{PipelineError, Result};
use crate::metrics::{ComponentCounters, Metrics};

/// The health component and metrics name of the topic sink.
pub const TOPIC: &str = "alerts_topic";

#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub topic: String,
    pub partitions: u32,
    /// Alerts waiting at most; more are dropped and counted.
    pub queue: usize,
}

impl TopicConfig {
    /// Checks the config and creates the topic.
    pub fn build(
        self,
        log: Arc<dyn EventLog>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<TopicSink> {
        if self.queue == 0 {
            return Err(PipelineError::input(
                "the alerts topic queue must hold at least 1 alert",
            ));
        }
        log.create_topic(&self.topic, self.partitions.max(1))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(self.queue);
        let counters = metrics.component(TOPIC);
        let c = counters.clone();
        std::thread::Builder::new()
            .name("alerts-topic".into())
            .spawn(move || drain(log.as_ref(), &self.topic, rx, &c, &health))
            .map_err(|e| PipelineError::Internal(format!("cannot start a thread: {e}")))?;
        Ok(TopicSink { tx, counters })
    }
}

pub struct TopicSink {
    tx: SyncSender<Outgoing>,
    counters: ComponentCounters,
}

impl AlertSink for TopicSink {
    fn name(&self) -> &'static str {
        TOPIC
    }

    fn deliver(&self, alerts: &[Alert]) -> std::result::Result<(), AlertError> {
        self.counters.received(alerts.len() as u64);
        for a in alerts {
            match self.tx.try_send(Outgoing::Alert(a.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.counters.dropped("queue_full", 1),
                Err(TrySendError::Disconnected(_)) => self.counters.dropped("closed", 1),
            }
        }
        Ok(())
    }

    fn notify(&self, notice: &Notice) {
        self.counters.received(1);
        if self.tx.try_send(Outgoing::Notice(notice.clone())).is_err() {
            self.counters.dropped("queue_full", 1);
        }
    }
}

/// Appends what the queue holds, in batches, until the sink is dropped.
fn drain(
    log: &dyn EventLog,
    topic: &str,
    rx: Receiver<Outgoing>,
    counters: &ComponentCounters,
    health: &Health,
) {
    health.ok(TOPIC);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let now = radar_core::time::now_micros();
        let records: Vec<Record> = batch
            .iter()
            .map(|a| {
                Record::new(
                    Some(a.key().as_bytes()),
                    serde_json::to_vec(a).unwrap_or_default(),
                    now,
                )
            })
            .collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            match log.append(topic, &records) {
                Ok(_) => {
                    counters.sent(records.len() as u64);
                    health.ok(TOPIC);
                    break;
                }
                Err(e) => {
                    counters.errors(1);
                    health.degraded(TOPIC, format!("appending alerts to `{topic}`: {e}"));
                    std::thread::sleep(backoff.delay());
                }
            }
        }
    }
}
