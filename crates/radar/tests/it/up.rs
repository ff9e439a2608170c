//! `radar up` under SIGKILL during live ingest: afterwards every
//! acknowledged event is in the lake exactly once, every one was scored,
//! and the alerts are exactly those a single uninterrupted pass raises (no
//! duplicate, no miss, no cold-start burst from lost feature state).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use radar::config::Config;
use radar_core::Rng;
use radar_core::features::FeatureEngine;
use radar_core::synth::transactions::{TransactionSpec, Transactions};
use radar_registry::{Bundle, Registry};

use crate::{radar, stderr};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn up(config: &str, data: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_radar"))
        .args([
            "up",
            "--config",
            config,
            "--data-dir",
            data,
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_ready(client: &reqwest::blocking::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/readyz")).send()
            && r.status().is_success()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("radar up did not become ready");
}

#[test]
fn radar_up_survives_sigkill_during_live_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let config = format!(
        "{}/../../examples/transactions.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    // History: ingest, capture, train, promote.
    let spec = TransactionSpec {
        cardholders: 800,
        days: 40.0,
        seed: 4,
        ..TransactionSpec::default()
    };
    let split = spec.start + 10 * 86_400_000_000;
    let mut all = Transactions::new(spec).peekable();
    let history = dir.path().join("history.jsonl");
    let mut text = String::new();
    while let Some(tx) = all.next_if(|t| t.ts < split) {
        tx.write_json(&mut text);
        text.push('\n');
    }
    std::fs::write(&history, text).unwrap();
    for args in [
        vec!["ingest", history.to_str().unwrap()],
        vec!["capture", "--until-idle", "0.5"],
        vec!["train", "--promote", "--max-samples", "256"],
    ] {
        let mut a = args.clone();
        a.extend(["--config", &config, "--data-dir", data_s]);
        let out = radar(&a);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }

    // Live: send batches while killing radar up at random moments.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rng = Rng::seed_from_u64(8);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    for _ in 0..4 {
        let port = free_port();
        let mut child = up(&config, data_s, port);
        wait_ready(&client, port);
        let kill_after = Duration::from_millis(300 + rng.below(1200));
        let started = Instant::now();
        while started.elapsed() < kill_after {
            let mut body = String::new();
            let mut ids = Vec::new();
            for tx in all.by_ref().take(50) {
                tx.write_json(&mut body);
                body.push('\n');
                ids.push(format!("tx-{:010}", tx.event_id));
            }
            match client
                .post(format!(
                    "http://127.0.0.1:{port}/v1/streams/transactions/events"
                ))
                .body(body)
                .send()
            {
                Ok(r) if r.status().as_u16() == 202 => acknowledged.extend(ids),
                _ => {}
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(
        acknowledged.len() > 500,
        "{} events acknowledged",
        acknowledged.len()
    );

    // A last run catches up; then a graceful stop (SIGINT).
    let port = free_port();
    let mut child = up(&config, data_s, port);
    wait_ready(&client, port);
    // Caught up: every partition's lag reads 0 on /metrics.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let lags: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("radar_consumer_lag{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        if lags.len() == 4 && lags.iter().all(|&l| l == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scorer did not catch up: {lags:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Capture flushes every few seconds; give it one roll.
    std::thread::sleep(Duration::from_secs(6));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(
        child.wait().unwrap().success(),
        "radar up stopped cleanly on SIGINT"
    );

    // Every acknowledged event is in the lake exactly once.
    let mut c = Config::load(Some(std::path::Path::new(&config))).unwrap();
    c.storage.root = data_s.to_owned();
    let schema = c.stream(None).unwrap();
    let lake = c.open_lake().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut in_lake: Vec<String> = Vec::new();
    let mut records = Vec::new();
    rt.block_on(async {
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await.unwrap();
        while let Some(rows) = scan.next_file().await.unwrap() {
            for r in rows {
                in_lake.push(r.record.id.as_deref().unwrap().to_owned());
                records.push((r.partition, r.offset, r.record));
            }
        }
    });
    let distinct: BTreeSet<String> = in_lake.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        in_lake.len(),
        "no duplicate rows in the lake"
    );
    assert!(
        acknowledged.is_subset(&distinct),
        "{} acknowledged events missing from the lake",
        acknowledged.difference(&distinct).count()
    );

    // Alerts = one uninterrupted pass of the champion over the log.
    let registry = Registry::open(&data.join("radar.db"), data_s, &[]).unwrap();
    let version = registry
        .alias("transactions-iforest", "champion")
        .unwrap()
        .unwrap();
    let mv = registry.version("transactions-iforest", version).unwrap();
    let bundle = Bundle::from_bytes(&rt.block_on(registry.artifact(&mv)).unwrap()).unwrap();
    records.sort_by_key(|(p, o, _)| (*p, *o));
    let mut engine = FeatureEngine::new(schema.clone());
    let mut row = vec![0.0; engine.width()];
    let mut expected = BTreeSet::new();
    for (_, _, r) in &records {
        engine.process(r, &mut row);
        if bundle.forest.score_row(&row).unwrap() > bundle.threshold {
            expected.insert(r.id.as_deref().unwrap().to_owned());
        }
    }
    let alerts = radar_server::alerts::AlertStore::open(&data.join("alerts.db")).unwrap();
    let got: BTreeSet<String> = alerts.event_ids().unwrap().into_iter().collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "alerts differ from one clean pass: missing {missing:?}, extra {extra:?} ({} vs {})",
        got.len(),
        expected.len()
    );
    assert!(!got.is_empty());
}
