use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::conformance::{self, Harness};

struct Embedded {
    dir: tempfile::TempDir,
    options: Options,
    open: Mutex<Option<Arc<EmbeddedLog>>>,
    names: AtomicU32,
}

impl Embedded {
    fn new(options: Options) -> Embedded {
        Embedded {
            dir: tempfile::tempdir().unwrap(),
            options,
            open: Mutex::new(None),
            names: AtomicU32::new(0),
        }
    }
}

impl Harness for Embedded {
    fn log(&self) -> Arc<dyn EventLog> {
        let mut open = self.open.lock().unwrap();
        if open.is_none() {
            *open = Some(Arc::new(
                EmbeddedLog::open(self.dir.path(), self.options).unwrap(),
            ));
        }
        open.clone().unwrap()
    }
    fn reopen(&self) -> Arc<dyn EventLog> {
        let mut open = self.open.lock().unwrap();
        *open = None;
        let log = Arc::new(EmbeddedLog::open(self.dir.path(), self.options).unwrap());
        *open = Some(log.clone());
        log
    }
    fn unique(&self, base: &str) -> String {
        format!(
            "{base}-{}",
            self.names.fetch_add(1, AtomicOrdering::Relaxed)
        )
    }
    fn settle(&self) -> Duration {
        Duration::from_secs(5)
    }
}

#[test]
fn conformance_suite() {
    conformance::run_all(&Embedded::new(Options::default()));
}

#[test]
fn conformance_suite_with_tiny_segments() {
    // Every few records roll a segment: reads and recovery cross segments.
    conformance::run_all(&Embedded::new(Options {
        segment_bytes: 300,
        ..Options::default()
    }));
}

fn records(n: usize, key: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record::new(Some(key.as_bytes()), format!("value-{i}"), i as i64))
        .collect()
}

#[test]
fn a_second_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
    let err = EmbeddedLog::open(dir.path(), Options::default())
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("is locked"));
}

#[test]
fn a_torn_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
        log.create_topic("t", 1).unwrap();
        log.append("t", &records(10, "k")).unwrap();
    }
    let seg = dir.path().join("topics/t/0").join(segment::segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    // Append half of a record, as a crash mid-write leaves it.
    let mut torn = full.clone();
    let mut extra = Vec::new();
    segment::encode(
        &mut extra,
        10,
        &Record::new(Some(b"k"), "never acknowledged", 0),
    );
    torn.extend_from_slice(&extra[..extra.len() / 2]);
    std::fs::write(&seg, &torn).unwrap();
    let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 10));
    assert_eq!(
        std::fs::read(&seg).unwrap(),
        full,
        "the tail was cut back to the last whole record"
    );
    assert_eq!(log.read("t", 0, 0, 100).unwrap().len(), 10);
    // Appends continue after it.
    let acks = log.append("t", &records(1, "k")).unwrap();
    assert_eq!(acks, vec![(0, 10)]);
}

#[test]
fn a_bad_record_in_the_middle_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
        log.create_topic("t", 1).unwrap();
        log.append("t", &records(10, "k")).unwrap();
    }
    let seg = dir.path().join("topics/t/0").join(segment::segment_name(0));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[FRAME + 30] ^= 0xFF; // inside the first record's body
    std::fs::write(&seg, &bytes).unwrap();
    let err = EmbeddedLog::open(dir.path(), Options::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, LogError::Corrupt { position: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("refusing to skip it"), "{err}");
}

#[test]
fn retention_drops_old_segments_by_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        Options {
            segment_bytes: 1000,
            retention: Retention {
                max_bytes: Some(3000),
                max_age: None,
            },
        },
    )
    .unwrap();
    log.create_topic("t", 1).unwrap();
    for _ in 0..20 {
        log.append("t", &records(10, "k")).unwrap();
    }
    log.enforce_retention(0).unwrap();
    let (earliest, end) = log.offsets("t", 0).unwrap();
    assert_eq!(end, 200);
    assert!(earliest > 0, "old segments went");
    let err = log.read("t", 0, 0, 10).unwrap_err();
    assert!(matches!(err, LogError::OffsetRemoved { .. }), "{err}");
    assert_eq!(
        log.read("t", 0, earliest, 1000).unwrap().len() as u64,
        end - earliest
    );

    // A consumer of a group with no commit starts at the earliest kept.
    let mut c = log.consumer("t", "g").unwrap();
    let got = c.poll(1000, Duration::from_millis(10)).unwrap();
    assert_eq!(got.first().map(|s| s.offset), Some(earliest));

    let aged = Options {
        segment_bytes: 1000,
        retention: Retention {
            max_bytes: None,
            max_age: Some(Duration::from_secs(1)),
        },
    };
    drop(c);
    drop(log);
    let log = EmbeddedLog::open(dir.path(), aged).unwrap();
    // Timestamps are 0..9 µs: everything but the active segment is too old.
    log.enforce_retention(10_000_000).unwrap();
    let segments = std::fs::read_dir(dir.path().join("topics/t/0"))
        .unwrap()
        .count();
    assert_eq!(segments, 1, "only the active segment is left");
    let (earliest, end) = log.offsets("t", 0).unwrap();
    assert!(earliest > 150 && end == 200, "{earliest}..{end}");
}

