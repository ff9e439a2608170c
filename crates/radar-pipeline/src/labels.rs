//! Labels in the pipeline: reading label files (JSON lines or CSV, the
//! fields of [`radar_core::labels::Label`]), and the point-in-time rule
//! every consumer of labels follows — as of time T, an event's label is the
//! latest one known at T (its `known_at` ≤ T); later labels do not exist
//! yet. Training, evaluation and label-derived features all ask
//! [`LabelBook::as_of`].

use std::collections::HashMap;
use std::path::Path;

use radar_core::labels::Label;

use crate::error::{PipelineError, Result};
use crate::events::{Body, EventFile};

/// Reads every label of `path`; a bad line is an error naming its line and
/// field.
pub fn read_file(path: &Path, default_source: &str, now: i64) -> Result<Vec<Label>> {
    let mut file = EventFile::open(path)?;
    let header = file.header().to_vec();
    let mut out = Vec::new();
    while let Some(event) = file.next_event()? {
        let label = match &event.body {
            Body::Json(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| Label::from_json(&v, default_source, now).map_err(|e| e.to_string())),
            Body::Cells { cells, .. } => {
                Label::from_cells(&header, cells, default_source, now).map_err(|e| e.to_string())
            }
        };
        out.push(label.map_err(|e| {
            PipelineError::input(format!("`{}`, line {}: {e}", path.display(), event.line))
        })?);
    }
    Ok(out)
}

/// Every label of a stream, by event, in the order they became known.
#[derive(Debug, Clone, Default)]
pub struct LabelBook {
    by_event: HashMap<String, Vec<Label>>,
}

impl LabelBook {
    pub fn new(labels: impl IntoIterator<Item = Label>) -> LabelBook {
        let mut by_event: HashMap<String, Vec<Label>> = HashMap::new();
        for l in labels {
            by_event.entry(l.event_id.clone()).or_default().push(l);
        }
        for v in by_event.values_mut() {
            // Stable: labels known at the same instant keep their order.
            v.sort_by_key(|l| l.known_at);
        }
        LabelBook { by_event }
    }

    pub fn len(&self) -> usize {
        self.by_event.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty()
    }

    /// The label of `event_id` as known at `at`: the latest known then.
    pub fn as_of(&self, event_id: &str, at: i64) -> Option<&Label> {
        self.by_event
            .get(event_id)?
            .iter()
            .take_while(|l| l.known_at <= at)
            .last()
    }

    /// Whether `event_id` was known to be fraud at `at`.
    pub fn fraud_as_of(&self, event_id: &str, at: i64) -> bool {
        self.as_of(event_id, at).is_some_and(|l| l.fraud)
    }

    /// Event ids with at least one label.
    pub fn event_ids(&self) -> impl Iterator<Item = &str> {
        self.by_event.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, fraud: bool, known_at: i64) -> Label {
        Label {
            event_id: id.into(),
            fraud,
            kind: None,
            source: "test".into(),
            known_at,
            author: None,
        }
    }

    #[test]
    fn as_of_sees_only_labels_known_by_then() {
        let book = LabelBook::new([
            label("a", true, 300),
            label("a", false, 100),
            label("b", true, 500),
        ]);
        assert!(book.as_of("a", 50).is_none());
        assert!(!book.fraud_as_of("a", 100), "first said genuine");
        assert!(book.fraud_as_of("a", 300), "then a chargeback");
        assert!(!book.fraud_as_of("b", 499));
        assert!(book.fraud_as_of("b", 500));
        assert!(!book.fraud_as_of("c", i64::MAX));
        assert_eq!(book.len(), 3);
    }
}

/// The id alerts and labels give an event: its own, else
/// `<stream>-<partition>-<offset>`.
pub fn event_id(
    stream: &str,
    record: &radar_core::decode::Record,
    partition: u32,
    offset: u64,
) -> String {
    record
        .id
        .as_deref()
        .map_or_else(|| format!("{stream}-{partition}-{offset}"), str::to_owned)
}

