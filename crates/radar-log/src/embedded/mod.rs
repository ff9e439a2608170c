//! The embedded log: segment files on local disk.
//!
//! ```text
//! <root>/LOCK                                  held while the log is open
//! <root>/topics/<topic>/partitions             partition count
//! <root>/topics/<topic>/<p>/<base>.log         segments, records framed with length + CRC32C
//! <root>/groups/<group>/<topic>                committed offsets (written atomically)
//! ```
//!
//! Appends are group-committed: each appender writes its records under the
//! partition's lock, then waits for an `fsync` that covers them; while one
//! `fsync` runs, later appenders queue behind it and the next one covers them
//! all. An append returns only once its records are durable, and readers see
//! only durable records. On open, a torn tail (an interrupted write, never
//! acknowledged) is truncated; a bad record with good ones after it is
//! reported as corruption, never skipped.

mod segment;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use segment::{FRAME, MAX_RECORD, Segment, io, sync_dir};

use crate::{Consumer, EventLog, LogError, Record, Stored, check_name, partition_for};

/// When old segments are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many bytes per partition (whole segments go).
    pub max_bytes: Option<u64>,
    /// Delete segments whose newest record is older (by record timestamp).
    pub max_age: Option<Duration>,
}

/// Options of the embedded log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A segment is sealed and a new one started beyond this size.
    pub segment_bytes: u64,
    pub retention: Retention,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 128 << 20,
            retention: Retention {
                max_bytes: None,
                max_age: None,
            },
        }
    }
}

/// A partition's segments; the last is the active one.
struct Segments {
    list: Vec<Segment>,
    /// Moves on every rollback: offsets handed out in an earlier epoch at
    /// or beyond a rollback point were taken back.
    epoch: u64,
}

/// What one append wrote to a partition.
struct Written {
    first: u64,
    /// One past the last offset.
    end: u64,
    epoch: u64,
    /// The active segment's length before the write.
    len_before: u64,
}

/// The end of the last good `fsync`, and the rollbacks since.
struct SyncState {
    /// Offsets below this are durable.
    offset: u64,
    /// The segment that fsync covered, and its length then.
    base: u64,
    len: u64,
    /// (epoch after, offset rolled back to), the last few.
    rollbacks: Vec<(u64, u64)>,
}

impl SyncState {
    /// Whether a rollback took back some of what `w` wrote.
    fn lost(&self, w: &Written) -> bool {
        self.rollbacks
            .iter()
            .any(|&(epoch, offset)| epoch > w.epoch && offset < w.end)
    }
}

fn rolled_back(dir: &Path) -> LogError {
    LogError::Io {
        path: dir.display().to_string(),
        source: std::io::Error::other(
            "an fsync failed after these records were written; they were rolled back",
        ),
    }
}

struct Partition {
    dir: PathBuf,
    /// Writers append under this lock; readers take it shared.
    segments: RwLock<Segments>,
    /// Offsets below this are durable (and visible).
    durable: AtomicU64,
    /// Serialises fsyncs; holds what the last good one covered.
    sync: Mutex<SyncState>,
    /// Signalled when `durable` moves, for waiting consumers.
    grew: (Mutex<()>, Condvar),
}

