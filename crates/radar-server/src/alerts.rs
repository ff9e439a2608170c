//! Alerts and where they go: the alerts table (idempotent by event id),
//! JSON lines on stdout, and a webhook (bounded queue, retries with
//! backoff; a slow webhook never stalls scoring).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use radar_core::backoff::Backoff;
use radar_core::health::Health;

use crate::metrics::Metrics;

/// A feature's share of an alert's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub struct Alert {
    pub event_id: String,
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

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alerts database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("alerts database lock poisoned")]
    Poisoned,
}

impl AlertError {
    /// A full disk, a busy or locked database, an I/O error: a retry may
    /// pass.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            AlertError::Db(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::DiskFull
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::SystemIoFailure
                    | C::CannotOpen
            ),
            _ => false,
        }
    }
}

impl radar_core::backoff::Transient for AlertError {
    fn is_transient(&self) -> bool {
        AlertError::is_transient(self)
    }
}

/// Filters of an alerts query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Event time from (RFC 3339).
    pub since: Option<String>,
    pub entity: Option<String>,
    pub min_score: Option<f64>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// The alerts table.
#[derive(Clone)]
pub struct AlertStore {
    db: Arc<Mutex<Connection>>,
}

impl AlertStore {
    pub fn open(path: &Path) -> Result<AlertStore, AlertError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS alerts (
                event_id TEXT PRIMARY KEY,
                stream TEXT NOT NULL,
                entity TEXT,
                score REAL NOT NULL,
                event_time INTEGER NOT NULL,
                decided_at INTEGER NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS alerts_time ON alerts(event_time);",
        )?;
        Ok(AlertStore {
            db: Arc::new(Mutex::new(conn)),
        })
    }

    /// Inserts alerts not seen before (by event id); returns those.
    pub fn insert(&self, alerts: Vec<Alert>) -> Result<Vec<Alert>, AlertError> {
        let mut db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let tx = db.transaction()?;
        let mut fresh = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (event_id, stream, entity, score, event_time, decided_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for a in alerts {
                let body = serde_json::to_string(&a).unwrap_or_default();
                let n = st.execute(params![
                    a.event_id,
                    a.stream,
                    a.entity,
                    a.score,
                    a.event_time_us,
                    a.decided_at_us,
                    body
                ])?;
                if n == 1 {
                    fresh.push(a);
                }
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    pub fn query(&self, q: &AlertQuery, since_us: Option<i64>) -> Result<Vec<Alert>, AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let mut st = db.prepare_cached(
            "SELECT body FROM alerts
             WHERE (?1 IS NULL OR event_time >= ?1) AND (?2 IS NULL OR entity = ?2) AND (?3 IS NULL OR score >= ?3)
             ORDER BY event_time DESC, event_id LIMIT ?4 OFFSET ?5",
        )?;
        let rows = st.query_map(
            params![
                since_us,
                q.entity,
                q.min_score,
                q.limit.unwrap_or(100).min(10_000) as i64,
                q.offset.unwrap_or(0) as i64
            ],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(a) = serde_json::from_str(&body?) {
                out.push(a);
            }
        }
        Ok(out)
    }

    pub fn count(&self) -> Result<u64, AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        Ok(db.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Every alerted event id (for reports).
    pub fn event_ids(&self) -> Result<Vec<String>, AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let mut st = db.prepare("SELECT event_id FROM alerts")?;
        let ids = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }
}

/// The health component of the webhook sink.
pub const WEBHOOK: &str = "webhook";

/// A webhook sink.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// Alerts waiting for delivery at most; more are dropped and counted.
    pub queue: usize,
    /// How long one alert is retried before it counts as failed.
    pub retry_for: Duration,
}

/// Where alerts go.
pub struct Sinks {
    pub store: AlertStore,
    pub stdout: bool,
    webhook: Option<mpsc::Sender<Alert>>,
    metrics: Arc<Metrics>,
}

impl Sinks {
    /// `webhook`: where and how to POST each new alert, from a queue
    /// drained by a task on `rt`.
    pub fn new(
        store: AlertStore,
        stdout: bool,
        webhook: Option<Webhook>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        rt: &tokio::runtime::Handle,
    ) -> Sinks {
        let webhook = webhook.map(|w| {
            let (tx, rx) = mpsc::channel(w.queue.max(1));
            rt.spawn(deliver(w.url, rx, metrics.clone(), health, w.retry_for));
            tx
        });
        Sinks {
            store,
            stdout,
            webhook,
            metrics,
        }
    }

    /// Records alerts; those not seen before go on to stdout and the webhook.
    pub fn emit(&self, alerts: Vec<Alert>) -> Result<usize, AlertError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let fresh = self.store.insert(alerts)?;
        self.metrics
            .alerts
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
        for a in &fresh {
            if self.stdout {
                println!("{}", serde_json::to_string(a).unwrap_or_default());
            }
            if let Some(tx) = &self.webhook
                && tx.try_send(a.clone()).is_err()
            {
                self.metrics.webhook_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(fresh.len())
    }
}

/// Delivers queued alerts one by one, in order. A failure a retry can fix
/// (a 5xx, 408, 429, a time-out, a refused connection) is retried with
/// backoff for up to `retry_for`; a 4xx is not retried. While the webhook
/// fails, alerts wait in the bounded queue (the scorer drops and counts
/// what does not fit, never waits) and `health` says `webhook` is degraded.
async fn deliver(
    url: String,
    mut rx: mpsc::Receiver<Alert>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    retry_for: Duration,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build();
    let Ok(client) = client else {
        health.failed(WEBHOOK, "cannot build an HTTP client");
        return;
    };
    health.ok(WEBHOOK);
    let mut failing = false;
    while let Some(alert) = rx.recv().await {
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
        if sent && failing {
            health.ok(WEBHOOK);
            failing = false;
        }
        let counter = if sent {
            &metrics.webhook_sent
        } else {
            &metrics.webhook_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
