//! radar's event log: where events wait to be scored and captured.
//!
//! One trait, [`EventLog`], with two implementations: [`embedded::EmbeddedLog`]
//! (segment files on local disk, for one machine) and, behind the `kafka`
//! feature, [`kafka::KafkaLog`] (Apache Kafka, Redpanda, Azure Event Hubs'
//! Kafka endpoint, Confluent, MSK). Both pass the same conformance suite.
//!
//! The API is synchronous: appends block until durable, consumers poll with
//! a timeout. Async callers run it on blocking threads.

use std::time::Duration;

pub use bytes::Bytes;
use thiserror::Error;

pub mod conformance;
pub mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod retrying;

pub use radar_core::error::Classify;
use radar_core::error::ErrorKind;
#[cfg(feature = "testing")]
pub mod testing;

/// One record: an optional key (which picks the partition), a value, a
/// timestamp (UTC µs) and headers. Keys and values are [`Bytes`]: records
/// read from the log share the read buffer instead of each owning a copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    pub fn new(key: Option<&[u8]>, value: impl Into<Bytes>, timestamp: i64) -> Self {
        Record {
            key: key.map(Bytes::copy_from_slice),
            value: value.into(),
            timestamp,
            headers: Vec::new(),
        }
    }
}

/// A record as stored: where it is in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub partition: u32,
    pub offset: u64,
    pub record: Record,
}

#[derive(Debug, Error)]
pub enum LogError {
    #[error(
        "log directory `{path}` is locked by another process (or another open log in this one)"
    )]
    Locked { path: String },
    #[error("topic `{0}` does not exist")]
    NoTopic(String),
    #[error("topic `{topic}` has {partitions} partitions; partition {partition} does not exist")]
    NoPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("topic `{topic}` exists with {existing} partitions, not {requested}")]
    PartitionMismatch {
        topic: String,
        existing: u32,
        requested: u32,
    },
    #[error("corrupt record in `{path}` at byte {position}: {detail} (refusing to skip it)")]
    Corrupt {
        path: String,
        position: u64,
        detail: String,
    },
    #[error(
        "offset {offset} of {topic}/{partition} was removed by retention (earliest is {earliest})"
    )]
    OffsetRemoved {
        topic: String,
        partition: u32,
        offset: u64,
        earliest: u64,
    },
    #[error("i/o error on `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
    /// The member lost its partitions to a rebalance before it could
    /// commit (its group moved on, e.g. after a broker restart). What it
    /// read since the last commit is read again, from the committed
    /// offsets, by whoever holds each partition now (see
    /// [`Consumer::generation`]).
    #[error("the consumer group rebalanced before the commit: {0}")]
    Rebalanced(String),
    #[error("invalid log configuration: {0}")]
    Config(String),
    #[error("invalid name `{0}`: use letters, digits, `.`, `_` and `-`")]
    BadName(String),
}

impl LogError {
    /// Whether the disk (or a quota, or a file-size limit) is full: the
    /// append was refused whole and may succeed once space is freed.
    pub fn is_storage_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => is_storage_full(source),
            _ => false,
        }
    }
}

impl radar_core::error::Classify for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::Io { .. } | LogError::Kafka(_) => ErrorKind::Unavailable,
            LogError::Locked { .. } | LogError::Rebalanced(_) => ErrorKind::Conflict,
            LogError::NoTopic(_)
            | LogError::NoPartition { .. }
            | LogError::OffsetRemoved { .. } => ErrorKind::NotFound,
            LogError::PartitionMismatch { .. } | LogError::Config(_) | LogError::BadName(_) => {
                ErrorKind::Input
            }
            LogError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

/// Whether an I/O error says the storage is out of space.
pub fn is_storage_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
            | std::io::ErrorKind::FileTooLarge
    )
}

/// Which partition a keyed record goes to: stable for a key and a partition
/// count, so an entity's events stay on one partition.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    (radar_core::hash::hash64(key) % partitions.max(1) as u64) as u32
}

pub(crate) fn check_name(name: &str) -> Result<(), LogError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(LogError::BadName(name.to_owned()))
    }
}

/// The log.
pub trait EventLog: Send + Sync {
    /// Creates `topic` with `partitions` partitions; a no-op when it exists
    /// with that many.
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError>;

    fn partitions(&self, topic: &str) -> Result<u32, LogError>;

    /// Appends `records` and returns each one's (partition, offset) once all
    /// are durable. Keyed records go to [`partition_for`] their key.
    fn append(&self, topic: &str, records: &[Record]) -> Result<Vec<(u32, u64)>, LogError>;

    /// Up to `max` records of a partition from `offset` on (fewer at the end).
    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<Stored>, LogError>;

    /// (earliest offset still stored, offset the next append will get).
    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError>;

    /// A member of consumer group `group` on `topic`. Members of one group
    /// split the partitions; each starts from its group's committed offsets
    /// (the earliest stored, if none).
    fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError>;

    /// The next offset `group` will read from `partition`, if it committed.
    fn committed(&self, topic: &str, group: &str, partition: u32) -> Result<Option<u64>, LogError>;
}

/// A consumer-group member.
pub trait Consumer: Send {
    /// Records from the assigned partitions, waiting up to `timeout` for
    /// some. Advances the member's position, not the group's commit.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Stored>, LogError>;

    /// Durably commits, per partition, the next offset to read.
    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<(), LogError>;

    /// The partitions this member holds now.
    fn assignment(&mut self) -> Result<Vec<u32>, LogError>;

    /// Moves every time partitions are handed out anew, even the same
    /// ones: each held partition then reads on from the group's committed
    /// offset, so what the caller read but did not commit will come again
    /// and must be dropped (not kept beside its second copy).
    fn generation(&mut self) -> Result<u64, LogError>;

    /// Sets what runs when the group is about to take partitions from this
    /// member (a rebalance it takes part in; not when its membership was
    /// lost): the caller saves its state of those partitions and returns
    /// their next offsets, which are committed before the partitions move.
    /// It runs inside [`Consumer::poll`], on the caller's thread. Logs
    /// whose members learn of a rebalance only afterwards ignore it.
    fn on_revoke(&mut self, hook: RevokeHook) {
        let _ = hook;
    }
}

/// See [`Consumer::on_revoke`]: revoked partitions in, (partition, next
/// offset) to commit out.
pub type RevokeHook = Box<dyn FnMut(&[u32]) -> Vec<(u32, u64)> + Send>;
