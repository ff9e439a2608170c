//! radar's registry: experiments, training runs, immutable model versions,
//! moving aliases (`champion`, `challenger`) with an audit trail, and
//! content-addressed artifacts under the storage root.
//!
//! Metadata lives in one SQLite file beside the data; artifacts are stored
//! by SHA-256 and checked against it when loaded.

pub mod bundle;

use std::path::Path;
use std::sync::{Arc, Mutex};

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use radar_core::error::{Classify, ErrorKind};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use bundle::{Bundle, Explained, Reference};

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("registry database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact store: {0}")]
    Lake(#[from] radar_lake::LakeError),
    #[error("artifact store: `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no model is named `{0}`")]
    NoModel(String),
    #[error("model `{name}` has no version {version}")]
    NoVersion { name: String, version: i64 },
    #[error("model `{name}` has no alias `{alias}`")]
    NoAlias { name: String, alias: String },
    #[error("run `{0}` does not exist")]
    NoRun(String),
    #[error("artifact {path} is corrupted: SHA-256 {computed} where {expected} was recorded")]
    Corrupt {
        path: String,
        expected: String,
        computed: String,
    },
    #[error("nothing to roll back to: alias `{alias}` of `{name}` has no earlier version")]
    NoRollback { name: String, alias: String },
    #[error("invalid: {0}")]
    Invalid(String),
}

impl Classify for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Db(e) => sqlite_kind(e),
            RegistryError::Store(_) | RegistryError::Io { .. } => ErrorKind::Unavailable,
            RegistryError::Lake(e) => e.kind(),
            RegistryError::NoModel(_)
            | RegistryError::NoVersion { .. }
            | RegistryError::NoAlias { .. }
            | RegistryError::NoRun(_) => ErrorKind::NotFound,
            RegistryError::Corrupt { .. } => ErrorKind::Internal,
            RegistryError::NoRollback { .. } => ErrorKind::Conflict,
            RegistryError::Invalid(_) => ErrorKind::Input,
        }
    }
}

