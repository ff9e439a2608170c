//! The soak run: `radar up` (the real binary, a child process) fed at a
//! steady rate for many minutes with a bounded set of entities that churn
//! (new cards appear, old ones go quiet), sampled for memory, open files,
//! disk use, lag and refusals. Flat lines apart from retention are the
//! goal; the JSON holds every sample.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use radar_core::synth::transactions::{TransactionSpec, Transactions};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    /// Events per second offered.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Entities alive at once.
    #[arg(long, default_value_t = 20_000)]
    entities: usize,
    /// Every this many seconds the live entities are replaced by new ones.
    #[arg(long, default_value_t = 120)]
    churn_seconds: u64,
    #[arg(long, default_value_t = 30)]
    sample_seconds: u64,
    /// The embedded log's retention, in bytes per partition.
    #[arg(long, default_value_t = 64 << 20)]
    retention_bytes: u64,
    /// The radar binary (default: beside this one).
    #[arg(long)]
    radar: Option<PathBuf>,
    #[arg(long, default_value_t = 18_480)]
    port: u16,
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn run(args: Args) -> Result<()> {
    let bin = crate::served::radar_bin(args.radar.as_deref())?;
    let dir = tempfile::tempdir()?;
    eprintln!("soak: history, capture, train");
    // Room for two generations of entities; older ones are evicted.
    let deployment = crate::served::Deployment::train(
        &bin,
        dir.path(),
        TransactionSpec {
            cardholders: args.entities,
            days: 3.0,
            seed: 1,
            ..TransactionSpec::default()
        },
        2 * args.entities,
        &format!(
            "[log]\nsegment_bytes = {}\nretention_bytes = {}",
            (args.retention_bytes / 4).max(1 << 20),
            args.retention_bytes
        ),
    )?;
    let data = deployment.data.clone();
    let up = deployment.up(&bin, args.port, &[])?;
    let pid = up.pid();
    let port = args.port;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let senders = 2u64;
    let per_batch = 100u64;
    let mut threads = Vec::new();
    for t in 0..senders {
        let (stop, acked, refused, failed, client, base) = (
            stop.clone(),
            acked.clone(),
            refused.clone(),
            failed.clone(),
            client.clone(),
            base.clone(),
        );
        let (entities, churn, rate) = (args.entities, args.churn_seconds.max(1), args.rate);
        threads.push(std::thread::spawn(move || {
            let spec = TransactionSpec {
                cardholders: entities,
                days: 3650.0,
                seed: 100 + t,
                ..TransactionSpec::default()
            };
            let mut live = Transactions::new(spec);
            let interval = Duration::from_secs_f64(per_batch as f64 * senders as f64 / rate as f64);
            let mut next = Instant::now();
            let mut body = String::new();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep(next - now);
                }
                next += interval;
                let generation = started.elapsed().as_secs() / churn;
                body.clear();
                for mut tx in live.by_ref().take(per_batch as usize) {
                    tx.event_id += (t + 1) * 1_000_000_000;
                    tx.card = tx
                        .card
                        .wrapping_add((generation as u32).wrapping_mul(entities as u32));
                    tx.write_json(&mut body);
                    body.push('\n');
                }
                match client
                    .post(format!("{base}/v1/streams/transactions/events"))
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                {
                    Ok(r) if r.status().as_u16() == 202 => {
                        acked.fetch_add(per_batch, Ordering::Relaxed)
                    }
                    Ok(r) if r.status().as_u16() == 503 => refused.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let mut samples = Vec::new();
    let mut last_acked = 0;
    let mut last_t = Instant::now();
    while started.elapsed() < total {
        std::thread::sleep(
            Duration::from_secs(args.sample_seconds).min(total.saturating_sub(started.elapsed())),
        );
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        let a = acked.load(Ordering::Relaxed);
        let rate = (a - last_acked) as f64 / last_t.elapsed().as_secs_f64();
        (last_acked, last_t) = (a, Instant::now());
        let s = json!({
            "t_seconds": started.elapsed().as_secs(),
            "acked": a,
            "acked_per_second": rate.round(),
            "refused_503": refused.load(Ordering::Relaxed),
            "failed": failed.load(Ordering::Relaxed),
            "rss_bytes": rss_bytes(pid),
            "open_files": open_files(pid),
            "log_bytes": dir_bytes(&data.join("log")),
            "lake_bytes": dir_bytes(&data.join("lake")),
            "other_bytes": dir_bytes(&data).saturating_sub(dir_bytes(&data.join("log")) + dir_bytes(&data.join("lake"))),
            "scorer_lag": metric_sum(&metrics, "radar_consumer_lag"),
            "scored": metric_sum(&metrics, "radar_scored_total"),
            "alerts": metric_sum(&metrics, "radar_alerts_total"),
        });
        eprintln!("{s}");
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let clean_exit = up.stop()?;
    let get = |s: &serde_json::Value, k: &str| s[k].as_f64().unwrap_or(0.0);
    // After the first sample (start-up), compare the second and the last.
    let (first, last) = (samples.get(1).or(samples.first()), samples.last());
    let summary = match (first, last) {
        (Some(f), Some(l)) => json!({
            "minutes": args.minutes,
            "offered_rate": args.rate,
            "mean_acked_per_second": (get(l, "acked") / started.elapsed().as_secs_f64()).round(),
            "rss_bytes": [get(f, "rss_bytes"), get(l, "rss_bytes")],
            "rss_max_bytes": samples.iter().map(|s| get(s, "rss_bytes")).fold(0.0, f64::max),
            "open_files": [get(f, "open_files"), get(l, "open_files")],
            "log_bytes": [get(f, "log_bytes"), get(l, "log_bytes")],
            "log_max_bytes": samples.iter().map(|s| get(s, "log_bytes")).fold(0.0, f64::max),
            "lake_bytes_per_minute": (get(l, "lake_bytes") - get(f, "lake_bytes")) / ((get(l, "t_seconds") - get(f, "t_seconds")) / 60.0).max(1e-9),
            "scorer_lag_last": get(l, "scorer_lag"),
            "refused_503": get(l, "refused_503"),
            "failed": get(l, "failed"),
            "clean_exit": clean_exit,
        }),
        _ => json!({"error": "no samples"}),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"soak": summary, "samples": samples}))?
    );
    Ok(())
}
