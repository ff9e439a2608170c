//! The metadata store's database: one small SQL interface over SQLite (the
//! embedded default: a file per component beside the data) and PostgreSQL
//! (one database shared by every worker of a deployment). It owns the
//! connections, the conversion of parameters and rows, the versioned
//! migrations and the classification of database errors; the stores
//! (registry, alerts, labels, keys) hold only their SQL.
//!
//! Invariants:
//! - Statements are written once, with SQLite's numbered placeholders
//!   (`?1`, `?2`), and rewritten to PostgreSQL's (`$1`) on first use; the
//!   SQL both run sticks to what both mean alike (BIGINT, DOUBLE, TEXT,
//!   bytes; `ON CONFLICT`, `RETURNING`, `COALESCE`).
//! - DDL differs per backend and lives in [`Migration`]s: each applied once,
//!   in order, recorded in `radar_migrations` by the transaction that
//!   applies it; on PostgreSQL under an advisory lock, so workers starting
//!   together do not race.
//! - The PostgreSQL client blocks; called from inside an async runtime it
//!   runs on a scoped thread of its own, so callers need not care where
//!   they are. A connection found closed is made again on the next call.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use radar_core::error::{Classify, ErrorKind};
use thiserror::Error;

/// Where a component's metadata lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (made, with its directory, on first open).
    Sqlite(PathBuf),
    /// A PostgreSQL server: a `postgres://` URL or a `key=value` string.
    Postgres(String),
}

// By hand: a derived Debug would print the URL's password.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Target::Postgres(_) => f.debug_tuple("Postgres").field(&self.describe()).finish(),
        }
    }
}

impl Target {
    /// Where it is, for messages: a URL's password is left out.
    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite(p) => p.display().to_string(),
            Target::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        // A URL the parser refuses (several hosts) or a key=value string:
        // where its password sits is not certain, so none of it is shown.
        Err(_) => "<a PostgreSQL connection string that is not a URL; not shown>".to_owned(),
    }
}

impl From<&Path> for Target {
    fn from(p: &Path) -> Target {
        Target::Sqlite(p.to_owned())
    }
}

impl From<&PathBuf> for Target {
    fn from(p: &PathBuf) -> Target {
        Target::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Target {
    fn from(p: PathBuf) -> Target {
        Target::Sqlite(p)
    }
}

impl From<&Target> for Target {
    fn from(t: &Target) -> Target {
        t.clone()
    }
}

/// Which database a [`MetaDb`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Error)]
pub enum MetaError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("column {index} of `{sql}`: expected {expected}, found {found}")]
    Column {
        sql: String,
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("cannot create `{path}`: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "metadata at `{0}` is PostgreSQL, but this radar was built without it; rebuild with `--features postgres`"
    )]
    NoPostgres(String),
    #[error("the metadata connection's lock is poisoned (a thread panicked holding it)")]
    Poisoned,
    /// The metadata URL cannot be used as it is (a bad option, an
    /// unreadable CA certificate).
    #[error("metadata URL `{url}`: {reason}")]
    Url { url: String, reason: String },
}

#[cfg(feature = "postgres")]
fn pg_message(e: &postgres::Error) -> String {
    // The server's own message is the useful part; the driver's Display
    // says only "db error".
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl Classify for MetaError {
    fn kind(&self) -> ErrorKind {
        match self {
            MetaError::Sqlite(e) => sqlite_kind(e),
            #[cfg(feature = "postgres")]
            MetaError::Postgres(e) => postgres_kind(e),
            MetaError::Column { .. } | MetaError::Poisoned => ErrorKind::Internal,
            MetaError::Open { .. } => ErrorKind::Unavailable,
            MetaError::NoPostgres(_) | MetaError::Url { .. } => ErrorKind::Input,
        }
    }
}

/// How long a SQLite connection waits for another's lock.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn sqlite_is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
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
        // A key taken (another writer won); any other constraint is the
        // caller's input.
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == C::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                ) =>
        {
            ErrorKind::Conflict
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == C::ConstraintViolation => {
            ErrorKind::Input
        }
        _ => ErrorKind::Internal,
    }
}

