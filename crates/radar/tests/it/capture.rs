//! Capture under SIGKILL: after random kills and restarts, the lake holds
//! every acknowledged event exactly once.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use radar::config::Config;
use radar_core::Rng;
use radar_lake::Table;

use crate::{radar, stderr};

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn capture_survives_sigkill_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = dir.path().join("events.jsonl");
    let config = example("transactions.toml");
    let out = radar(&[
        "generate",
        "--cardholders",
        "2000",
        "--days",
        "4",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A few invalid events too: they must land in the dead-letter table.
    let mut text = std::fs::read_to_string(&events).unwrap();
    for i in 0..5 {
        text.push_str(&format!("{{\"broken\": {i}\n"));
    }
    std::fs::write(&events, text).unwrap();
    let out = radar(&[
        "ingest",
        events.to_str().unwrap(),
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut rng = Rng::seed_from_u64(3);
    for _ in 0..20 {
        let mut child = crate::command()
            .args([
                "capture",
                "--config",
                &config,
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .args(["--roll-seconds", "0.05", "--roll-rows", "400"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng.below(300)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let out = radar(&[
        "capture",
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--until-idle",
        "0.5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Every acknowledged event is in the lake exactly once.
    let mut c = Config::load(Some(std::path::Path::new(&config))).unwrap();
    c.storage.root = data.to_str().unwrap().to_owned();
    let schema = c.stream(None).unwrap();
    let log = c.open_log().unwrap();
    let mut expected: BTreeSet<(u32, u64)> = BTreeSet::new();
    for p in 0..log.partitions("transactions").unwrap() {
        let (lo, hi) = log.offsets("transactions", p).unwrap();
        expected.extend((lo..hi).map(|o| (p, o)));
    }
    drop(log);
    let lake = c.open_lake().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seen: Vec<(u32, u64)> = Vec::new();
    rt.block_on(async {
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await.unwrap();
        while let Some(rows) = scan.next_file().await.unwrap() {
            seen.extend(rows.iter().map(|r| (r.partition, r.offset)));
        }
        let dead = lake.dead_letters("transactions").await.unwrap();
        assert_eq!(dead.len(), 5);
        assert!(dead.iter().all(|d| d.reason == "not_json"));
        seen.extend(dead.iter().map(|d| (d.partition, d.offset)));
        assert!(
            !lake
                .files(Table::Raw, "transactions", None)
                .await
                .unwrap()
                .is_empty()
        );
    });
    let unique: BTreeSet<(u32, u64)> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "{} duplicate rows",
        seen.len() - unique.len()
    );
    assert_eq!(unique, expected, "lake rows = acknowledged events");
}

/// The bug: `radar ingest` of a bad CSV row stored the raw line, and
/// capture, decoding it as JSON, filed it as `not_json` instead of what was
/// wrong with it. The door's reason now travels with the record. Quoted
/// cells (a comma inside quotes) are read as one cell.
#[test]
fn regression_bad_csv_row_was_filed_under_the_wrong_dead_letter_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        "{}/../../examples/transactions.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let csv = dir.path().join("tx.csv");
    std::fs::write(
        &csv,
        "event_id,ts,card_id,amount,merchant_category,lat,lon,device,label,label_kind\n\
         tx-1,2026-01-01T00:00:00Z,card-1,12.5,grocery,48.8,2.3,\"dev, one\",0,none\n\
         tx-2,2026-01-01T00:01:00Z,card-1,-5,grocery,48.8,2.3,dev-1,0,none\n\
         tx-3,2026-01-01T00:02:00Z,card-2,7.0,grocery,north,2.3,dev-2,0,none\n",
    )
    .unwrap();
    let args = |cmd: &[&str]| {
        let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--config".into(),
            config.clone(),
            "--data-dir".into(),
            data.to_str().unwrap().into(),
        ]);
        a
    };
    for cmd in [
        args(&["ingest", csv.to_str().unwrap()]),
        args(&["capture", "--until-idle", "0.5"]),
    ] {
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = radar(&refs);
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    }
    let mut c = Config::load(Some(std::path::Path::new(&config))).unwrap();
    c.storage.root = data.to_str().unwrap().to_owned();
    let schema = c.stream(None).unwrap();
    let lake = c.open_lake().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut dead = lake.dead_letters("transactions").await.unwrap();
        dead.sort_by_key(|d| String::from_utf8_lossy(&d.raw).into_owned());
        let reasons: Vec<(&str, Option<&str>)> = dead
            .iter()
            .map(|d| (d.reason.as_str(), d.field.as_deref()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("out_of_range", Some("amount")),
                ("wrong_type", Some("lat"))
            ],
            "{dead:?}"
        );
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await.unwrap();
        let mut rows = Vec::new();
        while let Some(r) = scan.next_file().await.unwrap() {
            rows.extend(r);
        }
        assert_eq!(rows.len(), 1);
        let device = schema.field_index("device").unwrap();
        assert_eq!(
            rows[0].record.values[device],
            radar_core::decode::Value::Str("dev, one".into())
        );
    });
}
