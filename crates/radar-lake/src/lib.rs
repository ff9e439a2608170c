//! radar's data lake: every event captured to Parquet, on local disk or
//! object storage (S3, Azure Blob / ADLS Gen2, GCS).
//!
//! ```text
//! lake/raw/<stream>/date=YYYY-MM-DD/hour=HH/part-p<partition>-<first>-<last>.parquet
//! lake/dead_letters/<stream>/date=YYYY-MM-DD/hour=HH/part-p<partition>-<first>-<last>.parquet
//! ```
//! Hive-style partitions that Spark, Databricks, DuckDB, DataFusion and
//! pandas read as they are; ZSTD; the stream's typed columns plus `_offset`,
//! `_partition`, `_ingest_time`. A file's name carries the log partition and
//! offset range it holds, which makes capture idempotent: a file that was
//! written but whose offsets were never committed is found and removed
//! before its range is captured again.

pub mod capture;
pub mod storage;
pub mod table;
pub mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use radar_core::schema::StreamSchema;
use radar_core::time::{MICROS_PER_SECOND, format_rfc3339};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use table::{DeadRow, LabelRow, Row};

#[derive(Debug, Error)]
pub enum LakeError {
    /// The object store failed a call.
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    /// A storage call did not finish in time.
    #[error("storage: {what} timed out after {after:?}")]
    TimedOut {
        what: &'static str,
        after: std::time::Duration,
    },
    /// A local file or directory of the lake.
    #[error("storage: `{path}`: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The storage root is not something radar can open.
    #[error("storage root `{root}`: {detail}")]
    Root { root: String, detail: String },
    #[error("format: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("format: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A file that does not hold what radar wrote (a column missing, of
    /// another type).
    #[error("format: {0}")]
    Format(String),
    /// A task doing lake work panicked.
    #[error("internal: {0}")]
    Task(String),
    #[error(transparent)]
    Log(#[from] radar_log::LogError),
}

impl radar_core::error::Classify for LakeError {
    /// Storage errors (a store that is down, slow or full) may pass; a
    /// file that does not decode will not.
    fn kind(&self) -> radar_core::error::ErrorKind {
        use radar_core::error::ErrorKind;
        match self {
            LakeError::Storage(_) | LakeError::TimedOut { .. } | LakeError::Local { .. } => {
                ErrorKind::Unavailable
            }
            LakeError::Root { .. } => ErrorKind::Input,
            LakeError::Parquet(_)
            | LakeError::Arrow(_)
            | LakeError::Format(_)
            | LakeError::Task(_) => ErrorKind::Internal,
            LakeError::Log(e) => e.kind(),
        }
    }
}

/// Which table of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Raw,
    DeadLetters,
    /// Feedback labels, by the hour they became known.
    Labels,
}

impl Table {
    fn dir(self) -> &'static str {
        match self {
            Table::Raw => "raw",
            Table::DeadLetters => "dead_letters",
            Table::Labels => "labels",
        }
    }
}

/// One Parquet file of the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub partition: u32,
    pub first_offset: u64,
    pub last_offset: u64,
    /// Start of the hour the file's rows fall in (UTC µs).
    pub hour: i64,
}

/// A dataset snapshot: exactly which files, how many rows, and a hash of
/// their contents. The same data always gives the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub rows: u64,
    pub files: Vec<FileInfo>,
}

pub(crate) const HOUR: i64 = 3600 * MICROS_PER_SECOND;

fn hour_dir(hour: i64) -> String {
    let t = format_rfc3339(hour);
    format!("date={}/hour={}", &t[..10], &t[11..13])
}

/// Parses `…/date=YYYY-MM-DD/hour=HH/part-pNNNNN-FIRST-LAST.parquet`.
fn parse_file(path: &str, size: u64) -> Option<FileInfo> {
    let mut parts = path.rsplit('/');
    let name = parts.next()?;
    let hour = parts.next()?.strip_prefix("hour=")?;
    let date = parts.next()?.strip_prefix("date=")?;
    let stem = name.strip_prefix("part-p")?.strip_suffix(".parquet")?;
    let mut f = stem.split('-');
    let partition = f.next()?.parse().ok()?;
    let first_offset = f.next()?.parse().ok()?;
    let last_offset = f.next()?.parse().ok()?;
    let hour = radar_core::time::parse_rfc3339(&format!("{date}T{hour}:00:00Z")).ok()?;
    Some(FileInfo {
        path: path.to_owned(),
        size,
        partition,
        first_offset,
        last_offset,
        hour,
    })
}

