//! `radar demo`: the whole loop on one machine, from nothing. Generates a
//! bootstrap history, ingests and captures it, trains and promotes a
//! champion, then streams live traffic through the HTTP ingest endpoint
//! while serving, and reports what the detector caught.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use radar_core::synth::transactions::{FRAUD_KINDS, TransactionSpec, Transactions};
use radar_lake::capture::{self, CaptureOptions};
use radar_log::Record;
use serde::Serialize;

use super::ops::Place;
use super::train::{TrainArgs, train};
use super::up::{UpArgs, start};
use crate::config::Config;

const DECLARATION: &str = include_str!("../../../../examples/transactions.toml");

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Live events per second sent to the HTTP ingest endpoint, or `max`.
    #[arg(long, default_value = "2000")]
    pub rate: String,
    /// How long the live phase lasts (`30s`, `2m`, or seconds).
    #[arg(long, default_value = "30s")]
    pub duration: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Where the demo keeps its data; a previous demo's data there is
    /// replaced.
    #[arg(long, default_value = "./radar-demo")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub cardholders: usize,
    /// Days of event-time history generated before the live phase.
    #[arg(long, default_value_t = 14.0)]
    pub bootstrap_days: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the final report as JSON too.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(s: &str) -> Result<Duration> {
    let (num, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => match s.strip_suffix('s') {
            Some(n) => (n, 1.0),
            None => match s.strip_suffix('m') {
                Some(n) => (n, 60.0),
                None => (s, 1.0),
            },
        },
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--duration: expected `30s`, `2m` or seconds, got `{s}`"))?;
    if !(v > 0.0 && v.is_finite()) {
        bail!("--duration must be positive, got `{s}`");
    }
    Ok(Duration::from_secs_f64(v * unit))
}

#[derive(Debug, Serialize)]
pub struct KindReport {
    pub frauds: usize,
    pub caught: usize,
    pub recall: f64,
}

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub bootstrap_events: usize,
    pub live_events_sent: u64,
    pub live_events_scored: u64,
    pub live_seconds: f64,
    pub live_events_per_second: f64,
    pub target_rate: Option<f64>,
    pub alerts_on_live_events: usize,
    pub frauds_in_live_events: usize,
    pub true_positives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub recall_by_kind: std::collections::BTreeMap<String, KindReport>,
    pub decision_latency_p50_ms: Option<f64>,
    pub decision_latency_p99_ms: Option<f64>,
    pub ingest_request_p99_ms: Option<f64>,
    pub model: String,
    pub model_version: i64,
    pub data_dir: String,
    pub url: String,
}

