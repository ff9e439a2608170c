//! SIGKILL a process that appends under load, at random moments, 25 times:
//! after each restart every acknowledged record is readable, in order, and
//! every visible record is whole.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use radar_core::Rng;
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};

const CHILD_ENV: &str = "RADAR_LOG_CRASH_CHILD";
const KEYS: u64 = 16;

/// The child: appends batches forever, printing each acknowledged record's
/// key, sequence number, partition and offset.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = EmbeddedLog::open(
        &dir,
        Options {
            segment_bytes: 64 << 10,
            ..Options::default()
        },
    )
    .unwrap();
    log.create_topic("t", 3).unwrap();
    // Continue each key's sequence where the last run's durable data ends.
    let mut seq: HashMap<u64, u64> = HashMap::new();
    for p in 0..3 {
        let (mut at, end) = log.offsets("t", p).unwrap();
        while at < end {
            let got = log.read("t", p, at, 10_000).unwrap();
            for s in &got {
                let (k, n) = parse(&s.record.value);
                seq.insert(k, n + 1);
            }
            at = got.last().map_or(end, |s| s.offset + 1);
        }
    }
    let mut rng = Rng::seed_from_u64(std::process::id() as u64);
    let stdout = std::io::stdout();
    loop {
        let n = 1 + rng.below(200) as usize;
        let batch: Vec<(u64, u64)> = (0..n)
            .map(|_| {
                let k = rng.below(KEYS);
                let s = seq.entry(k).or_insert(0);
                *s += 1;
                (k, *s - 1)
            })
            .collect();
        let records: Vec<Record> = batch
            .iter()
            .map(|(k, s)| {
                Record::new(
                    Some(format!("key{k}").as_bytes()),
                    format!("{k}:{s}:{}", "x".repeat(150)),
                    0,
                )
            })
            .collect();
        let acks = log.append("t", &records).unwrap();
        let mut out = stdout.lock();
        for ((k, s), (p, o)) in batch.iter().zip(acks) {
            writeln!(out, "{k} {s} {p} {o}").unwrap();
        }
        out.flush().unwrap();
    }
}

fn parse(value: &[u8]) -> (u64, u64) {
    let text = std::str::from_utf8(value).expect("utf-8 value");
    let mut parts = text.splitn(3, ':');
    let k = parts.next().unwrap().parse().unwrap();
    let s = parts.next().unwrap().parse().unwrap();
    assert_eq!(parts.next().map(str::len), Some(150), "record is whole");
    (k, s)
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seed_from_u64(7);
    let mut acked: Vec<(u64, u64, u32, u64)> = Vec::new();
    for round in 0..25 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Collect acks on a thread; kill at a random moment once appends run.
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let f: Vec<&str> = line.split(' ').collect();
                // The harness prints its own lines; acks have four numbers.
                if f.len() == 4
                    && let (Ok(k), Ok(s), Ok(p), Ok(o)) =
                        (f[0].parse(), f[1].parse(), f[2].parse(), f[3].parse())
                {
                    if lines.is_empty() {
                        let _ = first_tx.send(());
                    }
                    lines.push((k, s, p, o));
                }
            }
            lines
        });
        first_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child starts appending");
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked.extend(reader.join().unwrap());

        let log = EmbeddedLog::open(
            dir.path(),
            Options {
                segment_bytes: 64 << 10,
                ..Options::default()
            },
        )
        .unwrap();
        let mut stored: HashMap<(u32, u64), (u64, u64)> = HashMap::new();
        let mut last_seq: HashMap<u64, u64> = HashMap::new();
        for p in 0..3 {
            let (mut at, end) = log.offsets("t", p).unwrap();
            while at < end {
                let got = log.read("t", p, at, 10_000).unwrap();
                for s in &got {
                    let (k, n) = parse(&s.record.value);
                    if let Some(prev) = last_seq.insert(k, n) {
                        assert_eq!(n, prev + 1, "key {k}: sequence in order without gaps");
                    }
                    stored.insert((p, s.offset), (k, n));
                }
                at = got.last().map_or(end, |s| s.offset + 1);
            }
        }
        for &(k, s, p, o) in &acked {
            assert_eq!(
                stored.get(&(p, o)),
                Some(&(k, s)),
                "round {round}: acknowledged {k}:{s} at {p}/{o} is readable"
            );
        }
    }
    assert!(
        acked.len() > 1000,
        "{} records acknowledged over 25 crashes",
        acked.len()
    );
}
