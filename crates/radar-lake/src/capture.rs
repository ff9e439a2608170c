//! Capture: a consumer of a stream's log topic that writes every event to
//! the lake, valid ones to the raw table and refused ones to dead letters.
//!
//! Offsets are committed only after the files holding them are durable, so
//! a crash never loses an acknowledged event from the lake. When capture
//! (re)starts on a partition, files it wrote beyond the committed offset
//! are removed first, so the range is written once: no duplicate rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use radar_core::backoff::Retry;
use radar_core::decode::Decoder;
use radar_core::health::Health;
use radar_core::schema::StreamSchema;
use radar_log::{EventLog, Stored};
use rayon::prelude::*;

use crate::{DeadRow, Lake, LakeError, Row};

/// When capture rolls a batch of files.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub group: String,
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_age: Duration,
    /// Flush and return at the first poll that finds nothing new (a
    /// backfill of what the log holds, rather than a service).
    pub until_caught_up: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            group: "radar-capture".into(),
            max_rows: 200_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(10),
            until_caught_up: false,
        }
    }
}

/// What capture tells about itself as it runs: its health, and counts
/// for the metrics of whoever runs it (`radar up`). [`Health`] alone is
/// an observer that counts nothing.
pub trait Observer: Sync {
    fn health(&self) -> &Health;
    /// Records read from the log.
    fn received(&self, _n: u64) {}
    /// Rows and dead letters made durable in the lake.
    fn written(&self, _rows: u64, _dead_letters: u64) {}
    /// A dead letter filed, with its reason code (each is filed once).
    fn dead_letter(&self, _reason: &str) {}
    /// Valid events made durable in the lake (to index their ids).
    fn captured(&self, _rows: &[Row]) {}
}

impl Observer for Health {
    fn health(&self) -> &Health {
        self
    }
}

/// The record header that carries a dead letter's reason from the door
/// that refused it (HTTP ingest, `radar ingest`) to capture, which files
/// it: JSON `{"reason": code, "message": …, "field": …}`. Re-decoding the
/// raw bytes would not always find the same reason (a CSV row is not
/// JSON; `duplicate` depends on what came before).
pub const DEAD_LETTER_HEADER: &str = "radar-dead-letter";

/// A log record for an event refused at the door: its raw bytes, unkeyed,
/// with the reason in [`DEAD_LETTER_HEADER`].
pub fn dead_letter_record(
    dl: &radar_core::decode::DeadLetter,
    ingest_time: i64,
) -> radar_log::Record {
    let mut r = radar_log::Record::new(None, dl.raw.clone(), ingest_time);
    let why = serde_json::json!({
        "reason": dl.reason.code(),
        "message": dl.reason.to_string(),
        "field": dl.reason.field(),
    });
    r.headers
        .push((DEAD_LETTER_HEADER.to_owned(), why.to_string().into_bytes()));
    r
}

/// The reason a door wrote on a record, if it refused it.
fn door_reason(s: &Stored) -> Option<(String, String, Option<String>)> {
    let (_, v) = s
        .record
        .headers
        .iter()
        .find(|(name, _)| name == DEAD_LETTER_HEADER)?;
    let v: serde_json::Value = serde_json::from_slice(v).ok()?;
    Some((
        v["reason"].as_str()?.to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
        v["field"].as_str().map(str::to_owned),
    ))
}

/// What a capture run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub events: u64,
    pub dead_letters: u64,
    pub files: u64,
    pub commits: u64,
    pub removed_uncommitted_files: u64,
}

struct Pending {
    rows: Vec<Row>,
    dead: Vec<DeadRow>,
    next: BTreeMap<u32, u64>,
    bytes: usize,
    since: Option<Instant>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            rows: Vec::new(),
            dead: Vec::new(),
            next: BTreeMap::new(),
            bytes: 0,
            since: None,
        }
    }
    fn len(&self) -> usize {
        self.rows.len() + self.dead.len()
    }
}