/// A lost connection, a server shutting down or out of resources, a
/// serialization failure or deadlock, a fail-over: a retry may pass. A key
/// already taken is a conflict, another broken constraint the caller's
/// input; anything else a bug.
#[cfg(feature = "postgres")]
pub fn postgres_kind(e: &postgres::Error) -> ErrorKind {
    match e.code() {
        // No SQLSTATE: the connection (closed, refused, reset, TLS) may
        // come back; a value that would not convert will not.
        None => {
            let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
            if e.is_closed() || io {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Internal
            }
        }
        Some(code) => {
            let c = code.code();
            if c.starts_with("08")
                || c.starts_with("40")
                || c.starts_with("53")
                || c.starts_with("57")
                || c.starts_with("58")
                // Read-only after a fail-over; a lock wait timed out.
                || c == "25006"
                || c == "55P03"
            {
                ErrorKind::Unavailable
            } else if c == "23505" {
                ErrorKind::Conflict
            } else if c.starts_with("23") {
                ErrorKind::Input
            } else {
                ErrorKind::Internal
            }
        }
    }
}

/// A value going in or coming out.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// `[a, b, c]` as parameters.
#[macro_export]
macro_rules! meta_params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::meta::Value::from($v)),*][..]
    };
}

/// A value read back as a Rust type.
pub trait FromValue: Sized {
    const EXPECTED: &'static str;
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_value(v: &Value) -> Option<bool> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    const EXPECTED: &'static str = "bytes";
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone)]
pub struct Row {
    values: Vec<Value>,
    sql: Arc<str>,
}

impl Row {
    /// Column `index` as `T`; a column of another type is an error that
    /// names the statement.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, MetaError> {
        let found = self.values.get(index).unwrap_or(&Value::Null);
        T::from_value(found).ok_or_else(|| MetaError::Column {
            sql: self.sql.to_string(),
            index,
            expected: T::EXPECTED,
            found: found.type_name(),
        })
    }
}

/// A versioned step of a component's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A connection to the metadata database. Cheap to clone (clones share the
/// connection).
#[derive(Clone)]
pub struct MetaDb {
    conn: Arc<Mutex<Conn>>,
    backend: Backend,
}

impl std::fmt::Debug for MetaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaDb")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

enum Conn {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    // Boxed: the client is much larger than a SQLite handle.
    Postgres(Box<pg::Conn>),
}

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS radar_migrations (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (component, version)
)";

