//! The alerts table (SQLite, WAL): the ledger of alerts. It keeps each
//! event id once, so replays after a crash never duplicate an alert, and
//! it decides which alerts are new for the other sinks.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use radar_core::error::{Classify, ErrorKind};
use rusqlite::{Connection, params};
use serde::Deserialize;

use super::{Alert, AlertSink};

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alerts database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("alerts database lock poisoned")]
    Poisoned,
    #[error("alerts database `{path}`: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for AlertError {
    /// A full disk, a busy or locked database, an I/O error: a retry may
    /// pass.
    fn kind(&self) -> ErrorKind {
        match self {
            AlertError::Db(e) => radar_registry::sqlite_kind(e),
            AlertError::Poisoned => ErrorKind::Internal,
            AlertError::Open { .. } => ErrorKind::Unavailable,
        }
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

/// The alerts table. Cheap to clone.
#[derive(Clone)]
pub struct AlertStore {
    db: Arc<Mutex<Connection>>,
}

impl AlertStore {
    pub fn open(path: &Path) -> Result<AlertStore, AlertError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| AlertError::Open {
                path: path.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Tables made when alerts were keyed by event id move aside, and
        // their rows come back keyed by that id.
        let keyed_by_id = conn
            .prepare(
                "SELECT 1 FROM pragma_table_info('alerts') WHERE name = 'event_id' AND pk = 1",
            )?
            .exists([])?;
        if keyed_by_id {
            conn.execute_batch(
                "ALTER TABLE alerts RENAME TO alerts_by_id; DROP INDEX IF EXISTS alerts_time;",
            )?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS alerts (
                position TEXT PRIMARY KEY,
                event_id TEXT NOT NULL,
                stream TEXT NOT NULL,
                entity TEXT,
                score REAL NOT NULL,
                event_time INTEGER NOT NULL,
                decided_at INTEGER NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS alerts_time ON alerts(event_time);
            CREATE INDEX IF NOT EXISTS alerts_event ON alerts(event_id);
            CREATE TABLE IF NOT EXISTS shadow_alerts (
                event_id TEXT NOT NULL,
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                score REAL NOT NULL,
                event_time INTEGER NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (event_id, model, version)
            );
            CREATE TABLE IF NOT EXISTS drift_windows (
                id INTEGER PRIMARY KEY,
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                ended_at TEXT NOT NULL,
                drift INTEGER NOT NULL,
                body TEXT NOT NULL
            );",
        )?;
        if keyed_by_id {
            conn.execute_batch(
                "BEGIN;
                 INSERT OR IGNORE INTO alerts (position, event_id, stream, entity, score, event_time, decided_at, body)
                     SELECT 'id:' || event_id, event_id, stream, entity, score, event_time, decided_at, body FROM alerts_by_id;
                 DROP TABLE alerts_by_id;
                 COMMIT;",
            )?;
        }
        Ok(AlertStore {
            db: Arc::new(Mutex::new(conn)),
        })
    }

    /// Stores a challenger's would-be alerts, apart from the alerts (once
    /// per event and version); returns how many were new.
    pub fn insert_shadow(&self, alerts: &[Alert]) -> Result<usize, AlertError> {
        let mut db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let tx = db.transaction()?;
        let mut fresh = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO shadow_alerts (event_id, model, version, score, event_time, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for a in alerts {
                let body = serde_json::to_string(a).unwrap_or_default();
                fresh += st.execute(params![
                    a.event_id,
                    a.model,
                    a.model_version,
                    a.score,
                    a.event_time_us,
                    body
                ])?;
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Keeps a finished drift window (the API serves recent ones from
    /// memory; this is the record that outlives the process).
    pub fn insert_drift(&self, w: &crate::drift::DriftWindow) -> Result<(), AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        db.execute(
            "INSERT INTO drift_windows (model, version, ended_at, drift, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                w.model,
                w.version,
                w.ended_at,
                w.drift as i64,
                serde_json::to_string(w).unwrap_or_default()
            ],
        )?;
        Ok(())
    }

    /// Stored drift windows, oldest first (the last `limit`).
    pub fn drift_windows(&self, limit: usize) -> Result<Vec<serde_json::Value>, AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let mut st = db.prepare(
            "SELECT body FROM (SELECT id, body FROM drift_windows ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        let rows = st.query_map([limit.min(i64::MAX as usize) as i64], |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for body in rows {
            out.push(serde_json::from_str(&body?).unwrap_or(serde_json::Value::Null));
        }
        Ok(out)
    }

    /// Would-be alerts of `model` v`version` stored so far.
    pub fn shadow_count(&self, model: &str, version: i64) -> Result<u64, AlertError> {
        let db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        Ok(db.query_row(
            "SELECT COUNT(*) FROM shadow_alerts WHERE model = ?1 AND version = ?2",
            params![model, version],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Inserts alerts not seen before (by event id); returns those.
    pub fn insert(&self, alerts: &[Alert]) -> Result<Vec<Alert>, AlertError> {
        let mut db = self.db.lock().map_err(|_| AlertError::Poisoned)?;
        let tx = db.transaction()?;
        let mut fresh = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (position, event_id, stream, entity, score, event_time, decided_at, body) VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for a in alerts {
                let body = serde_json::to_string(a).unwrap_or_default();
                // Alerts before positions were kept (none are made now)
                // fall back to their id.
                let position = if a.position.is_empty() {
                    format!("id:{}", a.event_id)
                } else {
                    a.position.clone()
                };
                let n = st.execute(params![
                    a.event_id,
                    a.stream,
                    a.entity,
                    a.score,
                    a.event_time_us,
                    a.decided_at_us,
                    body,
                    position
                ])?;
                if n == 1 {
                    fresh.push(a.clone());
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
                q.offset.unwrap_or(0).min(i64::MAX as usize) as i64
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

impl AlertSink for AlertStore {
    fn name(&self) -> &'static str {
        "alerts_table"
    }

    fn deliver(&self, alerts: &[Alert]) -> Result<(), AlertError> {
        self.insert(alerts).map(|_| ())
    }
}