/// Capture's observer that indexes the ids of captured events (and keeps
/// capture's health, counts through `metrics` when given).
pub struct Indexing {
    pub stream: String,
    pub labels: LabelStore,
    pub health: std::sync::Arc<radar_core::health::Health>,
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl radar_lake::capture::Observer for Indexing {
    fn health(&self) -> &radar_core::health::Health {
        &self.health
    }
    fn received(&self, n: u64) {
        if let Some(m) = &self.metrics {
            m.component("capture").received(n);
        }
    }
    fn written(&self, rows: u64, dead_letters: u64) {
        if let Some(m) = &self.metrics {
            m.component("capture").sent(rows + dead_letters);
        }
    }
    fn dead_letter(&self, reason: &str) {
        if let Some(m) = &self.metrics {
            m.dead_letter_code(reason);
        }
    }
    fn captured(&self, rows: &[radar_lake::Row]) {
        let ids: Vec<(String, i64, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    event_id(&self.stream, &r.record, r.partition, r.offset),
                    r.record.ts,
                    r.record.entity.as_deref(),
                )
            })
            .collect();
        // The index serves label checks only: a failure is said, capture
        // goes on (labels of these events would be refused as unknown).
        if let Err(e) = self.labels.index_events(
            &self.stream,
            ids.iter().map(|(id, ts, e)| (id.as_str(), *ts, *e)),
        ) {
            tracing::warn!(error = %e, "indexing captured event ids failed");
        }
    }
}

/// What became of one label handed to [`LabelStore::record`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Recorded {
    /// Stored (durably) as label number `seq` of the stream.
    Accepted { seq: u64 },
    /// The same statement (event, verdict, source, known-at) was already
    /// recorded; nothing new stored.
    Duplicate { seq: u64 },
    /// No event of the stream has this id (as far as capture has seen).
    UnknownEvent,
}

/// The labels table and the index of known event ids (SQLite, beside the
/// registry; synchronous, so an acknowledged label survives a crash).
/// Labels are only ever added: re-labelling an event adds a statement, the
/// history stays. Each stream's labels are also written to the lake's
/// labels table ([`LabelStore::export`]), where training reads them.
#[derive(Clone)]
pub struct LabelStore {
    db: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
}

