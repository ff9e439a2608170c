//! Capture and scan throughput, and the Kafka implementation's produce and
//! consume throughput against a local broker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use radar_core::synth::transactions::{TransactionSpec, Transactions};
use radar_lake::Lake;
use radar_lake::capture::{self, CaptureOptions};
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Also measure Kafka against this broker (or RADAR_KAFKA_BROKERS).
    #[arg(long)]
    kafka: Option<String>,
    #[arg(long, default_value_t = 300_000)]
    kafka_records: usize,
}

pub fn run(args: Args) -> Result<()> {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/transactions.toml");
    let schema = radar_pipeline::events::load_schema(&config, Some("transactions"))?;
    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(
        dir.path().join("log"),
        Options::default(),
    )?);
    log.create_topic("transactions", 4)?;
    eprintln!("generating and appending {} events", args.events);
    // A dense stream (two days of 200,000 cards), as a live capture sees:
    // events near now, a few hour partitions per flush.
    let spec = TransactionSpec {
        cardholders: 400_000,
        days: 2.0,
        ..TransactionSpec::default()
    };
    let mut batch = Vec::with_capacity(10_000);
    let mut line = String::new();
    for tx in Transactions::new(spec).take(args.events) {
        line.clear();
        tx.write_json(&mut line);
        batch.push(Record::new(
            Some(format!("card-{:07}", tx.card).as_bytes()),
            line.clone().into_bytes(),
            tx.ts,
        ));
        if batch.len() == 10_000 {
            log.append("transactions", &batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        log.append("transactions", &batch)?;
    }

    let lake = Lake::open(
        dir.path()
            .join("lake-root")
            .to_str()
            .context("utf-8 path")?,
        &[],
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let options = CaptureOptions {
        max_rows: 250_000,
        max_age: Duration::from_secs(60),
        until_caught_up: true,
        ..CaptureOptions::default()
    };
    let t0 = Instant::now();
    let stats = capture::run(
        log.as_ref(),
        &lake,
        &schema,
        "transactions",
        &options,
        &stop,
        rt.handle(),
        &radar_core::health::Health::default(),
    )?;
    let capture_secs = t0.elapsed().as_secs_f64();
    let capture_rate = stats.events as f64 / capture_secs;
    eprintln!(
        "capture {capture_rate:.0} events/s ({} events, {} files)",
        stats.events, stats.files
    );

    let t1 = Instant::now();
    let scanned = rt.block_on(async {
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await?;
        let mut n = 0usize;
        while let Some(rows) = scan.next_file().await? {
            n += rows.len();
        }
        Ok::<_, radar_lake::LakeError>(n)
    })?;
    let scan_rate = scanned as f64 / t1.elapsed().as_secs_f64();
    eprintln!("scan    {scan_rate:.0} events/s ({scanned} events)");

    let mut figures = vec![
        json!({"figure": "capture_events_per_second", "value": capture_rate, "target": 300000, "met": capture_rate >= 300000.0}),
        json!({"figure": "scan_events_per_second", "value": scan_rate, "target": 1000000, "met": scan_rate >= 1000000.0}),
    ];
    if let Some(brokers) = args
        .kafka
        .clone()
        .or_else(|| std::env::var("RADAR_KAFKA_BROKERS").ok())
    {
        figures.extend(kafka(&brokers, args.kafka_records)?);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "benchmark": "lake",
            "events": args.events,
            "cpu": crate::speed::cpu_model(),
            "figures": figures,
        }))?
    );
    Ok(())
}

#[cfg(feature = "kafka")]
fn kafka(brokers: &str, n: usize) -> Result<Vec<serde_json::Value>> {
    use radar_log::kafka::{KafkaConfig, KafkaLog};
    let log = KafkaLog::connect(KafkaConfig::plaintext(brokers))?;
    let topic = format!("bench-{}", std::process::id());
    log.create_topic(&topic, 4)?;
    let value = vec![b'x'; 200];
    let t0 = Instant::now();
    for chunk in 0..n.div_ceil(10_000) {
        let batch: Vec<Record> = (0..10_000.min(n - chunk * 10_000))
            .map(|i| Record::new(Some(format!("k{}", i % 1000).as_bytes()), value.clone(), 0))
            .collect();
        log.append(&topic, &batch)?;
    }
    let produce = n as f64 / t0.elapsed().as_secs_f64();
    let mut consumer = log.consumer(&topic, "bench")?;
    let t1 = Instant::now();
    let mut got = 0;
    let mut first = None;
    while got < n && t1.elapsed() < Duration::from_secs(120) {
        let recs = consumer.poll(10_000, Duration::from_secs(1))?;
        if !recs.is_empty() && first.is_none() {
            first = Some(Instant::now());
        }
        got += recs.len();
    }
    // From the first record: group join time is not throughput.
    let consume = got as f64 / first.map_or(f64::INFINITY, |f| f.elapsed().as_secs_f64());
    eprintln!(
        "kafka produce {produce:.0} records/s, consume {consume:.0} records/s ({got} of {n})"
    );
    Ok(vec![
        json!({"figure": "kafka_produce_records_per_second", "value": produce, "records": n, "value_bytes": 200}),
        json!({"figure": "kafka_consume_records_per_second", "value": consume, "records": got}),
    ])
}

#[cfg(not(feature = "kafka"))]
fn kafka(_: &str, _: usize) -> Result<Vec<serde_json::Value>> {
    eprintln!("built without the kafka feature: Kafka not measured");
    Ok(Vec::new())
}