impl Partition {
    fn open(dir: PathBuf) -> Result<Partition, LogError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut bases: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(base) = base {
                bases.push((base, path));
            }
        }
        bases.sort();
        let n = bases.len();
        let mut list = Vec::with_capacity(n.max(1));
        for (i, (base, path)) in bases.into_iter().enumerate() {
            let seg = Segment::open(path, base, i + 1 == n)?;
            if let Some(prev) = list.last()
                && Segment::next_of(prev) != base
            {
                return Err(LogError::Corrupt {
                    path: seg.path.display().to_string(),
                    position: 0,
                    detail: format!(
                        "segment starts at offset {base}, the previous one ends at {}",
                        Segment::next_of(prev)
                    ),
                });
            }
            list.push(seg);
        }
        if list.is_empty() {
            list.push(Segment::create(&dir, 0)?);
        }
        let (end, base, len) = list.last().map_or((0, 0, 0), |s| (s.next, s.base, s.len));
        Ok(Partition {
            dir,
            segments: RwLock::new(Segments { list, epoch: 0 }),
            durable: AtomicU64::new(end),
            sync: Mutex::new(SyncState {
                offset: end,
                base,
                len,
                rollbacks: Vec::new(),
            }),
            grew: (Mutex::new(()), Condvar::new()),
        })
    }

    fn earliest(&self) -> u64 {
        self.segments
            .read()
            .map(|s| s.list.first().map_or(0, |f| f.base))
            .unwrap_or(0)
    }

    /// Writes `records` at the end of `segs` (this partition's, locked; not
    /// yet durable).
    fn write(
        &self,
        segs: &mut Segments,
        records: &[&Record],
        options: &Options,
    ) -> Result<Written, LogError> {
        let mut buf = Vec::with_capacity(records.iter().map(|r| segment::framed_len(r)).sum());
        let active = segs.list.last().ok_or_else(poisoned)?;
        if active.len >= options.segment_bytes && active.next > active.base {
            // Seal the active segment (durable first) and start a new one.
            active.file.sync_data().map_err(io(&active.path))?;
            let next = active.next;
            let seg = Segment::create(&self.dir, next)?;
            segs.list.push(seg);
            // Retention is applied as segments roll, so disk use stays
            // bounded while the log is written.
            Self::enforce_locked(segs, &options.retention, radar_core::time::now_micros())?;
        }
        let epoch = segs.epoch;
        let active = segs.list.last_mut().ok_or_else(poisoned)?;
        let (first, len_before) = (active.next, active.len);
        for (i, r) in records.iter().enumerate() {
            segment::encode(&mut buf, first + i as u64, r);
        }
        active.append(&buf, records)?;
        Ok(Written {
            first,
            end: active.next,
            epoch,
            len_before,
        })
    }

    /// Returns once every offset below `written.end` is durable. When an
    /// `fsync` fails, the active segment is rolled back to what the last
    /// good one covered (the kernel may have dropped the pages it could not
    /// write, and a later `fsync` would not say so), and every append that
    /// wrote past that point fails: none of them was acknowledged.
    fn sync_through(&self, written: &Written) -> Result<(), LogError> {
        // Group commit: one fsync of the active segment covers every record
        // written before it (sealed segments were synced when they rolled).
        let mut sync = self.sync.lock().map_err(|_| poisoned())?;
        if sync.lost(written) {
            return Err(rolled_back(&self.dir));
        }
        if sync.offset >= written.end {
            return Ok(());
        }
        let (file, covered) = {
            let segs = self.segments.read().map_err(|_| poisoned())?;
            let active = segs.list.last().ok_or_else(poisoned)?;
            (
                active.file.try_clone().map_err(io(&active.path))?,
                (active.next, active.base, active.len),
            )
        };
        if let Err(e) = file.sync_data() {
            self.roll_back(&mut sync)?;
            return Err(io(&self.dir)(e));
        }
        (sync.offset, sync.base, sync.len) = covered;
        self.durable.fetch_max(covered.0, Ordering::Release);
        let _g = self.grew.0.lock();
        self.grew.1.notify_all();
        Ok(())
    }

    /// Cuts the active segment back to the end of the last good `fsync`.
    fn roll_back(&self, sync: &mut SyncState) -> Result<(), LogError> {
        let mut segs = self.segments.write().map_err(|_| poisoned())?;
        segs.epoch += 1;
        let epoch = segs.epoch;
        let active = segs.list.last_mut().ok_or_else(poisoned)?;
        // A good fsync in an earlier segment means this one holds nothing
        // durable yet (sealing synced everything before it).
        let (offset, len) = if sync.base == active.base {
            (sync.offset, sync.len)
        } else {
            (active.base, 0)
        };
        sync.rollbacks.push((epoch, offset));
        if sync.rollbacks.len() > 64 {
            sync.rollbacks.remove(0);
        }
        active.roll_back(offset, len)
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<Stored>, LogError> {
        let end = self.durable.load(Ordering::Acquire);
        let segs = self.segments.read().map_err(|_| poisoned())?;
        let earliest = segs.list.first().map_or(0, |s| s.base);
        if offset < earliest {
            return Err(LogError::OffsetRemoved {
                topic: topic.to_owned(),
                partition,
                offset,
                earliest,
            });
        }
        let mut out = Vec::with_capacity(max.min(end.saturating_sub(offset) as usize));
        let start = segs
            .list
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        for seg in &segs.list[start..] {
            if out.len() >= max || seg.base >= end {
                break;
            }
            let from = out.last().map_or(offset, |s: &Stored| s.offset + 1);
            seg.read(partition, from, end, max, &mut out)?;
        }
        Ok(out)
    }

    /// Deletes whole old segments per the retention rules (never the active
    /// one).
    fn enforce(&self, retention: &Retention, now_micros: i64) -> Result<(), LogError> {
        let mut segs = self.segments.write().map_err(|_| poisoned())?;
        Self::enforce_locked(&mut segs, retention, now_micros)
    }

    fn enforce_locked(
        segs: &mut Segments,
        retention: &Retention,
        now_micros: i64,
    ) -> Result<(), LogError> {
        loop {
            if segs.list.len() < 2 {
                return Ok(());
            }
            let total: u64 = segs.list.iter().map(|s| s.len).sum();
            let first = &segs.list[0];
            let too_big = retention.max_bytes.is_some_and(|m| total > m);
            let too_old = retention.max_age.is_some_and(|age| {
                first.max_timestamp < now_micros.saturating_sub(age.as_micros() as i64)
            });
            if !(too_big || too_old) {
                return Ok(());
            }
            let gone = segs.list.remove(0);
            std::fs::remove_file(&gone.path).map_err(io(&gone.path))?;
        }
    }
}