impl MetaDb {
    /// Opens `target` and brings `component`'s schema up to date.
    pub fn open(
        target: &Target,
        component: &str,
        migrations: &[Migration],
    ) -> Result<MetaDb, MetaError> {
        match target {
            Target::Sqlite(path) => MetaDb::open_sqlite_busy_waiting(path, component, migrations),
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let db = MetaDb {
                    conn: Arc::new(Mutex::new(Conn::Postgres(Box::new(pg::Conn::connect(
                        url,
                    )?)))),
                    backend: Backend::Postgres,
                };
                db.migrate(component, migrations)?;
                Ok(db)
            }
            #[cfg(not(feature = "postgres"))]
            Target::Postgres(url) => Err(MetaError::NoPostgres(redact_password(url))),
        }
    }

    /// Processes opening one new SQLite file together meet SQLite's busy
    /// answers that no busy handler waits for (the switch to WAL, its
    /// first recovery): those are waited out here, up to the busy time-out.
    fn open_sqlite_busy_waiting(
        path: &Path,
        component: &str,
        migrations: &[Migration],
    ) -> Result<MetaDb, MetaError> {
        let started = std::time::Instant::now();
        loop {
            let opened = MetaDb::open_sqlite(path).and_then(|db| {
                db.migrate(component, migrations)?;
                Ok(db)
            });
            match opened {
                Err(MetaError::Sqlite(e))
                    if sqlite_is_busy(&e) && started.elapsed() < SQLITE_BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn open_sqlite(path: &Path) -> Result<MetaDb, MetaError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| MetaError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = rusqlite::Connection::open(path)?;
        // First: switching the journal mode waits for other openers too.
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Acknowledged writes (labels, alerts, alias moves) survive a
        // power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(MetaDb {
            conn: Arc::new(Mutex::new(Conn::Sqlite(conn))),
            backend: Backend::Sqlite,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn lock(&self) -> Result<MutexGuard<'_, Conn>, MetaError> {
        self.conn.lock().map_err(|_| MetaError::Poisoned)
    }

    fn migrate(&self, component: &str, migrations: &[Migration]) -> Result<(), MetaError> {
        let now = radar_core::time::now_micros();
        self.transaction(|tx| {
            if tx.backend() == Backend::Postgres {
                // One migrator at a time across every worker.
                tx.query("SELECT pg_advisory_xact_lock(7496138101)", &[])?;
            }
            tx.batch(MIGRATIONS_TABLE)?;
            let applied: Vec<i64> = tx
                .query(
                    "SELECT version FROM radar_migrations WHERE component = ?1",
                    meta_params![component],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<_, _>>()?;
            for m in migrations {
                if applied.contains(&m.version) {
                    continue;
                }
                tx.batch(match tx.backend() {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                })?;
                tx.execute(
                    "INSERT INTO radar_migrations (component, version, applied_at) VALUES (?1, ?2, ?3)",
                    meta_params![component, m.version, now],
                )?;
            }
            Ok::<_, MetaError>(())
        })
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, MetaError> {
        self.transaction(|tx| tx.execute(sql, params))
    }

    /// Runs one query; returns its rows.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, MetaError> {
        self.run(false, |tx| tx.query(sql, params))
    }

    /// Runs one query; returns its first row, if any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, MetaError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled
    /// back when it returns `Err`.
    pub fn transaction<T, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E>
    where
        T: Send,
        E: From<MetaError> + Send,
    {
        self.run(true, f)
    }

    /// A transaction that may write (`writes`) takes SQLite's write lock
    /// when it begins: one that read first and wrote later could not wait
    /// for another writer (SQLite answers "busy" at once to spare a
    /// deadlock), where one that begins by waiting can.
    fn run<T, E>(
        &self,
        writes: bool,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E>
    where
        T: Send,
        E: From<MetaError> + Send,
    {
        let mut guard = self.lock()?;
        match &mut *guard {
            Conn::Sqlite(conn) => {
                let behavior = if writes {
                    rusqlite::TransactionBehavior::Immediate
                } else {
                    rusqlite::TransactionBehavior::Deferred
                };
                let tx = conn
                    .transaction_with_behavior(behavior)
                    .map_err(MetaError::from)?;
                let out = f(&mut Tx {
                    inner: TxInner::Sqlite(&tx),
                })?;
                tx.commit().map_err(MetaError::from)?;
                Ok(out)
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(conn) => off_runtime(move || conn.transaction(f)),
        }
    }

    /// Runs `f` on the SQLite connection (a step only SQLite files need,
    /// like moving tables made by an older radar); nothing on PostgreSQL.
    pub fn sqlite_only<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, MetaError>,
    ) -> Result<Option<T>, MetaError> {
        match &mut *self.lock()? {
            Conn::Sqlite(conn) => f(conn).map(Some),
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Ok(None),
        }
    }
}

/// Runs blocking `f` where a blocking client may run: here, or on a
/// scoped thread when this thread drives an async runtime.
#[cfg(feature = "postgres")]
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A transaction in progress.
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    #[cfg(feature = "postgres")]
    Postgres(pg::Tx<'a>),
}

impl Tx<'_> {
    pub fn backend(&self) -> Backend {
        match &self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, MetaError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(params.iter().map(SqliteValue)))? as u64)
            }
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => tx.execute(sql, params),
        }
    }

    /// Runs one query; returns its rows.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, MetaError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                let columns = st.column_count();
                let sql: Arc<str> = Arc::from(sql);
                let mut rows =
                    st.query(rusqlite::params_from_iter(params.iter().map(SqliteValue)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut values = Vec::with_capacity(columns);
                    for i in 0..columns {
                        values.push(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                            rusqlite::types::ValueRef::Text(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        });
                    }
                    out.push(Row {
                        values,
                        sql: sql.clone(),
                    });
                }
                Ok(out)
            }
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => tx.query(sql, params),
        }
    }

    /// Runs one query; returns its first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, MetaError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs statements separated by `;`, with no parameters (DDL).
    pub fn batch(&mut self, sql: &str) -> Result<(), MetaError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => tx.batch(sql),
        }
    }
}