/// A full disk, a busy or locked database, an I/O error: a retry may pass;
/// anything else is a bug or corruption.
pub fn sqlite_kind(e: &rusqlite::Error) -> ErrorKind {
    use rusqlite::ErrorCode as C;
    match e {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                C::DiskFull
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::SystemIoFailure
                    | C::CannotOpen
            ) =>
        {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    params TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    dataset_snapshot TEXT,
    config_hash TEXT,
    radar_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_id TEXT REFERENCES runs(id),
    artifact TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS model_events (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    event TEXT NOT NULL,
    reason TEXT NOT NULL,
    figures TEXT NOT NULL DEFAULT '{}',
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS model_events_name ON model_events(name, id);
CREATE TABLE IF NOT EXISTS alias_history (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"#;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    pub experiment: String,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub params: serde_json::Value,
    pub metrics: serde_json::Value,
    pub tags: serde_json::Value,
    pub dataset_snapshot: Option<String>,
    pub config_hash: Option<String>,
    pub radar_version: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub run_id: Option<String>,
    pub artifact: String,
    pub sha256: String,
    pub metrics: serde_json::Value,
    pub created_at: i64,
    /// Aliases pointing at this version now.
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AliasMove {
    pub name: String,
    pub alias: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub at: i64,
    pub reason: String,
}

/// One step of a version's life (trained, gated, shadowed, canaried,
/// promoted, rejected, rolled back), with why and the figures that
/// decided it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelEvent {
    pub name: String,
    pub version: i64,
    pub event: String,
    pub reason: String,
    pub figures: serde_json::Value,
    pub at: i64,
}

pub use radar_core::time::now_micros;

/// A fresh run id: `run-` and a ULID (time-ordered, 80 random bits, so
/// runs started in the same microsecond, in one process or several, do
/// not collide).
pub fn new_run_id() -> String {
    format!(
        "run-{}",
        ulid::Ulid::generate().to_string().to_ascii_lowercase()
    )
}

/// A model name: letters, digits, `-`, `_`, `.` (it becomes part of URLs
/// and file names).
pub fn check_model_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty()
        || name.len() > 200
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(RegistryError::Invalid(format!(
            "model name `{name}`: use letters, digits, `-`, `_`, `.`"
        )));
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The registry. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    db: Arc<Mutex<Connection>>,
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    /// The storage root's directory when it is local (artifacts are synced).
    local: Option<std::path::PathBuf>,
}

fn json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

impl Registry {
    /// Opens (creating) the metadata database at `db_path`; artifacts go
    /// under `artifacts/` of the storage root `root`.
    pub fn open(
        db_path: &Path,
        root: &str,
        options: &[(String, String)],
    ) -> Result<Registry, RegistryError> {
        if let Some(dir) = db_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RegistryError::Invalid(format!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(db_path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        let (store, prefix) = radar_lake::storage::open(root, options)?;
        Ok(Registry {
            db: Arc::new(Mutex::new(conn)),
            store,
            prefix: prefix.join("artifacts"),
            local: radar_lake::storage::local_dir(root),
        })
    }

    fn db(&self) -> Result<std::sync::MutexGuard<'_, Connection>, RegistryError> {
        self.db
            .lock()
            .map_err(|_| RegistryError::Invalid("registry lock poisoned".into()))
    }

    /// Starts a run in `experiment` (created on first use).
    pub fn start_run(
        &self,
        experiment: &str,
        params: &serde_json::Value,
    ) -> Result<String, RegistryError> {
        let db = self.db()?;
        let now = now_micros();
        db.execute(
            "INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?1, ?2)",
            params![experiment, now],
        )?;
        let exp: i64 = db.query_row(
            "SELECT id FROM experiments WHERE name = ?1",
            [experiment],
            |r| r.get(0),
        )?;
        let id = new_run_id();
        db.execute(
            "INSERT INTO runs (id, experiment_id, status, started_at, params, radar_version) VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
            params![id, exp, now, params.to_string(), env!("CARGO_PKG_VERSION")],
        )?;
        Ok(id)
    }

    /// Ends a run with its outcome.
    pub fn end_run(
        &self,
        run: &str,
        status: &str,
        metrics: &serde_json::Value,
        tags: &serde_json::Value,
        dataset_snapshot: Option<&str>,
        config_hash: Option<&str>,
    ) -> Result<(), RegistryError> {
        let n = self.db()?.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, metrics = ?4, tags = ?5, dataset_snapshot = ?6, config_hash = ?7 WHERE id = ?1",
            params![run, status, now_micros(), metrics.to_string(), tags.to_string(), dataset_snapshot, config_hash],
        )?;
        if n == 0 {
            return Err(RegistryError::NoRun(run.to_owned()));
        }
        Ok(())
    }

    fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
        Ok(Run {
            id: r.get(0)?,
            experiment: r.get(1)?,
            status: r.get(2)?,
            started_at: r.get(3)?,
            ended_at: r.get(4)?,
            params: json(r.get(5)?),
            metrics: json(r.get(6)?),
            tags: json(r.get(7)?),
            dataset_snapshot: r.get(8)?,
            config_hash: r.get(9)?,
            radar_version: r.get(10)?,
        })
    }

    const RUN_COLUMNS: &'static str = "r.id, e.name, r.status, r.started_at, r.ended_at, r.params, r.metrics, r.tags, r.dataset_snapshot, r.config_hash, r.radar_version";

    pub fn runs(&self, limit: usize) -> Result<Vec<Run>, RegistryError> {
        let db = self.db()?;
        let mut st = db.prepare(&format!(
            "SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id ORDER BY r.started_at DESC LIMIT ?1",
            Self::RUN_COLUMNS
        ))?;
        let rows = st.query_map([limit as i64], Self::run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn run(&self, id: &str) -> Result<Run, RegistryError> {
        let db = self.db()?;
        db.query_row(
            &format!("SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?1", Self::RUN_COLUMNS),
            [id],
            Self::run_from_row,
        )
        .optional()?
        .ok_or_else(|| RegistryError::NoRun(id.to_owned()))
    }

    /// Stores `artifact` (content-addressed) and registers it as the next
    /// version of `name`.
    pub async fn register(
        &self,
        name: &str,
        run: Option<&str>,
        artifact: &[u8],
        metrics: &serde_json::Value,
    ) -> Result<ModelVersion, RegistryError> {
        check_model_name(name)?;
        let sha = sha256_hex(artifact);
        let path = self.prefix.clone().join("sha256").join(sha.as_str());
        self.store
            .put(&path, PutPayload::from(artifact.to_vec()))
            .await?;
        // The version row below is durable once inserted: its artifact must
        // be durable before it.
        if let Some(dir) = &self.local {
            radar_lake::storage::sync_local(dir, &path).map_err(|source| RegistryError::Io {
                path: path.to_string(),
                source,
            })?;
        }
        let version = {
            let db = self.db()?;
            let version: i64 = db.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?;
            db.execute(
                "INSERT INTO model_versions (name, version, run_id, artifact, sha256, metrics, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, version, run, path.to_string(), sha, metrics.to_string(), now_micros()],
            )?;
            version
        };
        self.version(name, version)
    }

    pub fn version(&self, name: &str, version: i64) -> Result<ModelVersion, RegistryError> {
        let db = self.db()?;
        let mv = db
            .query_row(
                "SELECT name, version, run_id, artifact, sha256, metrics, created_at FROM model_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| {
                    Ok(ModelVersion {
                        name: r.get(0)?,
                        version: r.get(1)?,
                        run_id: r.get(2)?,
                        artifact: r.get(3)?,
                        sha256: r.get(4)?,
                        metrics: json(r.get(5)?),
                        created_at: r.get(6)?,
                        aliases: Vec::new(),
                    })
                },
            )
            .optional()?
            .ok_or_else(|| RegistryError::NoVersion {
                name: name.to_owned(),
                version,
            })?;
        let mut st = db
            .prepare("SELECT alias FROM aliases WHERE name = ?1 AND version = ?2 ORDER BY alias")?;
        let aliases = st
            .query_map(params![name, version], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ModelVersion { aliases, ..mv })
    }

    /// Every version of every model, newest first.
    pub fn versions(&self) -> Result<Vec<ModelVersion>, RegistryError> {
        let keys: Vec<(String, i64)> = {
            let db = self.db()?;
            let mut st =
                db.prepare("SELECT name, version FROM model_versions ORDER BY name, version DESC")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        keys.into_iter().map(|(n, v)| self.version(&n, v)).collect()
    }

    pub fn alias(&self, name: &str, alias: &str) -> Result<Option<i64>, RegistryError> {
        Ok(self
            .db()?
            .query_row(
                "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Points `alias` of `name` at `version`, recording who moved it why.
    pub fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
        reason: &str,
    ) -> Result<(), RegistryError> {
        self.version(name, version)?;
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let from: Option<i64> = tx
            .query_row(
                "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO aliases (name, alias, version) VALUES (?1, ?2, ?3) ON CONFLICT(name, alias) DO UPDATE SET version = ?3",
            params![name, alias, version],
        )?;
        tx.execute(
            "INSERT INTO alias_history (name, alias, from_version, to_version, at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, alias, from, version, now_micros(), reason],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes `alias` of `name` (a challenger promoted or rejected); the
    /// audit trail says why.
    pub fn remove_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        self.db()?.execute(
            "DELETE FROM aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
        )?;
        Ok(())
    }

    /// Moves `alias` back to the version it pointed at before its last move.
    pub fn rollback(&self, name: &str, alias: &str, reason: &str) -> Result<i64, RegistryError> {
        let previous: Option<i64> = self
            .db()?
            .query_row(
                "SELECT from_version FROM alias_history WHERE name = ?1 AND alias = ?2 ORDER BY id DESC LIMIT 1",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(v) = previous else {
            return Err(RegistryError::NoRollback {
                name: name.to_owned(),
                alias: alias.to_owned(),
            });
        };
        self.set_alias(name, alias, v, reason)?;
        Ok(v)
    }

    /// Records a step of `name` v`version`'s life in the audit trail.
    pub fn record_event(
        &self,
        name: &str,
        version: i64,
        event: &str,
        reason: &str,
        figures: &serde_json::Value,
    ) -> Result<(), RegistryError> {
        self.version(name, version)?;
        self.db()?.execute(
            "INSERT INTO model_events (name, version, event, reason, figures, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, version, event, reason, figures.to_string(), now_micros()],
        )?;
        Ok(())
    }

    /// `name`'s audit trail, oldest first.
    pub fn events(&self, name: &str) -> Result<Vec<ModelEvent>, RegistryError> {
        let db = self.db()?;
        let mut st = db.prepare(
            "SELECT name, version, event, reason, figures, at FROM model_events WHERE name = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([name], |r| {
            let figures: String = r.get(4)?;
            Ok(ModelEvent {
                name: r.get(0)?,
                version: r.get(1)?,
                event: r.get(2)?,
                reason: r.get(3)?,
                figures: serde_json::from_str(&figures).unwrap_or(serde_json::Value::Null),
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn alias_history(&self, name: &str) -> Result<Vec<AliasMove>, RegistryError> {
        let db = self.db()?;
        let mut st = db.prepare(
            "SELECT name, alias, from_version, to_version, at, reason FROM alias_history WHERE name = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([name], |r| {
            Ok(AliasMove {
                name: r.get(0)?,
                alias: r.get(1)?,
                from_version: r.get(2)?,
                to_version: r.get(3)?,
                at: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A version's artifact, checked against its recorded SHA-256.
    pub async fn artifact(&self, mv: &ModelVersion) -> Result<Vec<u8>, RegistryError> {
        let bytes = self
            .store
            .get(&StorePath::from(mv.artifact.as_str()))
            .await?
            .bytes()
            .await?;
        let computed = sha256_hex(&bytes);
        if computed != mv.sha256 {
            return Err(RegistryError::Corrupt {
                path: mv.artifact.clone(),
                expected: mv.sha256.clone(),
                computed,
            });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests;