const LABELS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    event_id TEXT NOT NULL,
    fraud INTEGER NOT NULL,
    kind TEXT,
    source TEXT NOT NULL,
    author TEXT,
    known_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (stream, event_id, fraud, source, known_at)
);
CREATE INDEX IF NOT EXISTS labels_event ON labels(stream, event_id);
CREATE TABLE IF NOT EXISTS events (
    stream TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    entity TEXT,
    PRIMARY KEY (stream, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exported (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"#;

fn db_err(e: rusqlite::Error) -> PipelineError {
    PipelineError::Registry(radar_registry::RegistryError::Db(e))
}

impl LabelStore {
    pub fn open(path: &Path) -> Result<LabelStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(PipelineError::io(dir.display()))?;
        }
        let conn = rusqlite::Connection::open(path).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.execute_batch(LABELS_SCHEMA).map_err(db_err)?;
        Ok(LabelStore {
            db: std::sync::Arc::new(std::sync::Mutex::new(conn)),
        })
    }

    fn db(&self) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        self.db
            .lock()
            .map_err(|_| PipelineError::Internal("the labels database lock is poisoned".into()))
    }

    /// Remembers the ids of events the lake holds (capture calls this), so
    /// that a label naming an unknown event can be told apart.
    pub fn index_events<'a>(
        &self,
        stream: &str,
        events: impl Iterator<Item = (&'a str, i64, Option<&'a str>)>,
    ) -> Result<()> {
        let mut db = self.db()?;
        let tx = db.transaction().map_err(db_err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (stream, event_id, ts, entity) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db_err)?;
            for (id, ts, entity) in events {
                st.execute(rusqlite::params![stream, id, ts, entity])
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Records labels of `stream` in one transaction: each is accepted, a
    /// duplicate of a statement already made, or about an unknown event
    /// (not stored). Returns once what was accepted is durable.
    pub fn record(&self, stream: &str, labels: &[Label]) -> Result<Vec<Recorded>> {
        let now = radar_core::time::now_micros();
        let mut db = self.db()?;
        let tx = db.transaction().map_err(db_err)?;
        let mut out = Vec::with_capacity(labels.len());
        {
            let mut known = tx
                .prepare_cached("SELECT 1 FROM events WHERE stream = ?1 AND event_id = ?2")
                .map_err(db_err)?;
            let mut same = tx
                .prepare_cached(
                    "SELECT seq FROM labels WHERE stream = ?1 AND event_id = ?2 AND fraud = ?3 AND source = ?4 AND known_at = ?5",
                )
                .map_err(db_err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO labels (stream, event_id, fraud, kind, source, author, known_at, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(db_err)?;
            for l in labels {
                if !known
                    .exists(rusqlite::params![stream, l.event_id])
                    .map_err(db_err)?
                {
                    out.push(Recorded::UnknownEvent);
                    continue;
                }
                let existing: Option<i64> = same
                    .query_row(
                        rusqlite::params![stream, l.event_id, l.fraud, l.source, l.known_at],
                        |r| r.get(0),
                    )
                    .ok();
                if let Some(seq) = existing {
                    out.push(Recorded::Duplicate { seq: seq as u64 });
                    continue;
                }
                insert
                    .execute(rusqlite::params![
                        stream, l.event_id, l.fraud, l.kind, l.source, l.author, l.known_at, now
                    ])
                    .map_err(db_err)?;
                out.push(Recorded::Accepted {
                    seq: tx.last_insert_rowid() as u64,
                });
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Labels of `stream` recorded after `after_seq` (at most `limit`), in
    /// order; for one event when `event_id` is given (its history).
    pub fn list(
        &self,
        stream: &str,
        event_id: Option<&str>,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<radar_lake::LabelRow>> {
        let db = self.db()?;
        let mut st = db
            .prepare_cached(
                "SELECT seq, event_id, fraud, kind, source, author, known_at, recorded_at FROM labels
                 WHERE stream = ?1 AND seq > ?2 AND (?3 IS NULL OR event_id = ?3) ORDER BY seq LIMIT ?4",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(
                rusqlite::params![
                    stream,
                    after_seq as i64,
                    event_id,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(radar_lake::LabelRow {
                        seq: r.get::<_, i64>(0)? as u64,
                        recorded_at: r.get(7)?,
                        label: Label {
                            event_id: r.get(1)?,
                            fraud: r.get(2)?,
                            kind: r.get(3)?,
                            source: r.get(4)?,
                            author: r.get(5)?,
                            known_at: r.get(6)?,
                        },
                    })
                },
            )
            .map_err(db_err)?;
        rows.collect::<std::result::Result<_, _>>().map_err(db_err)
    }

    /// Every label of `stream`.
    pub fn book(&self, stream: &str) -> Result<LabelBook> {
        Ok(LabelBook::new(
            self.list(stream, None, 0, usize::MAX)?
                .into_iter()
                .map(|r| r.label),
        ))
    }

    /// Writes the labels not yet in the lake to its labels table, then
    /// remembers how far it got; returns how many were written.
    pub fn export(
        &self,
        lake: &radar_lake::Lake,
        rt: &tokio::runtime::Handle,
        stream: &str,
    ) -> Result<usize> {
        let done: u64 = self
            .db()?
            .query_row(
                "SELECT seq FROM exported WHERE stream = ?1",
                [stream],
                |r| r.get::<_, i64>(0),
            )
            .map_or(0, |v| v as u64);
        let rows = self.list(stream, None, done, 100_000)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        rt.block_on(lake.write_labels(stream, &rows))?;
        self.db()?
            .execute(
                "INSERT INTO exported (stream, seq) VALUES (?1, ?2) ON CONFLICT(stream) DO UPDATE SET seq = ?2",
                rusqlite::params![stream, last as i64],
            )
            .map_err(db_err)?;
        Ok(rows.len())
    }
}