/// How long a stopping capture reads on to empty the log.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Captures `topic` (the stream's events) until `stop` is set, then flushes
/// and returns. Blocking: runs lake writes on `rt`.
///
/// Storage that fails (errors, time-outs, a full disk) is retried with
/// backoff while `health` says `capture` is degraded and why; a batch whose
/// files could not be written stays buffered and is written again whole
/// before anything else is read, so offsets are never committed past what
/// is durable. On `stop` it first reads on until the log holds nothing
/// more (for up to [`DRAIN_GRACE`]), then the last flush is retried for a
/// grace period; what it could not write stays uncommitted in the log for
/// the next run.
#[allow(clippy::too_many_arguments)]
pub fn run(
    log: &dyn EventLog,
    lake: &Lake,
    schema: &StreamSchema,
    topic: &str,
    options: &CaptureOptions,
    stop: &AtomicBool,
    rt: &tokio::runtime::Handle,
    observer: &dyn Observer,
) -> Result<CaptureStats, LakeError> {
    let health = observer.health();
    let mut retry = Retry::new("capture", health, stop);
    let mut consumer = retry.run(|| log.consumer(topic, &options.group))?;
    let decoder = Decoder::new(schema.clone());
    let mut stats = CaptureStats::default();
    let mut held: BTreeSet<u32> = BTreeSet::new();
    let mut generation = None;
    // The generation a rebalance took the partitions from, until the next.
    let mut stale = None;
    let mut pending = Pending::new();
    let mut caught_up = false;
    // Asked to stop, capture first reads on until the log has nothing more
    // (within a grace): what was acknowledged reaches the lake now, not at
    // the next start.
    let mut drain: Option<std::time::Instant> = None;
    let mut drained = false;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let asked = stop.load(Ordering::Relaxed);
        if asked && drain.is_none() {
            drain = Some(std::time::Instant::now());
        }
        let draining = asked && !drained && drain.is_some_and(|t| t.elapsed() < DRAIN_GRACE);
        let stopping = (asked && !draining) || caught_up;
        // Newly held partitions: clear what an earlier run wrote but did not
        // commit. Partitions lost to another member: drop their buffer (the
        // new holder re-reads from the commit). A new generation re-reads
        // every held partition from its commit: all are new then.
        let now_generation = retry.run(|| consumer.generation())?;
        if stale == Some(now_generation) {
            // Lost the group (see below): until it hands out partitions
            // again, what comes is read past what is durable; drop it.
            if stopping {
                return Ok(stats);
            }
            retry.run(|| consumer.poll(10_000, Duration::from_millis(100)))?;
            continue;
        }
        stale = None;
        if generation != Some(now_generation) {
            generation = Some(now_generation);
            held.clear();
            pending = Pending::new();
        }
        let now_held: BTreeSet<u32> = retry.run(|| consumer.assignment())?.into_iter().collect();
        if now_held != held {
            for &p in now_held.difference(&held) {
                let removed = retry.run(|| {
                    let committed = log.committed(topic, &options.group, p)?.unwrap_or(0);
                    rt.block_on(lake.remove_uncommitted(&schema.name, p, committed))
                })?;
                stats.removed_uncommitted_files += removed as u64;
            }
            pending.rows.retain(|r| now_held.contains(&r.partition));
            pending.dead.retain(|r| now_held.contains(&r.partition));
            pending.next.retain(|p, _| now_held.contains(p));
            held = now_held;
        }
        let batch: Vec<Stored> = if stopping {
            Vec::new()
        } else if draining {
            // No retries while stopping: a log that fails now keeps the
            // rest for the next run.
            // Drained once polls have come back empty for half a second
            // (a Kafka fetch can come back empty with records behind it).
            match consumer.poll(10_000, Duration::from_millis(100)) {
                Ok(b) if !b.is_empty() => {
                    quiet_since = None;
                    b
                }
                Ok(_)
                    if quiet_since.get_or_insert_with(Instant::now).elapsed()
                        < Duration::from_millis(500) =>
                {
                    Vec::new()
                }
                _ => {
                    drained = true;
                    Vec::new()
                }
            }
        } else {
            retry.run(|| consumer.poll(10_000, Duration::from_millis(100)))?
        };
        if batch.is_empty() && options.until_caught_up && !held.is_empty() {
            caught_up = true;
        }
        // Decoding is the per-event work: spread it over the cores, then
        // file the results in log order.
        observer.received(batch.len() as u64);
        let decoded: Vec<(
            Stored,
            Result<radar_core::decode::Record, radar_core::decode::DeadLetter>,
        )> = batch
            .into_par_iter()
            .filter(|s| held.contains(&s.partition))
            .map_init(
                || decoder.clone(),
                |d, s| {
                    let r = d.decode_json(&s.record.value, s.record.timestamp);
                    (s, r)
                },
            )
            .collect();
        for (s, result) in decoded {
            pending.since.get_or_insert_with(Instant::now);
            pending.bytes += s.record.value.len();
            pending.next.insert(s.partition, s.offset + 1);
            let ingest_time = s.record.timestamp;
            // A door's reason wins over what decoding the raw bytes says.
            let result = match (door_reason(&s), result) {
                (Some((reason, message, field)), _) => Err((reason, message, field)),
                (None, Ok(record)) => Ok(record),
                (None, Err(dl)) => Err((
                    dl.reason.code().to_owned(),
                    dl.reason.to_string(),
                    dl.reason.field().map(str::to_owned),
                )),
            };
            match result {
                Ok(record) => pending.rows.push(Row {
                    partition: s.partition,
                    offset: s.offset,
                    ingest_time,
                    record,
                }),
                Err((reason, message, field)) => pending.dead.push(DeadRow {
                    partition: s.partition,
                    offset: s.offset,
                    ingest_time,
                    reason,
                    message,
                    field,
                    raw: s.record.value.to_vec(),
                }),
            }
        }
        let due = pending.len() >= options.max_rows
            || pending.bytes >= options.max_bytes
            || pending
                .since
                .is_some_and(|t| t.elapsed() >= options.max_age)
            || stopping
            || drained
            || caught_up;
        if due && !pending.next.is_empty() {
            // Retried whole: the same rows make the same file names, so a
            // file written before a failure is overwritten, not doubled.
            let flushed = retry.run(|| {
                let files = rt.block_on(async {
                    let mut n = lake.write_raw(schema, &pending.rows).await?.len();
                    n += lake
                        .write_dead_letters(&schema.name, &pending.dead)
                        .await?
                        .len();
                    Ok::<_, LakeError>(n)
                })?;
                // Files are durable: now the offsets may be committed.
                let positions: Vec<(u32, u64)> =
                    pending.next.iter().map(|(&p, &o)| (p, o)).collect();
                consumer.commit(&positions)?;
                Ok::<_, LakeError>(files)
            });
            let files = match flushed {
                Ok(files) => files,
                // The group moved on before the commit: these rows will be
                // read again from the commit (and their files, beyond it,
                // removed first) by whoever holds the partitions now.
                Err(LakeError::Log(radar_log::LogError::Rebalanced(reason))) => {
                    health.degraded(
                        "capture",
                        format!("{reason}; reading again from the commit"),
                    );
                    stale = generation;
                    pending = Pending::new();
                    continue;
                }
                Err(e) => return Err(e),
            };
            observer.written(pending.rows.len() as u64, pending.dead.len() as u64);
            observer.captured(&pending.rows);
            for d in &pending.dead {
                observer.dead_letter(&d.reason);
            }
            stats.events += pending.rows.len() as u64;
            stats.dead_letters += pending.dead.len() as u64;
            stats.files += files as u64;
            stats.commits += 1;
            pending = Pending::new();
        }
        if stopping || (caught_up && pending.next.is_empty()) {
            return Ok(stats);
        }
    }
}
