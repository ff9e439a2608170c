//! Labels in the pipeline: reading label files (JSON lines or CSV, the
//! fields of [`radar_core::labels::Label`]), and the point-in-time rule
//! every consumer of labels follows — as of time T, an event's label is the
//! latest one known at T (its `known_at` ≤ T); later labels do not exist
//! yet. Training, evaluation and label-derived features all ask
//! [`LabelBook::as_of`].

use std::collections::HashMap;
use std::path::Path;

use radar_core::labels::Label;
use radar_registry::meta::{Backend, MetaDb, MetaError, Migration, Target, Value};
use radar_registry::meta_params;

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

    /// What the labels tell `label_rate` features about the rows whose
    /// event ids are `ids`, sorted by when it became known: a row turns
    /// fraud, or (re-labelled genuine) stops being fraud. Labels of events
    /// not among the rows move nothing.
    pub fn feeds<'a>(
        &self,
        ids: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Vec<radar_core::features::LabelFeed> {
        use radar_core::features::{LabelChange, LabelFeed};
        let mut out = Vec::new();
        for (row, id) in ids.into_iter().enumerate() {
            let Some(labels) = id.and_then(|id| self.by_event.get(id)) else {
                continue;
            };
            let mut fraud_since: Option<i64> = None;
            for l in labels {
                match (l.fraud, fraud_since) {
                    (true, None) => {
                        fraud_since = Some(l.known_at);
                        out.push(LabelFeed {
                            row,
                            at: l.known_at,
                            change: LabelChange::Fraud,
                        });
                    }
                    (false, Some(since)) => {
                        fraud_since = None;
                        out.push(LabelFeed {
                            row,
                            at: l.known_at,
                            change: LabelChange::Retracted { since },
                        });
                    }
                    // Saying again what is known changes nothing.
                    _ => {}
                }
            }
        }
        out.sort_by_key(|f| f.at);
        out
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

    #[test]
    fn moves_since_reads_new_labels_once_with_their_events_keys() {
        use radar_core::features::LabelChange;
        let dir = tempfile::tempdir().unwrap();
        let store = LabelStore::open(dir.path().join("labels.db")).unwrap();
        let event = |id: &str, keys: Vec<u64>| IndexedEvent {
            id: id.into(),
            ts: 10,
            entity: None,
            keys,
            partition: Some(3),
        };
        store
            .index_events("s", &[event("a", vec![7, 8]), event("b", vec![])])
            .unwrap();
        store
            .record(
                "s",
                &[
                    label("a", true, 100),
                    label("b", true, 110),
                    label("a", true, 120),
                ],
            )
            .unwrap();
        let (seq, moves) = store.moves_since("s", 0, 100).unwrap();
        assert_eq!(seq, 3);
        assert_eq!(
            moves,
            vec![LabelMove {
                seq: 1,
                keys: vec![7, 8],
                partition: Some(3),
                at: 100,
                change: LabelChange::Fraud
            }],
            "b has no keys; a's second fraud verdict repeats the first"
        );
        store.record("s", &[label("a", false, 200)]).unwrap();
        let (seq, moves) = store.moves_since("s", seq, 100).unwrap();
        assert_eq!(seq, 4);
        assert_eq!(moves[0].change, LabelChange::Retracted { since: 100 });
        assert_eq!(store.moves_since("s", seq, 100).unwrap(), (4, vec![]));
    }

    #[test]
    fn feeds_follow_each_events_verdicts_in_time() {
        use radar_core::features::{LabelChange, LabelFeed};
        let book = LabelBook::new([
            label("a", true, 300),
            label("a", true, 350),
            label("a", false, 400),
            label("b", false, 100),
            label("b", true, 200),
            label("zz", true, 50),
        ]);
        let feeds = book.feeds([Some("b"), None, Some("a")]);
        assert_eq!(
            feeds,
            vec![
                LabelFeed {
                    row: 0,
                    at: 200,
                    change: LabelChange::Fraud
                },
                LabelFeed {
                    row: 2,
                    at: 300,
                    change: LabelChange::Fraud
                },
                LabelFeed {
                    row: 2,
                    at: 400,
                    change: LabelChange::Retracted { since: 300 }
                },
            ]
        );
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

/// Capture's observer that indexes the ids of captured events, with the
/// keys a label of each moves (and keeps capture's health, counts through
/// `metrics` when given).
pub struct Indexing {
    stream: String,
    keyer: radar_core::features::LabelKeyer,
    labels: LabelStore,
    health: std::sync::Arc<radar_core::health::Health>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl Indexing {
    pub fn new(
        schema: &radar_core::schema::StreamSchema,
        entities: radar_core::hash::EntityHasher,
        labels: LabelStore,
        health: std::sync::Arc<radar_core::health::Health>,
        metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    ) -> Indexing {
        Indexing {
            stream: schema.name.clone(),
            keyer: radar_core::features::LabelKeyer::new(schema, entities),
            labels,
            health,
            metrics,
        }
    }
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
        let ids: Vec<IndexedEvent<'_>> = rows
            .iter()
            .map(|r| IndexedEvent {
                id: event_id(&self.stream, &r.record, r.partition, r.offset),
                ts: r.record.ts,
                entity: r.record.entity.as_deref(),
                keys: self.keyer.keys(&r.record),
                partition: Some(r.partition),
            })
            .collect();
        // The index serves label checks only: a failure is said, capture
        // goes on (labels of these events would be refused as unknown).
        if let Err(e) = self.labels.index_events(&self.stream, &ids) {
            tracing::warn!(error = %e, "indexing captured event ids failed");
        }
    }
}

/// One captured event in the labels index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedEvent<'a> {
    pub id: String,
    pub ts: i64,
    pub entity: Option<&'a str>,
    /// What a label of it moves ([`radar_core::features::LabelKeyer`]).
    pub keys: Vec<u64>,
    /// The log partition it is in.
    pub partition: Option<u32>,
}

/// What a label newly recorded does to `label_rate` features, for a live
/// scorer (see [`LabelStore::moves_since`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMove {
    /// The label's number in its stream.
    pub seq: u64,
    pub keys: Vec<u64>,
    /// The log partition of the labelled event (`None`: indexed before
    /// partitions were kept).
    pub partition: Option<u32>,
    pub at: i64,
    pub change: radar_core::features::LabelChange,
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

/// The labels table and the index of known event ids, in the metadata
/// store (SQLite beside the registry, or PostgreSQL); a label is answered
/// only once durable. Labels are only ever added: re-labelling an event
/// adds a statement, the history stays. Each stream's labels are also
/// written to the lake's labels table ([`LabelStore::export`]), where
/// training reads them.
#[derive(Clone)]
pub struct LabelStore {
    db: MetaDb,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: r#"
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
    keys BLOB,
    PRIMARY KEY (stream, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exported (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE labels (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    stream TEXT NOT NULL,
    event_id TEXT NOT NULL,
    fraud BIGINT NOT NULL,
    kind TEXT,
    source TEXT NOT NULL,
    author TEXT,
    known_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    UNIQUE (stream, event_id, fraud, source, known_at)
);
CREATE INDEX labels_event ON labels(stream, event_id);
CREATE TABLE events (
    stream TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    entity TEXT,
    keys BYTEA,
    PRIMARY KEY (stream, event_id)
);
CREATE TABLE exported (
    stream TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
"#,
    },
    // Labels reach the scorer's state of their event's partition.
    Migration {
        version: 2,
        sqlite: "ALTER TABLE events ADD COLUMN log_partition INTEGER;",
        postgres: "ALTER TABLE events ADD COLUMN log_partition BIGINT;",
    },
];

/// Rows per multi-row insert of the event index (6 parameters each).
const INDEX_CHUNK: usize = 100;

impl LabelStore {
    pub fn open(target: impl Into<Target>) -> Result<LabelStore> {
        let db = MetaDb::open(&target.into(), "labels", MIGRATIONS)
            .map_err(radar_registry::RegistryError::from)?;
        // Indexes made before events kept their label keys gain the column.
        db.sqlite_only(|conn| {
            let has_keys = conn
                .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'keys'")?
                .exists([])?;
            if !has_keys {
                conn.execute_batch("ALTER TABLE events ADD COLUMN keys BLOB")?;
            }
            Ok(())
        })
        .map_err(radar_registry::RegistryError::from)?;
        Ok(LabelStore { db })
    }

    /// Remembers the ids of events the lake holds (capture calls this), so
    /// that a label naming an unknown event can be told apart.
    pub fn index_events(&self, stream: &str, events: &[IndexedEvent<'_>]) -> Result<()> {
        self.db
            .transaction(|tx| {
                for chunk in events.chunks(INDEX_CHUNK) {
                    let mut sql = String::from(
                        "INSERT INTO events (stream, event_id, ts, entity, keys, log_partition) VALUES ",
                    );
                    let mut params = Vec::with_capacity(chunk.len() * 6);
                    for (i, e) in chunk.iter().enumerate() {
                        let n = i * 6;
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!(
                            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                            n + 1,
                            n + 2,
                            n + 3,
                            n + 4,
                            n + 5,
                            n + 6
                        ));
                        let keys: Option<Vec<u8>> = (!e.keys.is_empty())
                            .then(|| e.keys.iter().flat_map(|k| k.to_le_bytes()).collect());
                        params.extend([
                            Value::from(stream),
                            Value::from(&e.id),
                            Value::from(e.ts),
                            Value::from(e.entity),
                            Value::from(keys),
                            Value::from(e.partition.map(i64::from)),
                        ]);
                    }
                    sql.push_str(" ON CONFLICT (stream, event_id) DO NOTHING");
                    tx.execute(&sql, &params)?;
                }
                Ok::<_, MetaError>(())
            })
            .map_err(meta_err)
    }

    /// Records labels of `stream` in one transaction: each is accepted, a
    /// duplicate of a statement already made, or about an unknown event
    /// (not stored). Returns once what was accepted is durable.
    pub fn record(&self, stream: &str, labels: &[Label]) -> Result<Vec<Recorded>> {
        let now = radar_core::time::now_micros();
        self.db
            .transaction(|tx| {
                if tx.backend() == Backend::Postgres {
                    // Readers follow labels by seq: seqs must become
                    // visible in order, so writers take turns.
                    tx.query("SELECT pg_advisory_xact_lock(7496138102)", &[])?;
                }
                let mut out = Vec::with_capacity(labels.len());
                for l in labels {
                    if tx
                        .query_opt(
                            "SELECT 1 FROM events WHERE stream = ?1 AND event_id = ?2",
                            meta_params![stream, &l.event_id],
                        )?
                        .is_none()
                    {
                        out.push(Recorded::UnknownEvent);
                        continue;
                    }
                    if let Some(same) = tx.query_opt(
                        "SELECT seq FROM labels WHERE stream = ?1 AND event_id = ?2 AND fraud = ?3 AND source = ?4 AND known_at = ?5",
                        meta_params![stream, &l.event_id, l.fraud, &l.source, l.known_at],
                    )? {
                        out.push(Recorded::Duplicate {
                            seq: same.get::<i64>(0)? as u64,
                        });
                        continue;
                    }
                    let seq: i64 = tx
                        .query_opt(
                            "INSERT INTO labels (stream, event_id, fraud, kind, source, author, known_at, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING seq",
                            meta_params![
                                stream,
                                &l.event_id,
                                l.fraud,
                                l.kind.as_deref(),
                                &l.source,
                                l.author.as_deref(),
                                l.known_at,
                                now
                            ],
                        )?
                        .map_or(Ok(0), |r| r.get(0))?;
                    out.push(Recorded::Accepted { seq: seq as u64 });
                }
                Ok::<_, MetaError>(out)
            })
            .map_err(meta_err)
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
        let rows = self
            .db
            .query(
                "SELECT seq, event_id, fraud, kind, source, author, known_at, recorded_at FROM labels
                 WHERE stream = ?1 AND seq > ?2 AND (CAST(?3 AS TEXT) IS NULL OR event_id = ?3) ORDER BY seq LIMIT ?4",
                meta_params![
                    stream,
                    after_seq.min(i64::MAX as u64) as i64,
                    event_id,
                    limit.min(i64::MAX as usize) as i64
                ],
            )
            .map_err(meta_err)?;
        rows.iter()
            .map(|r| {
                Ok(radar_lake::LabelRow {
                    seq: r.get::<i64>(0)? as u64,
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
            })
            .collect::<std::result::Result<_, MetaError>>()
            .map_err(meta_err)
    }

    /// What the labels of `stream` recorded after label `after_seq` (at
    /// most `limit` of them) do to `label_rate` features, in the order they
    /// were recorded; and the last seq read (`after_seq` when none).
    /// A label that repeats what its event's earlier labels said moves
    /// nothing; so does one of an event indexed without keys.
    pub fn moves_since(
        &self,
        stream: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<(u64, Vec<LabelMove>)> {
        use radar_core::features::LabelChange;
        let rows = self.list(stream, None, after_seq, limit)?;
        let last = rows.last().map_or(after_seq, |r| r.seq);
        let mut moves = Vec::new();
        for row in rows {
            let (keys, partition): (Option<Vec<u8>>, Option<i64>) = match self
                .db
                .query_opt(
                    "SELECT keys, log_partition FROM events WHERE stream = ?1 AND event_id = ?2",
                    meta_params![stream, &row.label.event_id],
                )
                .map_err(meta_err)?
            {
                Some(r) => (r.get(0).map_err(meta_err)?, r.get(1).map_err(meta_err)?),
                None => (None, None),
            };
            let Some(keys) = keys else { continue };
            let keys: Vec<u64> = keys
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            // The event's verdict before this label, in recorded order.
            let mut fraud_since = None;
            for earlier in self.list(stream, Some(&row.label.event_id), 0, usize::MAX)? {
                if earlier.seq >= row.seq {
                    break;
                }
                fraud_since = match (earlier.label.fraud, fraud_since) {
                    (true, None) => Some(earlier.label.known_at),
                    (false, _) => None,
                    (true, since) => since,
                };
            }
            let change = match (row.label.fraud, fraud_since) {
                (true, None) => LabelChange::Fraud,
                (false, Some(since)) => LabelChange::Retracted { since },
                _ => continue,
            };
            moves.push(LabelMove {
                seq: row.seq,
                keys,
                partition: partition.and_then(|p| u32::try_from(p).ok()),
                at: row.label.known_at,
                change,
            });
        }
        Ok((last, moves))
    }

    /// The seq of the last label of `stream` recorded (0 for none).
    pub fn last_seq(&self, stream: &str) -> Result<u64> {
        let seq: Option<i64> = match self
            .db
            .query_opt(
                "SELECT MAX(seq) FROM labels WHERE stream = ?1",
                meta_params![stream],
            )
            .map_err(meta_err)?
        {
            Some(r) => r.get(0).map_err(meta_err)?,
            None => None,
        };
        Ok(seq.unwrap_or(0) as u64)
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
        let done: u64 = match self
            .db
            .query_opt(
                "SELECT seq FROM exported WHERE stream = ?1",
                meta_params![stream],
            )
            .map_err(meta_err)?
        {
            Some(r) => r.get::<i64>(0).map_err(meta_err)? as u64,
            None => 0,
        };
        let rows = self.list(stream, None, done, 100_000)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        rt.block_on(lake.write_labels(stream, &rows))?;
        self.db
            .execute(
                // Two exporters at once (two workers) never move it back.
                "INSERT INTO exported (stream, seq) VALUES (?1, ?2) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq WHERE exported.seq < excluded.seq",
                meta_params![stream, last as i64],
            )
            .map_err(meta_err)?;
        Ok(rows.len())
    }
}

fn meta_err(e: MetaError) -> PipelineError {
    PipelineError::Registry(radar_registry::RegistryError::Db(e))
}
