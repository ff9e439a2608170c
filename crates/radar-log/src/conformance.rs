//! The conformance suite every [`EventLog`] implementation passes. Public so
//! each implementation's tests (in this crate and outside it) run the same
//! checks; not part of the stable API.
#![doc(hidden)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Consumer, EventLog, Record, Stored, partition_for};

/// How the suite gets logs.
pub trait Harness {
    /// The log under test.
    fn log(&self) -> Arc<dyn EventLog>;
    /// The same log opened anew, after every handle to the old one was
    /// dropped (for the embedded log: the same directory; for Kafka: a new
    /// client of the same broker).
    fn reopen(&self) -> Arc<dyn EventLog>;
    /// A topic or group name no other test uses.
    fn unique(&self, base: &str) -> String;
    /// How long group membership changes may take to show.
    fn settle(&self) -> Duration {
        Duration::from_secs(20)
    }
    /// Whether keyed records land on [`partition_for`]'s partition (the
    /// embedded log) or on the implementation's own stable choice (Kafka).
    fn uses_partition_for(&self) -> bool {
        true
    }
}

fn rec(key: &str, value: String) -> Record {
    Record {
        key: Some(key.as_bytes().to_vec().into()),
        value: value.into_bytes().into(),
        timestamp: 1_000_000,
        headers: vec![("h".into(), b"v".to_vec())],
    }
}

/// Polls until `n` records arrived or `within` passed.
pub fn poll_n(c: &mut dyn Consumer, n: usize, within: Duration) -> Vec<Stored> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        match c.poll(n - out.len(), Duration::from_millis(200)) {
            Ok(got) => out.extend(got),
            Err(e) => panic!("poll failed: {e}"),
        }
    }
    out
}

/// Everything in a partition, read until a read comes back empty (not up to
/// `offsets`' end, which some Kafka-protocol brokers report wrong).
fn read_all(log: &dyn EventLog, topic: &str, partition: u32) -> Vec<Stored> {
    let mut out = Vec::new();
    let (mut at, _) = log.offsets(topic, partition).unwrap();
    loop {
        let got = log.read(topic, partition, at, 10_000).unwrap();
        let Some(last) = got.last() else { break };
        at = last.offset + 1;
        out.extend(got);
    }
    out
}