/// A file's Parquet bytes, ready to store.
struct Encoded {
    hour: i64,
    partition: u32,
    first: u64,
    last: u64,
    bytes: Vec<u8>,
}

/// Rows that know their log offset.
trait AtOffset {
    fn at(&self) -> u64;
}
impl AtOffset for &Row {
    fn at(&self) -> u64 {
        self.offset
    }
}
impl AtOffset for &DeadRow {
    fn at(&self) -> u64 {
        self.offset
    }
}
impl AtOffset for &LabelRow {
    fn at(&self) -> u64 {
        self.seq
    }
}

fn parquet_bytes(batch: &arrow_array::RecordBatch) -> Result<Vec<u8>, LakeError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("radar {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(buf)
}

/// Sorts each group by offset, builds and encodes its file, groups on
/// threads of their own (up to the machine's parallelism): Parquet encoding
/// is most of capture's work.
fn encode_parallel<T: AtOffset + Sync>(
    groups: &[((i64, u32), Vec<T>)],
    batch: impl Fn(&[T]) -> Result<arrow_array::RecordBatch, LakeError> + Sync,
) -> Result<Vec<Encoded>, LakeError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let encode = |((hour, partition), rows): &((i64, u32), Vec<T>)| -> Result<Encoded, LakeError> {
        let first = rows.iter().map(AtOffset::at).min().unwrap_or(0);
        let last = rows.iter().map(AtOffset::at).max().unwrap_or(0);
        Ok(Encoded {
            hour: *hour,
            partition: *partition,
            first,
            last,
            bytes: parquet_bytes(&batch(rows)?)?,
        })
    };
    let mut out = Vec::with_capacity(groups.len());
    for chunk in groups.chunks(threads) {
        let results: Vec<Result<Encoded, LakeError>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|g| s.spawn(|| encode(g))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LakeError::Task("an encoding thread panicked".into()))
                    })
                })
                .collect()
        });
        for r in results {
            out.push(r?);
        }
    }
    Ok(out)
}

/// The lake under a storage root.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// For a local root: the directory, so writes can be made durable.
    local: Option<PathBuf>,
    /// How long one storage call may take before it fails (as a storage
    /// error, which callers retry): a store that accepts connections and
    /// never answers must not stall capture for good.
    timeout: std::time::Duration,
}

impl Lake {
    /// Opens the lake under `root` (see [`storage::open`]).
    pub fn open(root: &str, options: &[(String, String)]) -> Result<Lake, LakeError> {
        let (store, prefix) = storage::open(root, options)?;
        let local = storage::local_dir(root);
        Ok(Lake {
            store,
            prefix: prefix.join("lake"),
            local,
            timeout: std::time::Duration::from_secs(30),
        })
    }

