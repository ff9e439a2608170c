//! Appending a batch so that a failure part-way neither loses nor doubles
//! records: after a failed append, what of the batch reached the log is
//! read back, and only the rest is appended again.
//!
//! An append that spans partitions can fail after some partitions took
//! their share. Re-sending the whole batch would store those twice; giving
//! up would leave the caller unable to say where to resume. Reading each
//! touched partition from where it ended before the append tells which
//! records arrived (by key and bytes, in order). With one writer (a bulk
//! ingest holds the embedded log alone) that is exact; with others
//! appending identical bytes meanwhile it can only mistake one identical
//! record for another.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use radar_core::backoff::Backoff;
use radar_core::error::Classify;

use crate::{EventLog, LogError, Record};

/// A batch that could not be stored whole before the time ran out.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PartlyStored {
    /// Per record of the batch: whether it is in the log.
    pub stored: Vec<bool>,
    #[source]
    pub source: LogError,
}

/// Appends `records`, retrying transient failures with backoff for up to
/// `retry_for`; `waiting` hears each failure before its retry.
pub fn append_retrying(
    log: &dyn EventLog,
    topic: &str,
    records: &[Record],
    retry_for: Duration,
    mut waiting: impl FnMut(&LogError),
) -> Result<(), PartlyStored> {
    let started = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut stored = vec![false; records.len()];
    loop {
        let todo: Vec<usize> = (0..records.len()).filter(|&i| !stored[i]).collect();
        if todo.is_empty() {
            return Ok(());
        }
        let ends = ends(log, topic).map_err(|source| PartlyStored {
            stored: stored.clone(),
            source,
        })?;
        let batch: Vec<Record> = todo.iter().map(|&i| records[i].clone()).collect();
        let error = match log.append(topic, &batch) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match arrived(log, topic, &ends) {
            Ok(mut there) => {
                for &i in &todo {
                    let r = &records[i];
                    if let Some(n) = there.get_mut(&(r.key.clone(), r.value.clone()))
                        && *n > 0
                    {
                        *n -= 1;
                        stored[i] = true;
                    }
                }
            }
            // Which records arrived is unknown now, and a retry could
            // double them: stop and say what is known.
            Err(_) => {
                return Err(PartlyStored {
                    stored,
                    source: error,
                });
            }
        }
        if !error.is_transient() || started.elapsed() >= retry_for {
            return Err(PartlyStored {
                stored,
                source: error,
            });
        }
        waiting(&error);
        std::thread::sleep(backoff.delay());
    }
}

/// Where each partition of `topic` ends.
fn ends(log: &dyn EventLog, topic: &str) -> Result<Vec<u64>, LogError> {
    (0..log.partitions(topic)?)
        .map(|p| log.offsets(topic, p).map(|(_, end)| end))
        .collect()
}

/// (key, value) → how many records with them were appended after `ends`.
fn arrived(
    log: &dyn EventLog,
    topic: &str,
    ends: &[u64],
) -> Result<HashMap<(Option<Bytes>, Bytes), usize>, LogError> {
    let mut there = HashMap::new();
    for (p, &from) in ends.iter().enumerate() {
        let (_, end) = log.offsets(topic, p as u32)?;
        let mut at = from;
        while at < end {
            let got = log.read(topic, p as u32, at, 10_000)?;
            let Some(last) = got.last() else { break };
            at = last.offset + 1;
            for s in got {
                *there.entry((s.record.key, s.record.value)).or_insert(0) += 1;
            }
        }
    }
    Ok(there)
}
