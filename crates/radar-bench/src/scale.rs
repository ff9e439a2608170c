//! The scorer scaled out: N `radar up` workers in one consumer group on a
//! Kafka-protocol broker score the same backlog; how long until the group
//! has committed every partition to its end, for each N.
//!
//! Each N gets a fresh deployment (its own stream, so its own topic): the
//! history is ingested, captured and trained on, then the workers start
//! together and score it (every event of the topic, alerts included).
//! Figures: wall time from the workers' start, and the rate between the
//! group's commits passing 10% and 90% of the backlog, which leaves process
//! start, group joins and the last checkpoint out.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use radar_core::synth::transactions::TransactionSpec;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The broker (e.g. `$RADAR_KAFKA_BROKERS` after `source scripts/services.sh`).
    #[arg(long)]
    brokers: String,
    /// Worker counts to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    workers: Vec<usize>,
    /// Partitions of each stream's topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Generated cardholders; with `days`, sets the backlog's size.
    #[arg(long, default_value_t = 20_000)]
    cardholders: usize,
    #[arg(long, default_value_t = 28.0)]
    days: f64,
    /// The radar binary (default: beside this bench).
    #[arg(long)]
    radar: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Figure {
    workers: usize,
    partitions: u32,
    events: u64,
    /// From the workers' start until every partition was committed to its end.
    seconds: f64,
    events_per_second: f64,
    /// From 10% to 90% of the backlog committed.
    steady_seconds: f64,
    steady_events_per_second: f64,
}

pub fn run(args: Args) -> Result<()> {
    #[cfg(not(feature = "kafka"))]
    {
        let _ = args;
        bail!("radar-bench was built without the `kafka` feature");
    }
    #[cfg(feature = "kafka")]
    {
        let bin = crate::served::radar_bin(args.radar.as_deref())?;
        let mut figures = Vec::new();
        for &n in &args.workers {
            figures.push(measure(&bin, &args, n)?);
            eprintln!("scale: {:?}", figures.last());
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "bench": "scale",
                "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "figures": figures,
            }))?
        );
        Ok(())
    }
}

#[cfg(feature = "kafka")]
fn measure(bin: &std::path::Path, args: &Args, workers: usize) -> Result<Figure> {
    use radar_log::EventLog;
    use radar_log::kafka::{KafkaConfig, KafkaLog};

    let dir = tempfile::tempdir()?;
    let stream = format!("scale{workers}_{}", radar_core::time::now_micros());
    let extra = format!(
        "[log]\nkind = \"kafka\"\npartitions = {}\n\
         kafka = {{ brokers = \"{}\", session_timeout_ms = 6000, heartbeat_interval_ms = 1000 }}",
        args.partitions, args.brokers
    );
    eprintln!("scale: {workers} worker(s): history, capture, train");
    let deployment = crate::served::Deployment::train_stream(
        bin,
        dir.path(),
        TransactionSpec {
            cardholders: args.cardholders,
            days: args.days,
            seed: 5,
            ..TransactionSpec::default()
        },
        4 * args.cardholders,
        &extra,
        &stream,
    )?;
    let log = KafkaLog::connect(KafkaConfig::plaintext(&args.brokers))?;
    // Read to the end: a Kafka-protocol broker's high watermark may lag.
    let mut ends = Vec::new();
    for p in 0..args.partitions {
        let (mut at, _) = log.offsets(&stream, p)?;
        loop {
            let got = log.read(&stream, p, at, 50_000)?;
            match got.last() {
                Some(last) => at = last.offset + 1,
                None => break,
            }
        }
        ends.push(at);
    }
    let events: u64 = ends.iter().sum();
    let committed =
        |p: u32| -> Result<u64> { Ok(log.committed(&stream, "radar-scorer", p)?.unwrap_or(0)) };
    let start = Instant::now();
    let mut ups = Vec::new();
    for _ in 0..workers {
        let port = crate::served::free_port()?;
        ups.push(deployment.spawn_up(bin, port, &["--alerts-from", "all"])?);
    }
    // When the group's commits first passed 10% and 90% of the backlog.
    let mut at_10: Option<(Instant, u64)> = None;
    let mut at_90: Option<(Instant, u64)> = None;
    loop {
        let now: Vec<u64> = (0..args.partitions).map(committed).collect::<Result<_>>()?;
        let done: u64 = now.iter().sum();
        if at_10.is_none() && done * 10 >= events {
            at_10 = Some((Instant::now(), done));
        }
        if at_90.is_none() && done * 10 >= events * 9 {
            at_90 = Some((Instant::now(), done));
        }
        if now.iter().zip(&ends).all(|(c, e)| c >= e) {
            break;
        }
        if start.elapsed() > Duration::from_secs(1800) {
            bail!("the workers did not score the backlog in 30 minutes: {now:?} of {ends:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = start.elapsed().as_secs_f64();
    let ((t10, d10), (t90, d90)) = at_10.zip(at_90).context("no commit was seen")?;
    let steady_seconds = t90.duration_since(t10).as_secs_f64();
    for up in ups {
        up.stop()?;
    }
    Ok(Figure {
        workers,
        partitions: args.partitions,
        events,
        seconds,
        events_per_second: events as f64 / seconds,
        steady_seconds,
        steady_events_per_second: (d90 - d10) as f64 / steady_seconds.max(1e-9),
    })
}
