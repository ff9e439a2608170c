//! One worker on the engines a deployment runs on: a Kafka-protocol broker
//! for the log, S3 for the lake and the artifacts, PostgreSQL for the
//! metadata (registry, labels, keys, alerts). Everything the pipeline
//! promises holds there as on the embedded defaults, and nothing is kept
//! in local SQLite files.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::faults::{Broker, send_all, spec};
use crate::harness::{self, Place};

/// A fresh database on the server at RADAR_POSTGRES_URL, dropped after.
struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    fn create(server: &str) -> Database {
        let name = format!(
            "radar_e2e_{}_{}",
            std::process::id(),
            radar_core::time::now_micros()
        );
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        Database {
            server: server.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The services this test needs, or None (said) when they are skipped.
fn services() -> Option<(String, String, String)> {
    let found = (
        std::env::var("RADAR_TANSU"),
        std::env::var("RADAR_S3_ENDPOINT"),
        std::env::var("RADAR_POSTGRES_URL"),
    );
    if let (Ok(tansu), Ok(s3), Ok(pg)) = found {
        return Some((tansu, s3, pg));
    }
    if std::env::var_os("RADAR_SKIP_POSTGRES").is_some() {
        eprintln!(
            "RADAR_TANSU, RADAR_S3_ENDPOINT or RADAR_POSTGRES_URL not set: NOT run (RADAR_SKIP_POSTGRES set)"
        );
        return None;
    }
    panic!(
        "set RADAR_TANSU, RADAR_S3_ENDPOINT and RADAR_POSTGRES_URL (scripts/test does), or RADAR_SKIP_POSTGRES=1"
    );
}

fn files_named(dir: &Path, suffix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(files_named(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// What a test on the production engines runs against: a fresh
/// PostgreSQL database, a directory, its own broker and a place on them.
struct Stage {
    db: Database,
    dir: tempfile::TempDir,
    broker: Broker,
    place: Place,
}

impl Stage {
    /// `partitions` per topic; `None` (said) when the services are skipped.
    fn new(partitions: u32) -> Option<Stage> {
        let (tansu, s3, server) = services()?;
        let db = Database::create(&server);
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::start(&tansu, &dir.path().join("broker.log"));
        let place = production_place(dir.path(), &broker, &s3, &db, partitions);
        Some(Stage {
            db,
            dir,
            broker,
            place,
        })
    }
}

/// A config on the broker (`partitions` per topic), S3 under a fresh
/// prefix and `db`, beside the example streams.
fn production_place(
    dir: &Path,
    broker: &Broker,
    s3: &str,
    db: &Database,
    partitions: u32,
) -> Place {
    let examples = std::fs::read_to_string(harness::transactions_config()).unwrap();
    let config = dir.join("radar.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"s3://radar/production-{}-{}\"\nlocal_dir = \"{}\"\n\
             options = {{ aws_endpoint = \"{s3}\", aws_allow_http = \"true\", aws_region = \"us-east-1\", \
             aws_access_key_id = \"radar\", aws_secret_access_key = \"radar\" }}\n\n\
             [log]\nkind = \"kafka\"\npartitions = {partitions}\n\
             kafka = {{ brokers = \"127.0.0.1:{}\", session_timeout_ms = 6000, heartbeat_interval_ms = 1000 }}\n\n\
             [metadata]\nurl = \"{}\"\n\n{examples}",
            std::process::id(),
            radar_core::time::now_micros(),
            dir.join("local").display(),
            broker.proxy.port,
            db.url,
        ),
    )
    .unwrap();
    Place {
        config: config.to_str().unwrap().to_owned(),
        data_dir: None,
    }
}

/// History ingested, captured to S3 and trained (the model registered in
/// PostgreSQL, its artifact in S3); then `radar up` scores live traffic:
/// every acknowledged event is in the log and the lake once, the alerts in
/// PostgreSQL are exactly those of one clean pass, and a retrain started
/// while another worker holds the stream's lease is refused, naming it.
#[test]
fn one_worker_on_kafka_s3_and_postgres() {
    let Some(Stage {
        db,
        dir,
        broker: _broker,
        place,
    }) = Stage::new(2)
    else {
        return;
    };
    let mut live = place.with_history(dir.path(), spec(21));
    let history = std::fs::read_to_string(dir.path().join("history.jsonl"))
        .unwrap()
        .lines()
        .count();
    let registered: i64 = db
        .client()
        .query_one("SELECT COUNT(*) FROM model_versions", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        registered, 1,
        "the trained model is registered in PostgreSQL"
    );

    let client = harness::client();
    let port = harness::free_port();
    let up_log = dir.path().join("up.log");
    let up = place.up(port, &[], Some(&up_log));
    harness::wait_ready(&client, port);
    let (mut acked, mut refused) = (BTreeSet::new(), Vec::new());
    send_all(
        &client,
        port,
        &mut live,
        &mut refused,
        &mut acked,
        Duration::from_secs(8),
    );

    // Another worker holds the stream's retrain lease: a retrain here
    // waits its turn rather than running beside it.
    let place_args = place.args();
    let args: Vec<&str> = ["retrain"]
        .into_iter()
        .chain(place_args.iter().map(String::as_str))
        .collect();
    let holder = radar_registry::Registry::open(
        radar_registry::Target::Postgres(db.url.clone()),
        "/tmp",
        &[],
    )
    .unwrap();
    assert!(
        holder
            .try_lease(
                "retrain:transactions",
                "another-worker",
                Duration::from_secs(60)
            )
            .unwrap()
    );
    let out = crate::radar(&args);
    assert!(
        !out.status.success(),
        "a retrain ran beside another worker's"
    );
    let said = crate::stderr(&out);
    assert!(said.contains("retrain:transactions"), "{said}");
    holder
        .release_lease("retrain:transactions", "another-worker")
        .unwrap();

    let expected = (history + acked.len()) as f64;
    let scored = harness::wait_scored(&client, port, expected);
    assert_eq!(scored, expected, "every event in the log was scored");
    // Capture rolls every 5 s.
    std::thread::sleep(Duration::from_secs(6));
    harness::stop_with(up, libc::SIGTERM, Some(&up_log));
    harness::verify(&place, &acked, "kafka, s3 and postgres");

    let alerts: i64 = db
        .client()
        .query_one("SELECT COUNT(*) FROM alerts", &[])
        .unwrap()
        .get(0);
    assert!(alerts > 0, "the alerts are in PostgreSQL");
    let local = files_named(&dir.path().join("local"), ".db");
    assert!(
        local.is_empty(),
        "metadata kept in local SQLite files: {local:?}"
    );
}

/// A `radar capture` worker of this place, its stderr to `log`.
fn capture_worker(place: &Place, log: &Path) -> harness::Up {
    harness::Up::spawn(
        crate::command()
            .arg("capture")
            .args(place.args())
            .args(["--roll-seconds", "1", "--log-format", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap()),
    )
}

/// The event ids in the lake (with repeats, if any).
fn lake_ids(place: &Place) -> Vec<String> {
    let c = place.load();
    let schema = c.stream(None).unwrap();
    let lake = c.open_lake().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ids = Vec::new();
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await.unwrap();
        while let Some(rows) = scan.next_file().await.unwrap() {
            ids.extend(
                rows.iter()
                    .filter_map(|r| r.record.id.as_deref().map(str::to_owned)),
            );
        }
        ids
    })
}

/// Capture scales out: `radar up` and two `radar capture` workers share the
/// capture group on a 4-partition topic (one joining mid-stream), one is
/// SIGKILLed under live traffic and its partitions move to the others.
/// Every acknowledged event is in the S3 lake exactly once, and the alerts
/// (one scorer) are those of one clean pass. Prints the handover time: from
/// the kill until every partition's committed offset moved past where it
/// stood (the killed worker's partitions captured again by the others).
#[test]
fn capture_workers_split_partitions_and_hand_over_a_killed_ones() {
    let Some(Stage {
        db: _db,
        dir,
        broker: _broker,
        place,
    }) = Stage::new(4)
    else {
        return;
    };
    let mut live = place.with_history(dir.path(), spec(23));
    let history = lake_ids(&place).len();

    let client = harness::client();
    let port = harness::free_port();
    let up_log = dir.path().join("up.log");
    let up = place.up(port, &["--log-format", "json"], Some(&up_log));
    harness::wait_ready(&client, port);
    let mut doomed = capture_worker(&place, &dir.path().join("capture-1.log"));
    let (mut acked, mut refused) = (BTreeSet::new(), Vec::new());
    let mut send = |acked: &mut BTreeSet<String>, secs: u64| {
        send_all(
            &client,
            port,
            &mut live,
            &mut refused,
            acked,
            Duration::from_secs(secs),
        );
    };
    send(&mut acked, 8);
    let joiner = capture_worker(&place, &dir.path().join("capture-2.log"));
    send(&mut acked, 8);
    // The handover: once the killed worker's partitions moved (after the
    // group's session time-out), their committed offsets move again. Every
    // partition keeps receiving traffic, so each one's commit passing where
    // it stood at the kill means the group captures it again.
    let config = place.load();
    let topic = config.stream(None).unwrap().name;
    let log = config.open_log().unwrap();
    let committed = |p: u32| {
        log.committed(&topic, "radar-capture", p)
            .unwrap()
            .unwrap_or(0)
    };
    let partitions = log.partitions(&topic).unwrap();
    let (handover, killed_at) =
        kill_and_wait_handover(&mut doomed, partitions, &committed, &mut |secs| {
            send(&mut acked, secs)
        });
    send(&mut acked, 3);
    drop(log);

    let expected = (history + acked.len()) as f64;
    let scored = harness::wait_scored(&client, port, expected);
    assert_eq!(scored, expected, "every event in the log was scored");
    // Each scan of the lake lists and reads every file through the S3
    // emulator: seconds each under load.
    let deadline = Instant::now() + Duration::from_secs(240);
    while lake_ids(&place).len() < history + acked.len() {
        assert!(
            Instant::now() < deadline,
            "not every event reached the lake"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    harness::stop_with(
        joiner,
        libc::SIGTERM,
        Some(&dir.path().join("capture-2.log")),
    );
    harness::stop_with(up, libc::SIGTERM, Some(&up_log));
    // When the group gave the killed worker's partitions to the others:
    // the first assignment the survivors log after the kill.
    let moved = [up_log.clone(), dir.path().join("capture-2.log")]
        .iter()
        .flat_map(|log| first_capture_assignment_after(log, killed_at))
        .min()
        .map_or("not logged".to_owned(), |at| {
            format!("{:.1} s", (at - killed_at) as f64 / 1e6)
        });
    println!(
        "capture scale-out: {} live events over 3 capture workers, one killed; the group moved its partitions after {moved}, \
         captured and committed again after {:.1} s",
        acked.len(),
        handover.as_secs_f64()
    );
    harness::verify(
        &place,
        &acked,
        "capture scale-out on kafka, s3 and postgres",
    );
}

/// When (UTC µs) `log` (a worker's JSON log) first says the capture group
/// assigned it partitions after `after`.
fn first_capture_assignment_after(log: &Path, after: i64) -> Option<i64> {
    json_lines(log)
        .iter()
        .filter(|e| e["message"] == "partitions assigned" && e["group"] == "radar-capture")
        .filter_map(|e| radar_core::time::parse_rfc3339(e["timestamp"].as_str()?).ok())
        .find(|&at| at > after)
}

/// The scorer scales out: three `radar up` workers split a 4-partition
/// topic (the third joining mid-stream), and one is SIGKILLed under live
/// traffic. The survivors restore the killed worker's partitions from
/// their checkpoints in S3 (their logs say at which offsets), every
/// acknowledged event is in the lake once, and the alerts are exactly
/// those of one uninterrupted single-process pass (a part rebuilt cold
/// would alert differently). Prints the handover time: from the kill until
/// every partition's committed scorer offset moved past where it stood.
#[test]
fn scorers_split_partitions_and_restore_a_killed_ones_state() {
    let Some(Stage {
        db: _db,
        dir,
        broker: _broker,
        place,
    }) = Stage::new(4)
    else {
        return;
    };
    let mut live = place.with_history(dir.path(), spec(29));
    let history = lake_ids(&place).len();

    let client = harness::client();
    let ports: Vec<u16> = (0..3).map(|_| harness::free_port()).collect();
    let logs: Vec<std::path::PathBuf> = (1..=3)
        .map(|k| dir.path().join(format!("up-{k}.log")))
        .collect();
    let worker = |k: usize| {
        let up = place.up(ports[k], &["--log-format", "json"], Some(&logs[k]));
        harness::wait_ready(&client, ports[k]);
        up
    };
    let first = worker(0);
    let mut doomed = worker(1);
    let (mut acked, mut refused) = (BTreeSet::new(), Vec::new());
    let mut send = |acked: &mut BTreeSet<String>, secs: u64| {
        send_all(
            &client,
            ports[0],
            &mut live,
            &mut refused,
            acked,
            Duration::from_secs(secs),
        );
    };
    send(&mut acked, 8);
    let joiner = worker(2);
    send(&mut acked, 8);

    let config = place.load();
    let topic = config.stream(None).unwrap().name;
    let log = config.open_log().unwrap();
    let partitions = log.partitions(&topic).unwrap();
    let committed = |p: u32| {
        log.committed(&topic, "radar-scorer", p)
            .unwrap()
            .unwrap_or(0)
    };
    let held_at_kill = last_scorer_assignment(&logs[1]);
    assert!(
        !held_at_kill.is_empty(),
        "the second worker held no partition before the kill"
    );
    let (handover, killed_at) =
        kill_and_wait_handover(&mut doomed, partitions, &committed, &mut |secs| {
            send(&mut acked, secs)
        });
    send(&mut acked, 3);

    // Every partition scored to its end (read to the end: the broker's
    // high watermark lags).
    let end = |p: u32| {
        let (mut at, _) = log.offsets(&topic, p).unwrap();
        loop {
            let got = log.read(&topic, p, at, 10_000).unwrap();
            match got.last() {
                Some(last) => at = last.offset + 1,
                None => return at,
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while !(0..partitions).all(|p| committed(p) >= end(p)) {
        assert!(
            Instant::now() < deadline,
            "the scorers never caught up: committed {:?}, ends {:?}",
            (0..partitions).map(committed).collect::<Vec<_>>(),
            (0..partitions).map(end).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(log);
    let deadline = Instant::now() + Duration::from_secs(240);
    while lake_ids(&place).len() < history + acked.len() {
        assert!(
            Instant::now() < deadline,
            "not every event reached the lake"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    harness::stop_with(joiner, libc::SIGTERM, Some(&logs[2]));
    harness::stop_with(first, libc::SIGTERM, Some(&logs[0]));

    // Restored, not rebuilt: each partition the killed worker held was
    // restored by a survivor after the kill, from a checkpoint past the
    // start of the partition.
    let restored: Vec<(u32, u64, i64)> = [&logs[0], &logs[2]]
        .iter()
        .flat_map(|log| scorer_restores(log))
        .filter(|&(_, _, at)| at > killed_at)
        .collect();
    for p in &held_at_kill {
        let first_restore = restored
            .iter()
            .filter(|(q, ..)| q == p)
            .min_by_key(|(.., at)| *at);
        let Some(&(_, next, at)) = first_restore else {
            panic!("partition {p} of the killed worker was not restored: {restored:?}");
        };
        assert!(next > 0, "partition {p} restored empty");
        println!(
            "scorer scale-out: partition {p} restored at offset {next}, {:.1} s after the kill",
            (at - killed_at) as f64 / 1e6
        );
    }
    println!(
        "scorer scale-out: {} live events over 3 workers, one killed (it held {held_at_kill:?}); \
         every partition scored and committed again {:.1} s after the kill",
        acked.len(),
        handover.as_secs_f64()
    );
    harness::verify(&place, &acked, "scorer scale-out on kafka, s3 and postgres");
}

/// Kills `doomed` and sends on (`send` for that many seconds) until every
/// partition's commit (`committed`, of the group that matters) moved past
/// where it stood at the kill: every partition keeps receiving traffic, so
/// that means the group works on each one again. How long it took, and
/// when the kill was (UTC µs).
fn kill_and_wait_handover(
    doomed: &mut harness::Up,
    partitions: u32,
    committed: &dyn Fn(u32) -> u64,
    send: &mut dyn FnMut(u64),
) -> (Duration, i64) {
    let at_kill: Vec<u64> = (0..partitions).map(committed).collect();
    doomed.kill();
    let killed = Instant::now();
    let killed_at = radar_core::time::now_micros();
    loop {
        send(1);
        if (0..partitions).all(|p| committed(p) > at_kill[p as usize]) {
            return (killed.elapsed(), killed_at);
        }
        assert!(
            killed.elapsed() < Duration::from_secs(180),
            "the killed worker's partitions were never taken up again"
        );
    }
}

/// A worker's JSON log lines (its stderr).
fn json_lines(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The partitions the scorer group last assigned the worker of `log`.
fn last_scorer_assignment(log: &Path) -> Vec<u32> {
    json_lines(log)
        .iter()
        .filter(|e| e["message"] == "partitions assigned" && e["group"] == "radar-scorer")
        .filter_map(|e| {
            let list = e["partitions"].as_str()?;
            Some(
                list.trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect(),
            )
        })
        .next_back()
        .unwrap_or_default()
}

/// (partition, offset, when in UTC µs) of each scorer state the worker of
/// `log` restored from a checkpoint.
fn scorer_restores(log: &Path) -> Vec<(u32, u64, i64)> {
    json_lines(log)
        .iter()
        .filter(|e| e["message"] == "scorer state of partition restored")
        .filter_map(|e| {
            Some((
                e["partition"].as_u64()? as u32,
                e["next"].as_u64()?,
                radar_core::time::parse_rfc3339(e["timestamp"].as_str()?).ok()?,
            ))
        })
        .collect()
}