impl Segment {
    fn next_of(s: &Segment) -> u64 {
        s.next
    }
}

fn poisoned() -> LogError {
    LogError::Io {
        path: String::new(),
        source: std::io::Error::other("a thread panicked while holding the log's lock"),
    }
}

struct Topic {
    partitions: Vec<Partition>,
    round_robin: AtomicU64,
}

/// Members of one consumer group on one topic.
#[derive(Default)]
struct Group {
    members: Vec<u64>,
    generation: u64,
}

struct Inner {
    root: PathBuf,
    options: Options,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    groups: Mutex<HashMap<(String, String), Group>>,
    next_member: AtomicU64,
    /// Serialises topic creation and offset commits.
    admin: Mutex<()>,
    _lock: File,
}

/// The embedded log. Cheap to clone; clones share the open log.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let dir = path
        .parent()
        .ok_or_else(|| LogError::Config(format!("`{}` has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

impl EmbeddedLog {
    /// Opens (creating) the log in `root`. Fails with [`LogError::Locked`]
    /// when another open log holds it.
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<EmbeddedLog, LogError> {
        let root = root.as_ref().to_path_buf();
        if options.segment_bytes == 0 {
            return Err(LogError::Config("segment_bytes must be at least 1".into()));
        }
        std::fs::create_dir_all(root.join("topics")).map_err(io(&root))?;
        let lock_path = root.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(LogError::Locked {
                path: root.display().to_string(),
            });
        }
        let log = EmbeddedLog {
            inner: Arc::new(Inner {
                root: root.clone(),
                options,
                topics: RwLock::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                next_member: AtomicU64::new(1),
                admin: Mutex::new(()),
                _lock: lock,
            }),
        };
        let topics_dir = root.join("topics");
        for entry in std::fs::read_dir(&topics_dir).map_err(io(&topics_dir))? {
            let entry = entry.map_err(io(&topics_dir))?;
            if let Some(name) = entry.file_name().to_str()
                && entry.path().join("partitions").is_file()
            {
                log.load_topic(name)?;
            }
        }
        Ok(log)
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn load_topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        let dir = self.inner.root.join("topics").join(name);
        let meta = dir.join("partitions");
        let text = std::fs::read_to_string(&meta).map_err(io(&meta))?;
        let n: u32 = text.trim().parse().map_err(|_| {
            LogError::Config(format!(
                "`{}` does not hold a partition count",
                meta.display()
            ))
        })?;
        let partitions = (0..n)
            .map(|p| Partition::open(dir.join(p.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(Topic {
            partitions,
            round_robin: AtomicU64::new(0),
        });
        self.inner
            .topics
            .write()
            .map_err(|_| poisoned())?
            .insert(name.to_owned(), topic.clone());
        Ok(topic)
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.inner
            .topics
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::NoTopic(name.to_owned()))
    }

    fn partition<'t>(topic: &'t Topic, name: &str, p: u32) -> Result<&'t Partition, LogError> {
        topic
            .partitions
            .get(p as usize)
            .ok_or_else(|| LogError::NoPartition {
                topic: name.to_owned(),
                partition: p,
                partitions: topic.partitions.len() as u32,
            })
    }

    /// Applies retention now (segments also roll at `segment_bytes`).
    pub fn enforce_retention(&self, now_micros: i64) -> Result<(), LogError> {
        let topics: Vec<Arc<Topic>> = self
            .inner
            .topics
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect();
        for t in topics {
            for p in &t.partitions {
                p.enforce(&self.inner.options.retention, now_micros)?;
            }
        }
        Ok(())
    }

    /// Names of the topics.
    pub fn topics(&self) -> Result<Vec<String>, LogError> {
        let mut names: Vec<String> = self
            .inner
            .topics
            .read()
            .map_err(|_| poisoned())?
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(names)
    }

    fn offsets_path(&self, group: &str, topic: &str) -> PathBuf {
        self.inner.root.join("groups").join(group).join(topic)
    }

    fn load_committed(&self, group: &str, topic: &str) -> Result<HashMap<u32, u64>, LogError> {
        let path = self.offsets_path(group, topic);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut out = HashMap::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(p, o)| Some((p.parse::<u32>().ok()?, o.parse::<u64>().ok()?)));
            match parsed {
                Some((p, o)) => {
                    out.insert(p, o);
                }
                None => {
                    return Err(LogError::Corrupt {
                        path: path.display().to_string(),
                        position: 0,
                        detail: format!("unreadable committed offset line `{line}`"),
                    });
                }
            }
        }
        Ok(out)
    }

    fn join(&self, topic: &str, group: &str) -> Result<u64, LogError> {
        let id = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let mut groups = self.inner.groups.lock().map_err(|_| poisoned())?;
        let g = groups
            .entry((topic.to_owned(), group.to_owned()))
            .or_default();
        g.members.push(id);
        g.generation += 1;
        Ok(id)
    }

    fn leave(&self, topic: &str, group: &str, id: u64) {
        if let Ok(mut groups) = self.inner.groups.lock()
            && let Some(g) = groups.get_mut(&(topic.to_owned(), group.to_owned()))
        {
            g.members.retain(|&m| m != id);
            g.generation += 1;
        }
    }

    /// (generation, this member's partitions): partitions are dealt out in
    /// ranges to members in joining order.
    fn assignment_of(
        &self,
        topic: &str,
        group: &str,
        id: u64,
        partitions: u32,
    ) -> Result<(u64, Vec<u32>), LogError> {
        let groups = self.inner.groups.lock().map_err(|_| poisoned())?;
        let g = groups
            .get(&(topic.to_owned(), group.to_owned()))
            .ok_or_else(|| LogError::Config("consumer left its group".into()))?;
        let n = g.members.len() as u32;
        let i = g.members.iter().position(|&m| m == id).unwrap_or(0) as u32;
        let (base, extra) = (partitions / n, partitions % n);
        let start = i * base + i.min(extra);
        let count = base + (i < extra) as u32;
        Ok((g.generation, (start..start + count).collect()))
    }
}

