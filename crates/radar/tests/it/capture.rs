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
