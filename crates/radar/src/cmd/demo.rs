//! `radar demo`: the whole loop on one machine, from nothing: a bootstrap
//! history ingested, captured, trained on and promoted, then live traffic
//! through the HTTP ingest endpoint while serving, and a report of what the
//! detector caught.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use radar_core::synth::transactions::{Shift, TransactionSpec};
use radar_pipeline::Config;
use radar_pipeline::demo::{self, LiveFeed};
use radar_pipeline::pipeline::{Pipeline, PipelineOptions};
use radar_pipeline::train::{self, TrainSpec};
use radar_server::http::Server;

use super::args::DemoArgs;
use super::report::{DemoReport, ModelPhase, print_demo};

/// What both demos start from: a bootstrap history captured and a first
/// model trained on it and promoted.
pub(super) struct Started {
    pub config: Config,
    pub schema: radar_core::schema::StreamSchema,
    pub rate: f64,
    pub duration: Duration,
    pub boot: demo::Bootstrap,
    pub first: train::TrainReport,
    pub train_spec: TrainSpec,
    pub t_start: Instant,
}

/// Checks the arguments, generates and captures the history (with
/// `extra` appended to the built-in declaration and the generator shifted
/// by what `shift` makes of the history's end, the rate and the live
/// phase's length) and trains the first champion.
pub(super) fn start(
    args: &DemoArgs,
    extra: &str,
    shift: impl FnOnce(i64, f64, Duration) -> Option<Shift>,
) -> Result<Started> {
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
    let duration = radar_core::time::parse_duration(&args.duration)
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    if args.cardholders == 0 {
        bail!("--cardholders must be at least 1");
    }
    demo::prepare_dir(&args.data_dir)?;
    let mut config: Config = toml::from_str(&format!("{}\n{extra}", demo::DECLARATION))
        .context("the built-in transactions declaration")?;
    config.storage.root = args.data_dir.display().to_string();
    let schema = config.stream(None)?;
    let t_start = Instant::now();

    eprintln!(
        "radar demo: generating {:.0} days of card transactions for {} cardholders",
        args.bootstrap_days, args.cardholders
    );
    let mut spec = TransactionSpec {
        cardholders: args.cardholders,
        seed: args.seed,
        days: args.bootstrap_days + 3650.0,
        ..TransactionSpec::default()
    };
    let boot_end = spec.start + (args.bootstrap_days * 86_400e6) as i64;
    spec.shift = shift(boot_end, rate, duration);
    let bar = super::bar("{spinner} ingest    {pos} events", true);
    let boot = demo::bootstrap(&config, spec, args.bootstrap_days, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    eprintln!(
        "ingested and captured {} events; no labels yet",
        boot.events
    );

    let mut train_spec = TrainSpec::for_stream(&schema);
    train_spec.detector.seed = Some(args.seed);
    train_spec.promote = true;
    let first = train::train(&config, &train_spec, &train::quiet)?;
    eprintln!(
        "trained {} v{} ({}) on {} rows in {:.1} s and promoted it to champion",
        first.model, first.version, first.detector, first.train_rows, first.seconds
    );
    Ok(Started {
        config,
        schema,
        rate,
        duration,
        boot,
        first,
        train_spec,
        t_start,
    })
}

/// The pipeline and the HTTP API of a demo, once the scorer has worked
/// through the history.
pub(super) struct Serving {
    pub pipeline: Pipeline,
    pub server: Server,
    pub url: String,
    /// Events scored before the live phase.
    pub scored_before: u64,
}

/// Starts the pipeline and the API on 127.0.0.1:`port`, and waits until
/// the scorer has worked through the `history` events (its feature state
/// warms up on them; they raise no alert).
pub(super) fn serve(config: &Config, port: u16, history: usize) -> Result<Serving> {
    let pipeline = Pipeline::start(config, &PipelineOptions::default())?;
    let server = Server::start(
        std::slice::from_ref(&pipeline),
        ([127, 0, 0, 1], port).into(),
        Default::default(),
    )
    .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let url = format!("http://{}", server.addr);
    let metrics = &pipeline.shared.metrics;
    demo::wait_scored(metrics, history as u64, Duration::from_secs(300))?;
    // History events were ingested long before they were scored: their
    // latency says nothing about live decisions.
    metrics.decision_latency.reset();
    let scored_before = metrics.scored();
    Ok(Serving {
        pipeline,
        server,
        url,
        scored_before,
    })
}

pub fn run(args: DemoArgs) -> Result<()> {
    if args.drift {
        return super::demo_drift::run(args);
    }
    let Started {
        config,
        schema,
        rate,
        duration,
        boot,
        first,
        mut train_spec,
        t_start,
    } = start(&args, "", |_, _, _| None)?;

    let Serving {
        pipeline,
        server,
        url,
        scored_before,
    } = serve(&config, args.port, boot.events)?;
    let metrics = pipeline.shared.metrics.clone();
    eprintln!(
        "serving on {url} (the dashboard: {url}/); live traffic for {:.0} s at {}, labels and a retrain half-way",
        duration.as_secs_f64(),
        if rate.is_finite() {
            format!("{rate} events/s")
        } else {
            "the highest rate radar takes".into()
        }
    );
    let endpoint = format!("{url}/v1/streams/{}/events", schema.name);
    let status = |sent: u64, secs: f64| {
        eprintln!(
            "[{secs:>5.1}s] sent {sent} ({:.0}/s)  scored {}  alerts {}",
            sent as f64 / secs,
            metrics.scored() - scored_before,
            metrics.alerts(),
        )
    };
    // Phase 1: the unsupervised champion decides.
    let feed = LiveFeed::start(
        &pipeline.rt,
        endpoint.clone(),
        rate,
        duration / 2,
        boot.generator,
        boot.seed,
        None,
    );
    let (phase1, generator) = feed.finish(&pipeline.rt, &status)?;
    // Labels arrive: analysts' verdicts and chargebacks known by now (in
    // event time), through the labels API; then a retrain uses them.
    let now = phase1.last_event_time.max(boot.last_event_time);
    let mut said = boot.labels;
    said.extend(phase1.team.iter().cloned());
    let (recorded, refused) =
        demo::post_labels(&pipeline.rt, &format!("{url}/v1/labels"), &said, now)?;
    pipeline.export_labels()?;
    train_spec.labels_as_of = Some(now);
    let second = train::train(&config, &train_spec, &train::quiet)?;
    eprintln!(
        "{recorded} labels recorded ({refused} about events not captured yet); retrained {} v{} ({}) in {:.1} s and promoted it",
        second.model, second.version, second.detector, second.seconds
    );
    demo::wait_serving(&metrics, second.version, Duration::from_secs(60))?;
    // Phase 2: the retrained champion decides.
    let feed = LiveFeed::start(
        &pipeline.rt,
        endpoint,
        rate,
        duration - duration / 2,
        generator,
        boot.seed,
        None,
    );
    let (phase2, _) = feed.finish(&pipeline.rt, &status)?;
    for why in [&phase1.early, &phase2.early].into_iter().flatten() {
        eprintln!("a live phase stopped early: {why}");
    }
    let sent = phase1.sent + phase2.sent;
    demo::wait_scored(&metrics, scored_before + sent, Duration::from_secs(60)).ok();
    let alerted: HashSet<String> = pipeline.alerts.event_ids()?.into_iter().collect();
    let mut all = phase1.labels.clone();
    all.extend(phase2.labels.clone());
    let mut request_ms: Vec<f64> = phase1
        .request_ms
        .iter()
        .chain(&phase2.request_ms)
        .copied()
        .collect();
    request_ms.sort_by(f64::total_cmp);
    let seconds = phase1.seconds + phase2.seconds;
    let report = DemoReport {
        bootstrap_events: boot.events,
        live_events_sent: sent,
        live_events_scored: metrics.scored() - scored_before,
        live_seconds: seconds,
        live_events_per_second: sent as f64 / seconds,
        target_rate: rate.is_finite().then_some(rate),
        caught: demo::caught(&all, &alerted),
        models: vec![
            ModelPhase {
                version: first.version,
                detector: first.detector,
                caught: demo::caught(&phase1.labels, &alerted),
            },
            ModelPhase {
                version: second.version,
                detector: second.detector,
                caught: demo::caught(&phase2.labels, &alerted),
            },
        ],
        labels_recorded: recorded,
        decision_latency_p50_ms: metrics.decision_latency.quantile(0.5).map(|q| q * 1000.0),
        decision_latency_p99_ms: metrics.decision_latency.quantile(0.99).map(|q| q * 1000.0),
        ingest_request_p99_ms: (!request_ms.is_empty())
            .then(|| request_ms[((request_ms.len() - 1) as f64 * 0.99) as usize]),
        model: pipeline.model_name.clone(),
        model_version: second.version,
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
