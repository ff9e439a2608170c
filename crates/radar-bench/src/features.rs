//! Stream decoding and feature computation speed, and feature-state memory
//! per entity.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use radar_core::decode::{Decoder, Record};
use radar_core::features::FeatureEngine;
use radar_core::synth::transactions::{TransactionSpec, Transactions};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stream declaration (the shipped transactions example by default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Events for the speed measurements.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Cardholders for the memory measurement.
    #[arg(long, default_value_t = 1_000_000)]
    entities: usize,
}

#[derive(Debug, Serialize)]
struct Figure {
    figure: &'static str,
    unit: &'static str,
    value: f64,
    target: Option<f64>,
    met: Option<bool>,
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn pool1() -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(1).build()?)
}

pub fn run(args: Args) -> Result<()> {
    let config = args.config.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/transactions.toml")
    });
    let schema = radar_pipeline::events::load_schema(&config, Some("transactions"))?;
    let spec = TransactionSpec {
        cardholders: 20_000,
        days: 365.0,
        ..TransactionSpec::default()
    };
    eprintln!("generating {} events", args.events);
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(args.events);
    let mut s = String::new();
    for tx in Transactions::new(spec).take(args.events) {
        s.clear();
        tx.write_json(&mut s);
        lines.push(s.as_bytes().to_vec());
    }
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let mut figures = Vec::new();
    let met = |v: f64, t: f64| Some(v >= t);

    // Decode + validate, one thread (best of 3).
    let (records, decode_rate) = pool1()?.install(|| -> Result<(Vec<Record>, f64)> {
        let mut best = f64::INFINITY;
        let mut records = Vec::new();
        for _ in 0..3 {
            let mut decoder = Decoder::new(schema.clone());
            let mut out = Vec::with_capacity(lines.len());
            let t0 = Instant::now();
            for l in &lines {
                out.push(
                    decoder
                        .decode_json(l, 0)
                        .ok()
                        .context("generated events are valid")?,
                );
            }
            best = best.min(t0.elapsed().as_secs_f64());
            records = out;
        }
        Ok((records, lines.len() as f64 / best))
    })?;
    figures.push(Figure {
        figure: "decode_validate_events_per_second_1_core",
        unit: "events/s",
        value: decode_rate,
        target: Some(500_000.0),
        met: met(decode_rate, 500_000.0),
    });
    figures.push(Figure {
        figure: "decode_validate_megabytes_per_second_1_core",
        unit: "MB/s",
        value: decode_rate * bytes as f64 / lines.len() as f64 / 1e6,
        target: None,
        met: None,
    });

    // Features, one thread (best of 3 fresh passes).
    let mut best = f64::INFINITY;
    let mut row = vec![0.0; schema.columns.len()];
    for _ in 0..3 {
        let mut engine = FeatureEngine::new(schema.clone());
        let t0 = Instant::now();
        for r in &records {
            engine.process(r, &mut row);
            black_box(&row);
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let feature_rate = records.len() as f64 / best;
    figures.push(Figure {
        figure: "features_events_per_second_1_core",
        unit: "events/s",
        value: feature_rate,
        target: Some(2_000_000.0),
        met: met(feature_rate, 2_000_000.0),
    });
    drop(records);
    drop(lines);

    // Memory: one event for each of N cardholders (every state slot written).
    let template = Transactions::new(TransactionSpec {
        cardholders: 1,
        ..TransactionSpec::default()
    })
    .next()
    .context("one transaction")?;
    let mut decoder = Decoder::new(schema.clone());
    let rss_before = rss_bytes();
    let mut engine = FeatureEngine::new(schema.clone());
    let mut line = String::new();
    for i in 0..args.entities {
        let mut tx = template.clone();
        tx.card = i as u32;
        tx.ts += i as i64;
        line.clear();
        tx.write_json(&mut line);
        let r = decoder
            .decode_json(line.as_bytes(), 0)
            .ok()
            .context("valid event")?;
        engine.process(&r, &mut row);
    }
    let rss_after = rss_bytes();
    let heap = engine.state_heap_bytes() as f64 / args.entities as f64;
    figures.push(Figure {
        figure: "state_bytes_per_entity_heap",
        unit: "bytes",
        value: heap,
        target: Some(256.0),
        met: Some(heap <= 256.0),
    });
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        let rss = b.saturating_sub(a) as f64 / args.entities as f64;
        figures.push(Figure {
            figure: "state_bytes_per_entity_rss",
            unit: "bytes",
            value: rss,
            target: Some(256.0),
            met: Some(rss <= 256.0),
        });
    }
    figures.push(Figure {
        figure: "state_words_per_entity",
        unit: "words",
        value: engine.state_words_per_entity() as f64,
        target: None,
        met: None,
    });
    black_box(&engine);

    for f in &figures {
        eprintln!(
            "{:<46} {:>14.1} {:<9} {}",
            f.figure,
            f.value,
            f.unit,
            f.target.map_or(String::new(), |t| format!(
                "target {t} {}",
                if f.met == Some(true) {
                    "met"
                } else {
                    "NOT met"
                }
            ))
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "benchmark": "features",
            "config": config.display().to_string(),
            "events": args.events,
            "entities": args.entities,
            "cpu": crate::speed::cpu_model(),
            "figures": figures,
        }))?
    );
    Ok(())
}