    /// The same lake with another per-call time-out.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Lake {
        self.timeout = timeout;
        self
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<T, object_store::Error>>,
    ) -> Result<T, LakeError> {
        storage::timed(self.timeout, what, call).await
    }

    fn table_prefix(&self, table: Table, stream: &str) -> Path {
        self.prefix.clone().join(table.dir()).join(stream)
    }

    async fn put_bytes(&self, path: &Path, buf: Vec<u8>) -> Result<u64, LakeError> {
        let size = buf.len() as u64;
        self.timed(
            "writing a file",
            self.store.put(path, PutPayload::from(buf)),
        )
        .await?;
        if let Some(root) = &self.local {
            // The object store renames a finished file into place; make the
            // file durable before offsets are committed (its directory is
            // synced once per batch, in `sync_dirs`).
            let file = root.join(path.as_ref());
            std::fs::File::open(&file)
                .and_then(|f| f.sync_all())
                .map_err(|source| LakeError::Local {
                    path: file.display().to_string(),
                    source,
                })?;
        }
        Ok(size)
    }

    /// Makes the directories of `files` durable (local roots only).
    fn sync_dirs(&self, files: &[FileInfo]) -> Result<(), LakeError> {
        let Some(root) = &self.local else {
            return Ok(());
        };
        let dirs: std::collections::BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| root.join(&f.path).parent().map(PathBuf::from))
            .collect();
        for d in dirs {
            std::fs::File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(|source| LakeError::Local {
                    path: d.display().to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Writes captured rows: one file per (hour of event time, partition).
    pub async fn write_raw(
        &self,
        schema: &StreamSchema,
        rows: &[Row],
    ) -> Result<Vec<FileInfo>, LakeError> {
        let mut groups: BTreeMap<(i64, u32), Vec<&Row>> = BTreeMap::new();
        for r in rows {
            groups
                .entry((r.record.ts.div_euclid(HOUR) * HOUR, r.partition))
                .or_default()
                .push(r);
        }
        let mut groups: Vec<((i64, u32), Vec<&Row>)> = groups.into_iter().collect();
        // Files hold their rows in log order.
        groups
            .iter_mut()
            .for_each(|(_, g)| g.sort_by_key(|r| r.offset));
        let encoded = encode_parallel(&groups, |rows| table::raw_batch(schema, rows))?;
        self.put_all(Table::Raw, &schema.name, encoded).await
    }

    /// Writes dead letters: one file per (hour of ingest time, partition).
    pub async fn write_dead_letters(
        &self,
        stream: &str,
        rows: &[DeadRow],
    ) -> Result<Vec<FileInfo>, LakeError> {
        let mut groups: BTreeMap<(i64, u32), Vec<&DeadRow>> = BTreeMap::new();
        for r in rows {
            groups
                .entry((r.ingest_time.div_euclid(HOUR) * HOUR, r.partition))
                .or_default()
                .push(r);
        }
        let mut groups: Vec<((i64, u32), Vec<&DeadRow>)> = groups.into_iter().collect();
        groups
            .iter_mut()
            .for_each(|(_, g)| g.sort_by_key(|r| r.offset));
        let encoded = encode_parallel(&groups, table::dead_batch)?;
        self.put_all(Table::DeadLetters, stream, encoded).await
    }

    async fn put_all(
        &self,
        table: Table,
        stream: &str,
        encoded: Vec<Encoded>,
    ) -> Result<Vec<FileInfo>, LakeError> {
        let mut out = Vec::with_capacity(encoded.len());
        for e in encoded {
            let mut path = self.table_prefix(table, stream);
            for part in hour_dir(e.hour).split('/') {
                path = path.join(part);
            }
            let path = path.join(format!(
                "part-p{:05}-{:020}-{:020}.parquet",
                e.partition, e.first, e.last
            ));
            let size = self.put_bytes(&path, e.bytes).await?;
            out.push(FileInfo {
                path: path.to_string(),
                size,
                partition: e.partition,
                first_offset: e.first,
                last_offset: e.last,
                hour: e.hour,
            });
        }
        self.sync_dirs(&out)?;
        Ok(out)
    }

    /// Files of a table, in (partition, offset) order; with a time range,
    /// only the hours that can hold rows in [from, to).
    pub async fn files(
        &self,
        table: Table,
        stream: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<FileInfo>, LakeError> {
        let prefix = self.table_prefix(table, stream);
        let metas: Vec<object_store::ObjectMeta> = self
            .timed(
                "listing files",
                self.store.list(Some(&prefix)).try_collect(),
            )
            .await?;
        let mut files: Vec<FileInfo> = metas
            .iter()
            .filter_map(|m| parse_file(m.location.as_ref(), m.size))
            .filter(|f| range.is_none_or(|(from, to)| f.hour + HOUR > from && f.hour < to))
            .collect();
        files.sort_by_key(|f| (f.partition, f.first_offset, f.hour));
        Ok(files)
    }

    /// Removes the files of `partition` holding offsets at or beyond
    /// `committed`: written by a capture that stopped before committing
    /// them. Returns how many went.
    pub async fn remove_uncommitted(
        &self,
        stream: &str,
        partition: u32,
        committed: u64,
    ) -> Result<usize, LakeError> {
        let mut removed = 0;
        for table in [Table::Raw, Table::DeadLetters] {
            for f in self.files(table, stream, None).await? {
                if f.partition == partition && f.last_offset >= committed {
                    let path = Path::from(f.path.as_str());
                    self.timed("removing a file", self.store.delete(&path))
                        .await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn read_file(&self, path: &str) -> Result<Bytes, LakeError> {
        let path = Path::from(path);
        self.timed("reading a file", async {
            self.store.get(&path).await?.bytes().await
        })
        .await
    }

    /// Scans a stream's raw table for event times in [from, to), file by
    /// file in log order (partition, then offset), so memory stays bounded
    /// by one file whatever the lake's size.
    pub async fn scan(&self, schema: &StreamSchema, from: i64, to: i64) -> Result<Scan, LakeError> {
        let files = self
            .files(Table::Raw, &schema.name, Some((from, to)))
            .await?;
        Ok(Scan {
            lake: self.clone(),
            schema: schema.clone(),
            files,
            next: 0,
            from,
            to,
            ahead: None,
        })
    }

    /// Writes labels: one file per hour they became known (the file names
    /// carry their first and last `seq`, so writing the same rows again
    /// replaces the file).
    pub async fn write_labels(
        &self,
        stream: &str,
        rows: &[LabelRow],
    ) -> Result<Vec<FileInfo>, LakeError> {
        let mut groups: BTreeMap<(i64, u32), Vec<&LabelRow>> = BTreeMap::new();
        for r in rows {
            groups
                .entry((r.label.known_at.div_euclid(HOUR) * HOUR, 0))
                .or_default()
                .push(r);
        }
        let mut groups: Vec<((i64, u32), Vec<&LabelRow>)> = groups.into_iter().collect();
        groups
            .iter_mut()
            .for_each(|(_, g)| g.sort_by_key(|r| r.seq));
        let encoded = encode_parallel(&groups, table::label_batch)?;
        self.put_all(Table::Labels, stream, encoded).await
    }

    /// Every label of a stream, in `seq` order.
    pub async fn labels(&self, stream: &str) -> Result<Vec<LabelRow>, LakeError> {
        let mut out = Vec::new();
        for f in self.files(Table::Labels, stream, None).await? {
            let bytes = self.read_file(&f.path).await?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                table::label_rows(&batch?, &mut out)?;
            }
        }
        out.sort_by_key(|r| r.seq);
        out.dedup_by_key(|r| r.seq);
        Ok(out)
    }

    /// Every dead letter of a stream.
    pub async fn dead_letters(&self, stream: &str) -> Result<Vec<DeadRow>, LakeError> {
        let mut out = Vec::new();
        for f in self.files(Table::DeadLetters, stream, None).await? {
            let bytes = self.read_file(&f.path).await?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                let batch = batch?;
                table::dead_rows(&batch, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The snapshot of a stream's raw files in [from, to).
    pub async fn snapshot(
        &self,
        stream: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Snapshot, LakeError> {
        let mut files = self.files(Table::Raw, stream, range).await?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut all = Sha256::new();
        let mut rows = 0u64;
        for f in &files {
            let bytes = self.read_file(&f.path).await?;
            let n = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?
                .metadata()
                .file_metadata()
                .num_rows() as u64;
            rows += n;
            let digest = Sha256::digest(&bytes);
            // Paths relative to the stream, so the id does not depend on
            // where the lake lives.
            let rel = f
                .path
                .rsplit_once(&format!("/{stream}/"))
                .map_or(f.path.as_str(), |(_, r)| r);
            all.update(format!("{rel}\t{}\t{n}\t", f.size).as_bytes());
            all.update(digest);
            all.update(b"\n");
        }
        let id = all.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Snapshot { id, rows, files })
    }
}

/// A scan in progress. While the caller works on one file, the next is
/// fetched and decoded on another thread.
pub struct Scan {
    lake: Lake,
    schema: StreamSchema,
    files: Vec<FileInfo>,
    next: usize,
    from: i64,
    to: i64,
    ahead: Option<tokio::task::JoinHandle<Result<Vec<Row>, LakeError>>>,
}

impl Scan {
    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }

    fn start(&self, i: usize) -> Option<tokio::task::JoinHandle<Result<Vec<Row>, LakeError>>> {
        let f = self.files.get(i)?;
        let (lake, schema, path, from, to) = (
            self.lake.clone(),
            self.schema.clone(),
            f.path.clone(),
            self.from,
            self.to,
        );
        Some(tokio::spawn(async move {
            let bytes = lake.read_file(&path).await?;
            tokio::task::spawn_blocking(move || {
                let mut rows = Vec::new();
                for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                    let batch = batch?;
                    table::raw_rows(&schema, &batch, &mut rows)?;
                }
                rows.retain(|r| r.record.ts >= from && r.record.ts < to);
                Ok(rows)
            })
            .await
            .map_err(|e| LakeError::Task(format!("decoding task failed: {e}")))?
        }))
    }

    /// The rows of the next file (in the time range), or None at the end.
    pub async fn next_file(&mut self) -> Result<Option<Vec<Row>>, LakeError> {
        let current = match self.ahead.take() {
            Some(h) => h,
            None => match self.start(self.next) {
                Some(h) => h,
                None => return Ok(None),
            },
        };
        self.next += 1;
        self.ahead = self.start(self.next);
        let rows = current
            .await
            .map_err(|e| LakeError::Task(format!("scan task failed: {e}")))??;
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests;