impl EventLog for EmbeddedLog {
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        check_name(topic)?;
        if partitions == 0 || partitions > 10_000 {
            return Err(LogError::Config(format!(
                "a topic needs 1 to 10000 partitions, got {partitions}"
            )));
        }
        // Serialise creators on the topic map's write lock.
        let existing = self
            .inner
            .topics
            .read()
            .map_err(|_| poisoned())?
            .get(topic)
            .cloned();
        if let Some(t) = existing {
            let n = t.partitions.len() as u32;
            return if n == partitions {
                Ok(())
            } else {
                Err(LogError::PartitionMismatch {
                    topic: topic.to_owned(),
                    existing: n,
                    requested: partitions,
                })
            };
        }
        let guard = self.inner.admin.lock().map_err(|_| poisoned())?;
        if self
            .inner
            .topics
            .read()
            .map_err(|_| poisoned())?
            .contains_key(topic)
        {
            // Created meanwhile by another caller: check its partition count.
            drop(guard);
            return self.create_topic(topic, partitions);
        }
        let dir = self.inner.root.join("topics").join(topic);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        write_atomically(&dir.join("partitions"), partitions.to_string().as_bytes())?;
        self.load_topic(topic)?;
        Ok(())
    }

    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    fn append(&self, topic: &str, records: &[Record]) -> Result<Vec<(u32, u64)>, LogError> {
        let t = self.topic(topic)?;
        let n = t.partitions.len() as u32;
        for r in records {
            if segment::framed_len(r) - FRAME > MAX_RECORD {
                return Err(LogError::Config(format!(
                    "a record of {} bytes is over the {MAX_RECORD}-byte limit",
                    r.value.len()
                )));
            }
        }
        let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); n as usize];
        for (i, r) in records.iter().enumerate() {
            let p = match &r.key {
                Some(k) => partition_for(k, n),
                None => (t.round_robin.fetch_add(1, Ordering::Relaxed) % n as u64) as u32,
            };
            by_partition[p as usize].push(i);
        }
        // Write every partition's share under all their locks (taken in
        // partition order), so that a share refused by a full disk takes the
        // shares written before it back with it: the append is all or
        // nothing. Then wait for durability outside the locks: the fsyncs of
        // one call also cover what other callers wrote meanwhile.
        let involved: Vec<usize> = (0..n as usize)
            .filter(|&p| !by_partition[p].is_empty())
            .collect();
        let mut guards = Vec::with_capacity(involved.len());
        for &p in &involved {
            guards.push(t.partitions[p].segments.write().map_err(|_| poisoned())?);
        }
        let mut out = vec![(0, 0); records.len()];
        let mut written: Vec<(usize, Written)> = Vec::with_capacity(involved.len());
        for (k, &p) in involved.iter().enumerate() {
            let batch: Vec<&Record> = by_partition[p].iter().map(|&i| &records[i]).collect();
            match t.partitions[p].write(&mut guards[k], &batch, &self.inner.options) {
                Ok(w) => written.push((p, w)),
                Err(e) => {
                    for (j, (_, w)) in written.iter().enumerate() {
                        // Nobody wrote after these (their locks are held).
                        let active = guards[j].list.last_mut().ok_or_else(poisoned)?;
                        active.roll_back(w.first, w.len_before)?;
                    }
                    return Err(e);
                }
            }
        }
        drop(guards);
        for (p, w) in &written {
            for (k, &i) in by_partition[*p].iter().enumerate() {
                out[i] = (*p as u32, w.first + k as u64);
            }
            t.partitions[*p].sync_through(w)?;
        }
        Ok(out)
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<Stored>, LogError> {
        let t = self.topic(topic)?;
        Self::partition(&t, topic, partition)?.read(topic, partition, offset, max)
    }

    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError> {
        let t = self.topic(topic)?;
        let p = Self::partition(&t, topic, partition)?;
        Ok((p.earliest(), p.durable.load(Ordering::Acquire)))
    }

    fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError> {
        check_name(group)?;
        let t = self.topic(topic)?;
        let id = self.join(topic, group)?;
        Ok(Box::new(EmbeddedConsumer {
            log: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            id,
            partitions: t.partitions.len() as u32,
            generation: u64::MAX,
            positions: Vec::new(),
            next: 0,
        }))
    }

    fn committed(&self, topic: &str, group: &str, partition: u32) -> Result<Option<u64>, LogError> {
        Ok(self.load_committed(group, topic)?.get(&partition).copied())
    }
}