pub fn ordering_per_partition(h: &dyn Harness) {
    let log = h.log();
    let topic = h.unique("order");
    log.create_topic(&topic, 3).unwrap();
    log.create_topic(&topic, 3).unwrap(); // idempotent
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..20 {
        let batch: Vec<Record> = (0..10)
            .map(|k| {
                let key = format!("key-{k}");
                let value = format!("{key}/{round}");
                expected.entry(key.clone()).or_default().push(value.clone());
                rec(&key, value)
            })
            .collect();
        let acks = log.append(&topic, &batch).unwrap();
        assert_eq!(acks.len(), batch.len());
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut total = 0;
    for p in 0..3 {
        let records = read_all(log.as_ref(), &topic, p);
        for w in records.windows(2) {
            assert_eq!(
                w[1].offset,
                w[0].offset + 1,
                "offsets in a partition are contiguous"
            );
        }
        for s in records {
            assert_eq!(s.partition, p);
            assert_eq!(s.record.headers, vec![("h".to_string(), b"v".to_vec())]);
            let key = String::from_utf8(s.record.key.clone().unwrap().to_vec()).unwrap();
            seen.entry(key)
                .or_default()
                .push(String::from_utf8(s.record.value.to_vec()).unwrap());
            total += 1;
        }
    }
    assert_eq!(total, 200);
    assert_eq!(
        seen, expected,
        "each key's records come back in append order"
    );
}

pub fn key_partition_stability(h: &dyn Harness) {
    let log = h.log();
    let topic = h.unique("keys");
    log.create_topic(&topic, 4).unwrap();
    let mut first: BTreeMap<String, u32> = BTreeMap::new();
    for round in 0..5 {
        for k in 0..40 {
            let key = format!("entity-{k}");
            let acks = log
                .append(&topic, &[rec(&key, format!("{round}"))])
                .unwrap();
            let p = acks[0].0;
            if h.uses_partition_for() {
                assert_eq!(p, partition_for(key.as_bytes(), 4));
            }
            assert_eq!(
                *first.entry(key).or_insert(p),
                p,
                "a key always lands on one partition"
            );
        }
    }
    let used: std::collections::BTreeSet<u32> = first.values().copied().collect();
    assert!(used.len() > 1, "keys spread over partitions");
}

pub fn acknowledged_appends_are_durable(h: &dyn Harness) {
    let topic = h.unique("durable");
    let acks = {
        let log = h.log();
        log.create_topic(&topic, 2).unwrap();
        let batch: Vec<Record> = (0..500)
            .map(|i| rec(&format!("k{}", i % 7), format!("v{i}")))
            .collect();
        log.append(&topic, &batch).unwrap()
    };
    let log = h.reopen();
    assert_eq!(log.partitions(&topic).unwrap(), 2);
    let mut found = 0;
    for p in 0..2 {
        let records = read_all(log.as_ref(), &topic, p);
        for (pp, o) in acks.iter().filter(|(pp, _)| *pp == p) {
            let s = records
                .iter()
                .find(|s| s.offset == *o)
                .expect("acknowledged record survives");
            assert_eq!(s.partition, *pp);
            found += 1;
        }
    }
    assert_eq!(found, 500);
}

pub fn group_resumes_from_committed_offset(h: &dyn Harness) {
    let log = h.log();
    let topic = h.unique("resume");
    let group = h.unique("g-resume");
    log.create_topic(&topic, 1).unwrap();
    let batch: Vec<Record> = (0..20).map(|i| rec("k", format!("{i}"))).collect();
    log.append(&topic, &batch).unwrap();
    {
        let mut c = log.consumer(&topic, &group).unwrap();
        let got = poll_n(c.as_mut(), 20, h.settle());
        assert_eq!(got.len(), 20);
        assert_eq!(&got[0].record.value[..], b"0");
        c.commit(&[(0, got[9].offset + 1)]).unwrap();
    }
    assert_eq!(log.committed(&topic, &group, 0).unwrap(), Some(10));
    let mut c = log.consumer(&topic, &group).unwrap();
    let got = poll_n(c.as_mut(), 10, h.settle());
    let values: Vec<String> = got
        .iter()
        .map(|s| String::from_utf8(s.record.value.to_vec()).unwrap())
        .collect();
    assert_eq!(
        values,
        (10..20).map(|i| i.to_string()).collect::<Vec<_>>(),
        "resumes at the commit"
    );
}

pub fn at_least_once_across_a_consumer_crash(h: &dyn Harness) {
    let log = h.log();
    let topic = h.unique("crash");
    let group = h.unique("g-crash");
    log.create_topic(&topic, 2).unwrap();
    let batch: Vec<Record> = (0..100)
        .map(|i| rec(&format!("k{i}"), format!("{i}")))
        .collect();
    log.append(&topic, &batch).unwrap();
    let mut delivered: Vec<String> = Vec::new();
    {
        let mut c = log.consumer(&topic, &group).unwrap();
        let got = poll_n(c.as_mut(), 100, h.settle());
        assert_eq!(got.len(), 100);
        // Process and commit only partition 0, then "crash" (drop without
        // committing partition 1).
        let mut p0_next = None;
        for s in &got {
            if s.partition == 0 {
                delivered.push(String::from_utf8(s.record.value.to_vec()).unwrap());
                p0_next = Some(s.offset + 1);
            }
        }
        if let Some(o) = p0_next {
            c.commit(&[(0, o)]).unwrap();
        }
    }
    let mut c = log.consumer(&topic, &group).unwrap();
    let expect_more = 100 - delivered.len();
    let got = poll_n(c.as_mut(), expect_more, h.settle());
    for s in &got {
        delivered.push(String::from_utf8(s.record.value.to_vec()).unwrap());
    }
    delivered.sort();
    let mut all: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    all.sort();
    assert_eq!(
        delivered, all,
        "every record is delivered, the uncommitted ones again"
    );
}

pub fn group_members_split_and_take_over(h: &dyn Harness) {
    let log = h.log();
    let topic = h.unique("split");
    let group = h.unique("g-split");
    log.create_topic(&topic, 4).unwrap();
    let mut a = log.consumer(&topic, &group).unwrap();
    let mut b = log.consumer(&topic, &group).unwrap();
    // Wait until the two hold disjoint, complete assignments.
    let deadline = Instant::now() + h.settle();
    loop {
        // Kafka members must keep polling to take part in the rebalance.
        let _ = a.poll(10, Duration::from_millis(100)).unwrap();
        let _ = b.poll(10, Duration::from_millis(100)).unwrap();
        let (pa, pb) = (a.assignment().unwrap(), b.assignment().unwrap());
        let mut all: Vec<u32> = pa.iter().chain(&pb).copied().collect();
        all.sort();
        if !pa.is_empty() && !pb.is_empty() && all == vec![0, 1, 2, 3] {
            break;
        }
        assert!(Instant::now() < deadline, "no split: {pa:?} / {pb:?}");
    }
    let batch: Vec<Record> = (0..200)
        .map(|i| rec(&format!("k{i}"), format!("{i}")))
        .collect();
    log.append(&topic, &batch).unwrap();
    let deadline = Instant::now() + h.settle();
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    while got_a.len() + got_b.len() < 200 && Instant::now() < deadline {
        got_a.extend(a.poll(200, Duration::from_millis(100)).unwrap());
        got_b.extend(b.poll(200, Duration::from_millis(100)).unwrap());
    }
    assert_eq!(got_a.len() + got_b.len(), 200);
    let generation_before = b.generation().unwrap();
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members consumed"
    );
    let pa: std::collections::BTreeSet<u32> = got_a.iter().map(|s| s.partition).collect();
    let pb: std::collections::BTreeSet<u32> = got_b.iter().map(|s| s.partition).collect();
    assert!(pa.is_disjoint(&pb), "members hold disjoint partitions");
    // a commits what it read, then leaves; b takes over a's partitions.
    let mut commits: BTreeMap<u32, u64> = BTreeMap::new();
    for s in &got_a {
        let e = commits.entry(s.partition).or_default();
        *e = (*e).max(s.offset + 1);
    }
    a.commit(&commits.into_iter().collect::<Vec<_>>()).unwrap();
    drop(a);
    let more: Vec<Record> = (200..260)
        .map(|i| rec(&format!("k{i}"), format!("{i}")))
        .collect();
    log.append(&topic, &more).unwrap();
    let deadline = Instant::now() + h.settle();
    let mut later = Vec::new();
    loop {
        later.extend(b.poll(100, Duration::from_millis(200)).unwrap());
        let values: std::collections::BTreeSet<String> = later
            .iter()
            .map(|s| String::from_utf8(s.record.value.to_vec()).unwrap())
            .collect();
        if (200..260).all(|i| values.contains(&i.to_string())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b did not take over: {} of 60 new records",
            later.len()
        );
    }
    let mut assigned = b.assignment().unwrap();
    assigned.sort();
    assert_eq!(assigned, vec![0, 1, 2, 3]);
    assert!(
        b.generation().unwrap() != generation_before,
        "taking over moves the generation (b re-reads its own partitions from their commits too)"
    );
}

/// Runs every check.
pub fn run_all(h: &dyn Harness) {
    ordering_per_partition(h);
    key_partition_stability(h);
    acknowledged_appends_are_durable(h);
    group_resumes_from_committed_offset(h);
    at_least_once_across_a_consumer_crash(h);
    group_members_split_and_take_over(h);
}
