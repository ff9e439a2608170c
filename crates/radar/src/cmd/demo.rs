//! `radar demo`: the whole loop on one machine, from nothing: a bootstrap
//! history ingested, captured, trained on and promoted, then live traffic
//! through the HTTP ingest endpoint while serving, and a report of what the
//! detector caught.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use radar_core::synth::transactions::TransactionSpec;
use radar_pipeline::Config;
use radar_pipeline::demo::{self, LiveFeed};
use radar_pipeline::pipeline::{Pipeline, PipelineOptions};
use radar_pipeline::train::{self, TrainSpec};
use radar_server::http::Server;

use super::render::{DemoReport, print_demo};

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
            None => s.strip_suffix('m').map_or((s, 1.0), |n| (n, 60.0)),
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

pub fn run(args: DemoArgs) -> Result<()> {
    let rate: f64 = match args.rate.as_str() {
        "max" => f64::INFINITY,
        r => r
            .parse()
            .ok()
            .filter(|r: &f64| *r > 0.0 && r.is_finite())
            .ok_or_else(|| {
                anyhow::anyhow!("--rate: expected events per second or `max`, got `{r}`")
            })?,
    };
    let duration = parse_duration(&args.duration)?;
    if args.cardholders == 0 {
        bail!("--cardholders must be at least 1");
    }
    demo::prepare_dir(&args.data_dir)?;
    let mut config: Config =
        toml::from_str(demo::DECLARATION).context("the built-in transactions declaration")?;
    config.storage.root = args.data_dir.display().to_string();
    let schema = config.stream(None)?;
    let t_start = Instant::now();

    eprintln!(
        "radar demo: generating {:.0} days of card transactions for {} cardholders",
        args.bootstrap_days, args.cardholders
    );
    let spec = TransactionSpec {
        cardholders: args.cardholders,
        seed: args.seed,
        days: args.bootstrap_days + 3650.0,
        ..TransactionSpec::default()
    };
    let bar = super::bar("{spinner} ingest    {pos} events", true);
    let (bootstrap, generator) =
        demo::bootstrap(&config, spec, args.bootstrap_days, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    eprintln!("ingested and captured {bootstrap} events");

    let mut train_spec = TrainSpec::for_stream(&schema);
    train_spec.detector.seed = Some(args.seed);
    train_spec.promote = true;
    let trained = train::train(&config, &train_spec, &train::quiet)?;
    eprintln!(
        "trained {} v{} on {} rows in {:.1} s and promoted it to champion",
        trained.model, trained.version, trained.train_rows, trained.seconds
    );

    let pipeline = Pipeline::start(&config, &PipelineOptions::default())?;
    let server = Server::start(&pipeline, ([127, 0, 0, 1], args.port).into(), 16 << 20)
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let url = format!("http://{}", server.addr);
    let metrics = pipeline.shared.metrics.clone();
    // The scorer works through the history first (its feature state warms
    // up on it); the live phase starts once it has.
    let warm = Instant::now();
    while metrics.scored() < bootstrap as u64 {
        if warm.elapsed() > Duration::from_secs(300) {
            bail!("the scorer did not get through the history in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let scored_before = metrics.scored();
    // History events were ingested long before they were scored: their
    // latency says nothing about live decisions.
    metrics.decision_latency.reset();
    eprintln!(
        "serving on {url}: scored the {bootstrap} history events in {:.1} s; live traffic for {:.0} s at {}",
        warm.elapsed().as_secs_f64(),
        duration.as_secs_f64(),
        if rate.is_finite() {
            format!("{rate} events/s")
        } else {
            "the highest rate radar takes".into()
        }
    );

    let endpoint = format!("{url}/v1/streams/{}/events", schema.name);
    let feed = LiveFeed::start(&pipeline.rt, endpoint, rate, duration, generator);
    let mut last_status = Instant::now();
    while !feed.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if last_status.elapsed() >= Duration::from_secs(5) {
            last_status = Instant::now();
            let s = feed.sent.load(std::sync::atomic::Ordering::Relaxed);
            let elapsed = feed.started.elapsed().as_secs_f64();
            eprintln!(
                "[{elapsed:>5.1}s] sent {s} ({:.0}/s)  scored {}  alerts {}  decision p99 {}",
                s as f64 / elapsed,
                metrics.scored() - scored_before,
                metrics.alerts(),
                metrics
                    .decision_latency
                    .quantile(0.99)
                    .map_or("-".into(), |q| format!("≤ {:.1} ms", q * 1000.0)),
            );
        }
    }
    let live = feed.finish(&pipeline.rt)?;
    if let Some(why) = &live.early {
        eprintln!("the live phase stopped early: {why}");
    }
    // Let the scorer finish what was sent.
    let drain = Instant::now();
    while metrics.scored() < scored_before + live.sent && drain.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alerted: HashSet<String> = pipeline.alerts.event_ids()?.into_iter().collect();
    let report = DemoReport {
        bootstrap_events: bootstrap,
        live_events_sent: live.sent,
        live_events_scored: metrics.scored() - scored_before,
        live_seconds: live.seconds.min(duration.as_secs_f64().max(live.seconds)),
        live_events_per_second: live.sent as f64 / live.seconds,
        target_rate: rate.is_finite().then_some(rate),
        caught: demo::caught(&live.labels, &alerted),
        decision_latency_p50_ms: metrics.decision_latency.quantile(0.5).map(|q| q * 1000.0),
        decision_latency_p99_ms: metrics.decision_latency.quantile(0.99).map(|q| q * 1000.0),
        ingest_request_p99_ms: (!live.request_ms.is_empty())
            .then(|| live.request_ms[((live.request_ms.len() - 1) as f64 * 0.99) as usize]),
        model: pipeline.model_name.clone(),
        model_version: trained.version,
        data_dir: args.data_dir.display().to_string(),
        url,
    };
    print_demo(&report, &schema.name, t_start.elapsed().as_secs_f64());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    server.stop(&pipeline.rt);
    Ok(pipeline.shutdown()?)
}