struct EmbeddedConsumer {
    log: EmbeddedLog,
    topic: String,
    group: String,
    id: u64,
    partitions: u32,
    generation: u64,
    /// (partition, next offset to read) for the current assignment.
    positions: Vec<(u32, u64)>,
    /// Round-robin start among assigned partitions.
    next: usize,
}

impl EmbeddedConsumer {
    /// Picks up a rebalance: newly held partitions start from the group's
    /// committed offsets.
    fn refresh(&mut self) -> Result<(), LogError> {
        let (generation, assigned) =
            self.log
                .assignment_of(&self.topic, &self.group, self.id, self.partitions)?;
        if generation == self.generation {
            return Ok(());
        }
        let committed = self.log.load_committed(&self.group, &self.topic)?;
        let t = self.log.topic(&self.topic)?;
        self.positions = assigned
            .into_iter()
            .map(|p| {
                let earliest = t.partitions[p as usize].earliest();
                (
                    p,
                    committed.get(&p).copied().unwrap_or(earliest).max(earliest),
                )
            })
            .collect();
        self.generation = generation;
        Ok(())
    }
}

impl Consumer for EmbeddedConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Stored>, LogError> {
        let deadline = Instant::now() + timeout;
        let t = self.log.topic(&self.topic)?;
        loop {
            self.refresh()?;
            let mut out = Vec::new();
            let n = self.positions.len();
            // A fair share of `max` from each partition first, then what is
            // left from any: a backlog in one partition does not make a
            // batch of that partition alone (the scorer feeds a batch's
            // partitions in parallel).
            let share = max.div_ceil(n.max(1));
            for quota in [share, max] {
                // A partition that gave less than its quota has no more.
                let mut any_full = false;
                for k in 0..n {
                    if out.len() >= max {
                        break;
                    }
                    let i = (self.next + k) % n;
                    let (p, pos) = self.positions[i];
                    let part = &t.partitions[p as usize];
                    let pos = pos.max(part.earliest());
                    let limit = quota.min(max - out.len());
                    let got = part.read(&self.topic, p, pos, limit)?;
                    if let Some(last) = got.last() {
                        self.positions[i].1 = last.offset + 1;
                    }
                    any_full |= got.len() == limit;
                    out.extend(got);
                }
                if !any_full || out.len() >= max {
                    break;
                }
            }
            if n > 0 {
                self.next = (self.next + 1) % n;
            }
            if !out.is_empty() {
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(out);
            }
            // Wait for an append to any partition (bounded, to notice
            // rebalances).
            let wait = (deadline - now).min(Duration::from_millis(20));
            match self.positions.first() {
                Some(&(p, _)) => {
                    let part = &t.partitions[p as usize];
                    let g = part.grew.0.lock().map_err(|_| poisoned())?;
                    let _ = part.grew.1.wait_timeout(g, wait).map_err(|_| poisoned())?;
                }
                None => std::thread::sleep(wait),
            }
        }
    }

    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<(), LogError> {
        let _admin = self.log.inner.admin.lock().map_err(|_| poisoned())?;
        let mut committed = self.log.load_committed(&self.group, &self.topic)?;
        for &(p, o) in positions {
            if p >= self.partitions {
                return Err(LogError::NoPartition {
                    topic: self.topic.clone(),
                    partition: p,
                    partitions: self.partitions,
                });
            }
            committed.insert(p, o);
        }
        let mut lines: Vec<(u32, u64)> = committed.into_iter().collect();
        lines.sort();
        let text: String = lines.iter().map(|(p, o)| format!("{p} {o}\n")).collect();
        write_atomically(
            &self.log.offsets_path(&self.group, &self.topic),
            text.as_bytes(),
        )
    }

    fn assignment(&mut self) -> Result<Vec<u32>, LogError> {
        self.refresh()?;
        Ok(self.positions.iter().map(|&(p, _)| p).collect())
    }

    fn generation(&mut self) -> Result<u64, LogError> {
        self.refresh()?;
        Ok(self.generation)
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.log.leave(&self.topic, &self.group, self.id);
    }
}

#[cfg(test)]
mod tests;