fn prepare_dir(dir: &PathBuf) -> Result<()> {
    if dir.exists() {
        let radar_data =
            dir.join("log").exists() || dir.join("radar.db").exists() || dir.join("lake").exists();
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if radar_data {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("clearing the previous demo in `{}`", dir.display()))?;
        } else if !empty {
            bail!(
                "`{}` holds other files; give the demo an empty or new --data-dir",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}

pub fn run(args: DemoArgs) -> Result<()> {
    let max_rate = args.rate == "max";
    let rate: f64 = if max_rate {
        f64::INFINITY
    } else {
        args.rate
            .parse()
            .ok()
            .filter(|r: &f64| *r > 0.0 && r.is_finite())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--rate: expected events per second or `max`, got `{}`",
                    args.rate
                )
            })?
    };
    let duration = parse_duration(&args.duration)?;
    if args.cardholders == 0 {
        bail!("--cardholders must be at least 1");
    }
    prepare_dir(&args.data_dir)?;
    let mut config: Config =
        toml::from_str(DECLARATION).context("the built-in transactions declaration")?;
    config.storage.root = args.data_dir.display().to_string();
    let schema = config.stream(None)?;
    let t_start = Instant::now();

    // 1. History.
    let spec = TransactionSpec {
        cardholders: args.cardholders,
        seed: args.seed,
        days: args.bootstrap_days + 3650.0,
        ..TransactionSpec::default()
    };
    let boot_end = spec.start + (args.bootstrap_days * 86_400e6) as i64;
    let mut generator = Transactions::new(spec).peekable();
    eprintln!(
        "radar demo: generating {:.0} days of card transactions for {} cardholders",
        args.bootstrap_days, args.cardholders
    );
    let log = config.open_log()?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} ingest    {pos} events {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut batch = Vec::with_capacity(10_000);
    let mut line = String::new();
    let mut bootstrap = 0usize;
    while let Some(tx) = generator.next_if(|t| t.ts < boot_end) {
        line.clear();
        tx.write_json(&mut line);
        batch.push(Record::new(
            Some(format!("card-{:07}", tx.card).as_bytes()),
            line.clone().into_bytes(),
            super::ops::now_micros(),
        ));
        if batch.len() == batch.capacity() {
            log.append(&schema.name, &batch)?;
            bootstrap += batch.len();
            bar.set_position(bootstrap as u64);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        log.append(&schema.name, &batch)?;
        bootstrap += batch.len();
    }
    bar.finish_and_clear();
    eprintln!("ingested {bootstrap} events into the log; capturing them to the lake");

    // 2. Capture, train, promote.
    {
        let lake = config.open_lake()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let options = CaptureOptions {
            until_caught_up: true,
            group: "radar-capture".into(),
            ..CaptureOptions::default()
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let stats = capture::run(
            log.as_ref(),
            &lake,
            &schema,
            &schema.name,
            &options,
            &stop,
            rt.handle(),
            &radar_core::health::Health::default(),
        )?;
        eprintln!(
            "captured {} events into {} Parquet files",
            stats.events, stats.files
        );
    }
    drop(log);
    let train_args = TrainArgs {
        stream: None,
        from: None,
        to: None,
        promote: true,
        model: None,
        holdout: 0.2,
        min_history: 5,
        n_estimators: 100,
        max_samples: "2048".into(),
        contamination: "0.01".into(),
        seed: args.seed,
        json: false,
        place: Place {
            config: None,
            data_dir: None,
        },
    };
    let trained = train(&config, &train_args, true)?;
    eprintln!(
        "trained {} v{} on {} rows in {:.1} s and promoted it to champion",
        trained.model, trained.version, trained.train_rows, trained.seconds
    );

    // 3. Serve.
    let up = UpArgs {
        stream: None,
        host: "127.0.0.1".into(),
        port: args.port,
        stdout_alerts: false,
        webhook: None,
        webhook_queue: 10_000,
        webhook_retry_seconds: 600,
        max_body_bytes: 16 << 20,
        place: Place {
            config: None,
            data_dir: None,
        },
    };
    let running = start(&config, &up)?;
    let url = format!("http://{}", running.addr);
    let metrics = running.shared.metrics.clone();
    // The scorer works through the history first (its feature state warms
    // up on it); the live phase starts once it has.
    let warm = Instant::now();
    while (metrics.scored.load(Ordering::Relaxed) as usize) < bootstrap {
        if warm.elapsed() > Duration::from_secs(300) {
            bail!("the scorer did not get through the history in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let scored_before = metrics.scored.load(Ordering::Relaxed);
    // History events were ingested long before they were scored: their
    // latency says nothing about live decisions.
    metrics.decision_latency.reset();
    eprintln!(
        "serving on {url}: scored the {} history events in {:.1} s; live traffic for {:.0} s at {}",
        bootstrap,
        warm.elapsed().as_secs_f64(),
        duration.as_secs_f64(),
        if max_rate {
            "the highest rate radar takes".to_string()
        } else {
            format!("{rate} events/s")
        }
    );

    // 4. Live traffic through the HTTP ingest endpoint.
    let labels: Arc<Mutex<HashMap<String, Option<usize>>>> = Arc::new(Mutex::new(HashMap::new()));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let request_ms: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let generator = Arc::new(Mutex::new(generator));
    let live_start = Instant::now();
    let sender = {
        let (labels, sent, request_ms, generator, url) = (
            labels.clone(),
            sent.clone(),
            request_ms.clone(),
            generator.clone(),
            url.clone(),
        );
        let stream = schema.name.clone();
        running.rt.spawn(async move {
            let client = reqwest::Client::new();
            let endpoint = format!("{url}/v1/streams/{stream}/events");
            let per_request = if rate.is_finite() {
                (rate / 100.0).ceil().max(1.0) as usize
            } else {
                2000
            };
            let mut body = String::new();
            loop {
                let elapsed = live_start.elapsed();
                if elapsed >= duration {
                    break;
                }
                if rate.is_finite() {
                    let due = (elapsed.as_secs_f64() * rate) as u64;
                    if sent.load(Ordering::Relaxed) >= due {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                }
                body.clear();
                let mut n = 0;
                {
                    let (Ok(mut g), Ok(mut l)) = (generator.lock(), labels.lock()) else {
                        break;
                    };
                    for tx in g.by_ref().take(per_request) {
                        tx.write_json(&mut body);
                        body.push('\n');
                        l.insert(format!("tx-{:010}", tx.event_id), tx.fraud);
                        n += 1;
                    }
                }
                if n == 0 {
                    break;
                }
                let t = Instant::now();
                match client.post(&endpoint).body(body.clone()).send().await {
                    Ok(r) if r.status().is_success() => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                        if let Ok(mut m) = request_ms.lock() {
                            m.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    Ok(r) => {
                        eprintln!("ingest answered {}", r.status());
                        break;
                    }
                    Err(e) => {
                        eprintln!("ingest request failed: {e}");
                        break;
                    }
                }
            }
        })
    };
    let mut last_status = Instant::now();
    while !sender.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if last_status.elapsed() >= Duration::from_secs(5) {
            last_status = Instant::now();
            let s = sent.load(Ordering::Relaxed);
            let scored = metrics.scored.load(Ordering::Relaxed) - scored_before;
            eprintln!(
                "[{:>5.1}s] sent {s} ({:.0}/s)  scored {scored}  alerts {}  decision p99 {}",
                live_start.elapsed().as_secs_f64(),
                s as f64 / live_start.elapsed().as_secs_f64(),
                metrics.alerts.load(Ordering::Relaxed),
                metrics
                    .decision_latency
                    .quantile(0.99)
                    .map_or("-".into(), |q| format!("≤ {:.1} ms", q * 1000.0)),
            );
        }
    }
    let live_seconds = live_start.elapsed().as_secs_f64().min(
        duration
            .as_secs_f64()
            .max(live_start.elapsed().as_secs_f64()),
    );
    let live_sent = sent.load(Ordering::Relaxed);
    // Let the scorer finish what was sent.
    let drain = Instant::now();
    while metrics.scored.load(Ordering::Relaxed) < scored_before + live_sent
        && drain.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let live_scored = metrics.scored.load(Ordering::Relaxed) - scored_before;

    // 5. Report.
    let alerted: std::collections::HashSet<String> =
        running.alerts.event_ids()?.into_iter().collect();
    let labels = labels
        .lock()
        .map_err(|_| anyhow::anyhow!("labels lock poisoned"))?
        .clone();
    let mut by_kind: std::collections::BTreeMap<String, KindReport> =
        std::collections::BTreeMap::new();
    let (mut tp, mut alerts_live, mut frauds) = (0, 0, 0);
    for (id, fraud) in &labels {
        let hit = alerted.contains(id);
        alerts_live += hit as usize;
        if let Some(k) = fraud {
            frauds += 1;
            tp += hit as usize;
            let e = by_kind
                .entry(FRAUD_KINDS[*k].to_owned())
                .or_insert(KindReport {
                    frauds: 0,
                    caught: 0,
                    recall: 0.0,
                });
            e.frauds += 1;
            e.caught += hit as usize;
        }
    }
    for k in by_kind.values_mut() {
        k.recall = k.caught as f64 / k.frauds.max(1) as f64;
    }
    let precision = if alerts_live == 0 {
        0.0
    } else {
        tp as f64 / alerts_live as f64
    };
    let recall = if frauds == 0 {
        0.0
    } else {
        tp as f64 / frauds as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let mut req = request_ms
        .lock()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?
        .clone();
    req.sort_by(f64::total_cmp);
    let report = DemoReport {
        bootstrap_events: bootstrap,
        live_events_sent: live_sent,
        live_events_scored: live_scored,
        live_seconds,
        live_events_per_second: live_sent as f64 / live_seconds,
        target_rate: rate.is_finite().then_some(rate),
        alerts_on_live_events: alerts_live,
        frauds_in_live_events: frauds,
        true_positives: tp,
        precision,
        recall,
        f1,
        recall_by_kind: by_kind,
        decision_latency_p50_ms: metrics.decision_latency.quantile(0.5).map(|q| q * 1000.0),
        decision_latency_p99_ms: metrics.decision_latency.quantile(0.99).map(|q| q * 1000.0),
        ingest_request_p99_ms: (!req.is_empty())
            .then(|| req[((req.len() - 1) as f64 * 0.99) as usize]),
        model: running.model_name.clone(),
        model_version: trained.version,
        data_dir: args.data_dir.display().to_string(),
        url: url.clone(),
    };
    print_report(&report, &schema.name, t_start.elapsed().as_secs_f64());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let _ = std::io::stdout().flush();
    running.shutdown()
}

fn print_report(r: &DemoReport, stream: &str, total: f64) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("≤ {v:.1} ms"));
    println!();
    println!("radar demo report ({total:.0} s in all)");
    println!(
        "  history        {} events ingested, captured, trained on",
        r.bootstrap_events
    );
    println!(
        "  live           {} events sent over HTTP in {:.1} s: {:.0} events/s{}; {} scored",
        r.live_events_sent,
        r.live_seconds,
        r.live_events_per_second,
        r.target_rate
            .map_or(" (as fast as radar took them)".into(), |t| format!(
                " (target {t:.0})"
            )),
        r.live_events_scored
    );
    println!(
        "  alerts         {} on live events; {} frauds among them",
        r.alerts_on_live_events, r.frauds_in_live_events
    );
    println!("  precision      {:.3}", r.precision);
    println!("  recall         {:.3}", r.recall);
    println!("  F1             {:.3}", r.f1);
    println!("  recall by kind");
    for (k, v) in &r.recall_by_kind {
        println!(
            "    {k:<22} {:.3}  ({} of {})",
            v.recall, v.caught, v.frauds
        );
    }
    println!(
        "  decision latency (ingest to decision) p50 {}  p99 {}",
        ms(r.decision_latency_p50_ms),
        ms(r.decision_latency_p99_ms)
    );
    println!("  ingest request p99 {}", ms(r.ingest_request_p99_ms));
    println!(
        "  model          {} v{} (champion)",
        r.model, r.model_version
    );
    println!(
        "  data           {}/ (log, lake/, radar.db, alerts.db)",
        r.data_dir
    );
    println!();
    println!("next:");
    println!(
        "  radar up --data-dir {} --config examples/transactions.toml   # serve it again",
        r.data_dir
    );
    println!("  curl -s {}/v1/alerts?limit=5", r.url);
    println!(
        "  curl -s -XPOST {}/v1/streams/{stream}/score -d '{{\"event_id\":\"t1\",\"ts\":\"2026-02-01T03:00:00Z\",\"card_id\":\"card-0000001\",\"amount\":2500,\"merchant_category\":\"jewelry\",\"lat\":48.85,\"lon\":2.35,\"device\":\"dev-new\"}}'",
        r.url
    );
    println!("  curl -s {}/metrics", r.url);
    println!("  radar models ls --data-dir {}", r.data_dir);
}
