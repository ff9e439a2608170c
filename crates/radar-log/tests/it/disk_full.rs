//! A full disk under the embedded log: appends are refused whole, nothing
//! acknowledged is lost, nothing torn is left behind.

use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::testing::SmallDisk;
use radar_log::{EventLog, Record};

fn event(n: u64) -> Record {
    // Varied sizes, so a failed write can end anywhere inside a frame.
    let pad = "x".repeat((n * 37 % 500) as usize);
    Record::new(
        Some(format!("k{}", n % 7).as_bytes()),
        format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"),
        n as i64,
    )
}

/// Every acknowledged (partition, offset) holds the record it was given,
/// and the log holds nothing else.
fn check(log: &EmbeddedLog, acked: &[((u32, u64), u64)]) {
    let mut found = 0;
    for p in 0..log.partitions("t").unwrap() {
        let (_, end) = log.offsets("t", p).unwrap();
        let mut at = 0;
        while at < end {
            let got = log.read("t", p, at, 1000).unwrap();
            found += got.len();
            at = got.last().map_or(end, |s| s.offset + 1);
        }
    }
    for &((p, o), n) in acked {
        let got = log.read("t", p, o, 1).unwrap();
        assert_eq!(
            got.first().map(|s| &s.record.value),
            Some(&event(n).value),
            "acknowledged record {n} at {p}/{o}"
        );
    }
    println!("acknowledged {}, found {found}", acked.len());
    assert_eq!(
        found,
        acked.len(),
        "the log holds records nobody was told of"
    );
}

/// The bug: a write cut short by a full disk left part of a frame at the end
/// of the segment, later appends were written (and acknowledged) after it,
/// and the next open truncated them with the torn frame.
#[test]
fn regression_disk_full_append_leaves_torn_frame_that_swallows_later_acks() {
    let disk = SmallDisk::mount(4 << 20).unwrap();
    let dir = disk.path().join("log");
    let mut acked = Vec::new();
    let mut n = 0u64;
    let mut refused = 0;
    {
        let log = EmbeddedLog::open(&dir, Options::default()).unwrap();
        log.create_topic("t", 2).unwrap();
        disk.fill(64 << 10).unwrap();
        // Append until the disk is full, and a few times more.
        while refused < 20 {
            let batch: Vec<Record> = (n..n + 13).map(event).collect();
            match log.append("t", &batch) {
                Ok(at) => acked.extend(at.into_iter().zip(n..n + 13)),
                Err(e) => {
                    assert!(e.is_storage_full(), "a full disk is reported as such: {e}");
                    refused += 1;
                }
            }
            n += 13;
        }
        // Space comes back: appends resume.
        disk.free().unwrap();
        for _ in 0..20 {
            let batch: Vec<Record> = (n..n + 10).map(event).collect();
            let at = log.append("t", &batch).unwrap();
            acked.extend(at.into_iter().zip(n..n + 10));
            n += 10;
        }
        check(&log, &acked);
    }
    let log = EmbeddedLog::open(&dir, Options::default()).unwrap();
    check(&log, &acked);
    // And the log goes on where it was.
    let at = log.append("t", &[event(n)]).unwrap();
    acked.extend(at.into_iter().zip([n]));
    check(&log, &acked);
}