/// The bug: retention was applied only when someone called
/// `enforce_retention`, which nothing did; the log grew without bound.
#[test]
fn regression_retention_never_enforced_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        Options {
            segment_bytes: 2000,
            retention: Retention {
                max_bytes: Some(10_000),
                max_age: None,
            },
        },
    )
    .unwrap();
    log.create_topic("t", 1).unwrap();
    for _ in 0..500 {
        log.append("t", &records(10, "k")).unwrap();
    }
    let on_disk: u64 = std::fs::read_dir(dir.path().join("topics/t/0"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    // Retention keeps whole segments: at most its budget plus the active
    // segment and the one that just rolled.
    assert!(on_disk <= 10_000 + 2 * 2_100, "{on_disk} bytes on disk");
    let (earliest, end) = log.offsets("t", 0).unwrap();
    assert_eq!(end, 5000);
    assert!(earliest > 4000, "earliest kept {earliest}");
}

#[test]
fn many_producers_and_consumers_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
    log.create_topic("t", 4).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    log.append(
                        "t",
                        &[Record::new(
                            Some(format!("w{w}").as_bytes()),
                            format!("{w}:{i}"),
                            0,
                        )],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    let mut c = log.consumer("t", "g").unwrap();
    let got = conformance::poll_n(c.as_mut(), 400, Duration::from_secs(10));
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(got.len(), 400);
    // Per writer (one key), values arrive in order.
    for w in 0..8 {
        let mine: Vec<usize> = got
            .iter()
            .filter_map(|s| {
                let v = String::from_utf8(s.record.value.to_vec()).unwrap();
                let (a, b) = v.split_once(':').unwrap();
                (a == w.to_string()).then(|| b.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..50).collect::<Vec<_>>());
    }
}

#[test]
fn bad_names_and_partition_mismatches_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        log.create_topic("../etc", 1),
        Err(LogError::BadName(_))
    ));
    assert!(matches!(log.create_topic("t", 0), Err(LogError::Config(_))));
    log.create_topic("t", 2).unwrap();
    assert!(matches!(
        log.create_topic("t", 3),
        Err(LogError::PartitionMismatch {
            existing: 2,
            requested: 3,
            ..
        })
    ));
    assert!(matches!(
        log.read("t", 5, 0, 1),
        Err(LogError::NoPartition { .. })
    ));
    assert!(matches!(
        log.append("nope", &records(1, "k")),
        Err(LogError::NoTopic(_))
    ));
}

/// With a backlog in every partition, one poll holds some of each (the
/// scorer feeds a batch's partitions in parallel; a batch of one
/// partition left the other core idle), and per partition the offsets
/// still come in order, each once.
#[test]
fn a_poll_takes_a_fair_share_of_every_backlogged_partition() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Options::default()).unwrap();
    log.create_topic("t", 4).unwrap();
    let records: Vec<Record> = (0..2000)
        .map(|i| Record::new(Some(format!("k{i}").as_bytes()), format!("{i}"), 0))
        .collect();
    log.append("t", &records).unwrap();
    let mut c = log.consumer("t", "g").unwrap();
    let first = c.poll(100, Duration::from_secs(5)).unwrap();
    assert_eq!(first.len(), 100);
    for p in 0..4 {
        let n = first.iter().filter(|s| s.partition == p).count();
        assert_eq!(n, 25, "partition {p} had {n} of the first 100");
    }
    let mut all = first;
    while all.len() < 2000 {
        let got = c.poll(333, Duration::from_secs(5)).unwrap();
        assert!(!got.is_empty());
        all.extend(got);
    }
    for p in 0..4 {
        let offsets: Vec<u64> = all
            .iter()
            .filter(|s| s.partition == p)
            .map(|s| s.offset)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
    }
}