struct SqliteValue<'a>(&'a Value);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// `?N` placeholders as PostgreSQL's `$N` (statements hold no `?` in
/// literals).
pub fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(feature = "postgres")]
mod pg {
    //! The PostgreSQL side: a client with its prepared statements, remade
    //! when the server closed it.

    use std::collections::HashMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

    use super::{MetaError, Row, TxInner, Value, postgres_placeholders};

    pub(super) struct Conn {
        connector: Connector,
        // Always Some but while being dropped (see Drop).
        client: Option<postgres::Client>,
        statements: HashMap<String, postgres::Statement>,
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            // The client closes its connection by blocking on its own
            // runtime, which panics on a tokio worker (a store dropped with
            // the HTTP router): close it on a thread of its own there.
            if let Some(client) = self.client.take()
                && tokio::runtime::Handle::try_current().is_ok()
            {
                let _ = std::thread::Builder::new()
                    .name("metadata-close".into())
                    .spawn(move || drop(client));
            }
        }
    }

    /// How to reach the server: the URL's settings, and TLS when its
    /// `sslmode` asks for it.
    struct Connector {
        config: postgres::Config,
        tls: Option<rustls_tokio_postgres::MakeRustlsConnect>,
    }

    impl Connector {
        /// libpq's `sslmode=require` (and `verify-ca`, `verify-full`) make
        /// TLS with the server's certificate verified, against
        /// `sslrootcert` (a PEM file) when given, else the system's roots:
        /// radar never sends a password over TLS it has not checked.
        /// `prefer` and `disable` (the default is `prefer`) stay plain,
        /// for a server on the same host or network.
        fn parse(url: &str) -> Result<Connector, MetaError> {
            let bad = |reason: String| MetaError::Url {
                url: super::redact_password(url),
                reason,
            };
            let (rest, mode, root) = match url::Url::parse(url) {
                Ok(mut u) if matches!(u.scheme(), "postgres" | "postgresql") => {
                    let (mut mode, mut root) = (None, None);
                    let kept: Vec<(String, String)> = u
                        .query_pairs()
                        .filter_map(|(k, v)| match k.as_ref() {
                            "sslmode" => {
                                mode = Some(v.into_owned());
                                None
                            }
                            "sslrootcert" => {
                                root = Some(v.into_owned());
                                None
                            }
                            _ => Some((k.into_owned(), v.into_owned())),
                        })
                        .collect();
                    if kept.is_empty() {
                        u.set_query(None);
                    } else {
                        u.query_pairs_mut().clear().extend_pairs(kept);
                    }
                    (u.to_string(), mode, root)
                }
                _ => (url.to_owned(), None, None),
            };
            let mut config: postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
            let tls = match mode.as_deref() {
                None | Some("prefer" | "disable" | "allow") => {
                    if mode.as_deref() == Some("disable") {
                        config.ssl_mode(postgres::config::SslMode::Disable);
                    }
                    if root.is_some() {
                        return Err(bad(
                            "`sslrootcert` is given but `sslmode` is not `require`, `verify-ca` or `verify-full`"
                                .into(),
                        ));
                    }
                    None
                }
                Some("require" | "verify-ca" | "verify-full") => {
                    config.ssl_mode(postgres::config::SslMode::Require);
                    let client = match &root {
                        Some(path) => rustls_tokio_postgres::config_from_ca_cert(path)
                            .map_err(|e| bad(format!("CA certificate `{path}`: {e}")))?,
                        None => rustls_tokio_postgres::config_platform_verifier()
                            .map_err(|e| bad(format!("the system's certificate roots: {e}")))?,
                    };
                    Some(rustls_tokio_postgres::MakeRustlsConnect::new(client))
                }
                Some(other) => {
                    return Err(bad(format!(
                        "`sslmode` must be disable, prefer, require, verify-ca or verify-full, not `{other}`"
                    )));
                }
            };
            Ok(Connector { config, tls })
        }

        fn connect(&self) -> Result<postgres::Client, MetaError> {
            super::off_runtime(|| {
                Ok(match &self.tls {
                    Some(tls) => self.config.connect(tls.clone())?,
                    None => self.config.connect(postgres::NoTls)?,
                })
            })
        }
    }

    impl Conn {
        pub(super) fn connect(url: &str) -> Result<Conn, MetaError> {
            let connector = Connector::parse(url)?;
            Ok(Conn {
                client: Some(connector.connect()?),
                connector,
                statements: HashMap::new(),
            })
        }

        pub(super) fn transaction<T, E>(
            &mut self,
            f: impl FnOnce(&mut super::Tx<'_>) -> Result<T, E>,
        ) -> Result<T, E>
        where
            E: From<MetaError>,
        {
            if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
                self.client = Some(self.connector.connect()?);
                self.statements.clear();
            }
            let Some(client) = self.client.as_mut() else {
                unreachable!("the client is there until the connection is dropped")
            };
            let tx = client.transaction().map_err(MetaError::from)?;
            let mut tx = super::Tx {
                inner: TxInner::Postgres(Tx {
                    tx,
                    statements: &mut self.statements,
                }),
            };
            let out = f(&mut tx)?;
            let TxInner::Postgres(inner) = tx.inner else {
                unreachable!("a PostgreSQL connection makes PostgreSQL transactions")
            };
            inner.tx.commit().map_err(MetaError::from)?;
            Ok(out)
        }
    }

    pub(super) struct Tx<'a> {
        tx: postgres::Transaction<'a>,
        statements: &'a mut HashMap<String, postgres::Statement>,
    }

    impl Tx<'_> {
        fn statement(&mut self, sql: &str) -> Result<postgres::Statement, MetaError> {
            if let Some(st) = self.statements.get(sql) {
                return Ok(st.clone());
            }
            let st = self.tx.prepare(&postgres_placeholders(sql))?;
            if self.statements.len() >= 256 {
                self.statements.clear();
            }
            self.statements.insert(sql.to_owned(), st.clone());
            Ok(st)
        }

        pub(super) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, MetaError> {
            let st = self.statement(sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            Ok(self.tx.execute(&st, &refs)?)
        }

        pub(super) fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, MetaError> {
            let st = self.statement(sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let sql: Arc<str> = Arc::from(sql);
            self.tx
                .query(&st, &refs)?
                .iter()
                .map(|r| {
                    Ok(Row {
                        values: (0..r.len())
                            .map(|i| read(r, i, &sql))
                            .collect::<Result<_, _>>()?,
                        sql: sql.clone(),
                    })
                })
                .collect()
        }

        pub(super) fn batch(&mut self, sql: &str) -> Result<(), MetaError> {
            Ok(self.tx.batch_execute(sql)?)
        }
    }

    fn read(r: &postgres::Row, i: usize, sql: &Arc<str>) -> Result<Value, MetaError> {
        let ty = r.columns()[i].type_().clone();
        Ok(match ty {
            Type::INT8 => r
                .try_get::<_, Option<i64>>(i)?
                .map_or(Value::Null, Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::FLOAT8 => r
                .try_get::<_, Option<f64>>(i)?
                .map_or(Value::Null, Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)?
                .map_or(Value::Null, |v| Value::Real(v.into())),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => r
                .try_get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::Text),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)?
                .map_or(Value::Null, Value::Blob),
            Type::VOID => Value::Null,
            _ => {
                return Err(MetaError::Column {
                    sql: sql.to_string(),
                    index: i,
                    expected: "an integer, real, text or bytes column",
                    found: "another PostgreSQL type",
                });
            }
        })
    }

    impl ToSql for Value {
        fn to_sql(
            &self,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            match self {
                Value::Null => Ok(IsNull::Yes),
                Value::Int(i) => match *ty {
                    Type::INT8 => i.to_sql(ty, out),
                    Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                    Type::BOOL => (*i != 0).to_sql(ty, out),
                    Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                    _ => Err(format!("an integer given where {ty} is expected").into()),
                },
                Value::Real(f) => match *ty {
                    Type::FLOAT8 => f.to_sql(ty, out),
                    Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                    _ => Err(format!("a real given where {ty} is expected").into()),
                },
                Value::Text(s) => s.as_str().to_sql(ty, out),
                Value::Blob(b) => b.as_slice().to_sql(ty, out),
            }
        }

        // Each value converts itself to the parameter's declared type.
        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_postgres_numbered_ones() {
        assert_eq!(
            postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND (?2 IS NULL OR c = ?12)"),
            "SELECT a FROM t WHERE b = $1 AND ($2 IS NULL OR c = $12)"
        );
    }

    #[test]
    fn a_password_is_never_described() {
        let t = Target::Postgres("postgres://radar:s3cret@db:5432/radar".into());
        assert!(!t.describe().contains("s3cret"), "{}", t.describe());
        let t = Target::Postgres("host=db user=radar password=s3cret dbname=radar".into());
        assert!(!t.describe().contains("s3cret"), "{}", t.describe());
    }

    #[test]
    fn a_column_of_another_type_names_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(&Target::Sqlite(dir.path().join("m.db")), "t", &[]).unwrap();
        let rows = db.query("SELECT 'x', 1", &[]).unwrap();
        let e = rows[0].get::<i64>(0).unwrap_err();
        assert!(e.to_string().contains("SELECT 'x', 1"), "{e}");
        assert_eq!(rows[0].get::<i64>(1).unwrap(), 1);
        assert_eq!(
            rows[0].get::<Option<String>>(0).unwrap().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn migrations_apply_once_in_order_and_a_failed_one_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Sqlite(dir.path().join("m.db"));
        let steps = [
            Migration {
                version: 1,
                sqlite: "CREATE TABLE a (x BIGINT)",
                postgres: "",
            },
            Migration {
                version: 2,
                sqlite: "ALTER TABLE a ADD COLUMN y TEXT",
                postgres: "",
            },
        ];
        MetaDb::open(&target, "c", &steps[..1]).unwrap();
        // Opened again with one more: only the new one runs (the first
        // would fail: the table exists).
        let db = MetaDb::open(&target, "c", &steps).unwrap();
        db.execute(
            "INSERT INTO a (x, y) VALUES (?1, ?2)",
            meta_params![1i64, "b"],
        )
        .unwrap();
        let broken = [Migration {
            version: 3,
            sqlite: "ALTER TABLE a ADD COLUMN z TEXT; CREATE TABLE a (x BIGINT)",
            postgres: "",
        }];
        MetaDb::open(&target, "c", &[steps[0], steps[1], broken[0]]).unwrap_err();
        // Rolled back whole: column z is not there, and v3 is not recorded.
        db.query("SELECT z FROM a", &[]).unwrap_err();
        let versions = db
            .query(
                "SELECT version FROM radar_migrations WHERE component = 'c' ORDER BY version",
                &[],
            )
            .unwrap();
        assert_eq!(versions.len(), 2);
    }

    /// A URL that cannot work is refused before any connection, as the
    /// user's to fix, without its password.
    #[cfg(feature = "postgres")]
    #[test]
    fn unusable_metadata_urls_are_refused_as_input() {
        use radar_core::error::{Classify, ErrorKind};
        for (url, says) in [
            ("postgres://radar:s3cret@db/radar?sslmode=always", "sslmode"),
            (
                "postgres://radar:s3cret@db/radar?sslrootcert=/ca.pem",
                "sslrootcert",
            ),
            (
                "postgres://radar:s3cret@db/radar?sslmode=require&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
            ("postgres://radar:s3cret@db/radar?colour=blue", "colour"),
        ] {
            let Err(e) = MetaDb::open(&Target::Postgres(url.into()), "c", &[]) else {
                panic!("{url} was taken");
            };
            assert_eq!(e.kind(), ErrorKind::Input, "{url}: {e}");
            let said = e.to_string();
            assert!(
                said.contains(says) && !said.contains("s3cret"),
                "{url}: {said}"
            );
        }
    }

    /// Passwords stay out of what is said, whatever form the URL takes.
    #[test]
    fn passwords_are_never_described() {
        for url in [
            "postgres://radar:s3cret@db/radar",
            "postgres://radar@db/radar?password=s3cret&sslmode=require",
            "postgres://radar:s3cret@db1:5432,db2:5432/radar?sslmode=require",
            "host=db user=radar password = s3cret",
            "host=db user=radar password='s3 cret'",
        ] {
            let target = Target::Postgres(url.into());
            let said = format!("{} {:?}", target.describe(), target);
            assert!(!said.contains("s3"), "{url}: {said}");
        }
        assert_eq!(
            Target::Postgres("postgres://radar:s3cret@db/radar?sslmode=require".into()).describe(),
            "postgres://radar:***@db/radar?sslmode=require"
        );
    }
}
