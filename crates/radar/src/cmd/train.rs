//! `radar train`: backfill features from the lake with the one feature
//! engine, fit, evaluate on a time-based holdout, record the run, register
//! a version, optionally promote it to champion.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use radar_core::Matrix;
use radar_core::decode::{Record, Value};
use radar_core::features::FeatureEngine;
use radar_core::schema::{FieldType, StreamSchema};
use radar_core::time::format_rfc3339;
use radar_detect::metrics::{self, Confusion};
use radar_detect::{IsolationForest, IsolationForestParams};
use radar_registry::{Bundle, Reference, Registry};
use serde::Serialize;

use super::ops::{Place, time_arg};
use crate::config::Config;
use crate::params;

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[arg(long)]
    pub stream: Option<String>,
    /// Event time from (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Event time to, exclusive (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Move the `champion` alias to the new version.
    #[arg(long)]
    pub promote: bool,
    /// Model name in the registry (default `<stream>-iforest`).
    #[arg(long)]
    pub model: Option<String>,
    /// Share of the event-time span held out for evaluation (when labels
    /// exist).
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Train only on events whose entity had this many earlier events.
    #[arg(long, default_value_t = 5)]
    pub min_history: u32,
    #[arg(long, default_value_t = 100)]
    pub n_estimators: usize,
    #[arg(long, default_value = "2048")]
    pub max_samples: String,
    #[arg(long, default_value = "0.01")]
    pub contamination: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub run: String,
    pub model: String,
    pub version: i64,
    pub promoted: bool,
    pub snapshot: String,
    pub rows: usize,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub threshold: f64,
    pub metrics: serde_json::Value,
    pub seconds: f64,
}

fn bar(len: u64, what: &str, show: bool) -> ProgressBar {
    let b = if show {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what:<9} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

fn label_of(schema: &StreamSchema) -> (Option<usize>, Option<usize>) {
    let bool_label = schema
        .labels()
        .find(|&i| schema.fields[i].ty != FieldType::Category);
    let kind = schema
        .labels()
        .find(|&i| schema.fields[i].ty == FieldType::Category);
    (bool_label, kind)
}

pub fn train(config: &Config, args: &TrainArgs, progress: bool) -> Result<TrainReport> {
    let t0 = Instant::now();
    let schema = config.stream(args.stream.as_deref())?;
    if !(0.0..0.9).contains(&args.holdout) {
        bail!("--holdout must be in [0, 0.9), got {}", args.holdout);
    }
    let from = time_arg("from", &args.from, i64::MIN)?;
    let to = time_arg("to", &args.to, i64::MAX)?;
    let lake = config.open_lake()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // 1. Scan the lake in log order.
    let (records, snapshot) = rt.block_on(async {
        let mut scan = lake.scan(&schema, from, to).await?;
        let b = bar(scan.files().len() as u64, "scan", progress);
        let mut records: Vec<Record> = Vec::new();
        while let Some(rows) = scan.next_file().await? {
            records.extend(rows.into_iter().map(|r| r.record));
            b.inc(1);
        }
        b.finish_and_clear();
        let range = (args.from.is_some() || args.to.is_some()).then_some((from, to));
        let snapshot = lake.snapshot(&schema.name, range).await?;
        Ok::<_, anyhow::Error>((records, snapshot))
    })?;
    if records.len() < 10 {
        bail!(
            "the lake holds {} events of stream `{}` in that range; ingest and capture data first (radar ingest, radar capture)",
            records.len(),
            schema.name
        );
    }

    // 2. Features, with the same engine the scorer runs.
    let b = bar(records.len() as u64, "features", progress);
    let mut engine = FeatureEngine::new(schema.clone());
    let width = engine.width();
    let mut all = Matrix::with_columns(width)?;
    let mut history = Vec::with_capacity(records.len());
    let mut row = vec![0.0; width];
    for (i, r) in records.iter().enumerate() {
        history.push(engine.process(r, &mut row));
        all.push_row(&row)?;
        if i % 10_000 == 0 {
            b.set_position(i as u64);
        }
    }
    b.finish_and_clear();

    // 3. Time-based split.
    let (lo, hi) = records
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), r| (a.min(r.ts), b.max(r.ts)));
    let cut = hi - ((hi - lo) as f64 * args.holdout) as i64;
    let (label, kind) = label_of(&schema);
    let mut train_m = Matrix::with_columns(width)?;
    let mut hold_m = Matrix::with_columns(width)?;
    let mut hold_labels = Vec::new();
    let mut hold_kinds = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if args.holdout > 0.0 && r.ts >= cut {
            hold_m.push_row(all.row(i))?;
            hold_labels.push(
                label
                    .and_then(|l| r.values[l].as_f64())
                    .is_some_and(|v| v != 0.0),
            );
            hold_kinds.push(match kind.map(|k| &r.values[k]) {
                Some(Value::Str(s)) => s.to_string(),
                _ => String::new(),
            });
        } else if history[i] >= args.min_history {
            train_m.push_row(all.row(i))?;
        }
    }
    if train_m.rows() < 2 {
        bail!(
            "only {} training rows after the holdout and --min-history {}",
            train_m.rows(),
            args.min_history
        );
    }

    // 4. Fit.
    let b = bar(1, "fit", progress);
    let p = IsolationForestParams {
        n_estimators: args.n_estimators,
        max_samples: params::max_samples(&args.max_samples).context("--max-samples")?,
        contamination: params::contamination(&args.contamination).context("--contamination")?,
        random_state: Some(args.seed),
        ..IsolationForestParams::default()
    };
    let registry = Registry::open(
        &config.storage.local_dir().join("radar.db"),
        &config.storage.root,
        &config.storage.options(),
    )?;
    let model_name = args
        .model
        .clone()
        .unwrap_or_else(|| format!("{}-iforest", schema.name));
    let run_params = serde_json::json!({
        "stream": schema.name, "n_estimators": args.n_estimators, "max_samples": args.max_samples,
        "contamination": args.contamination, "seed": args.seed, "min_history": args.min_history,
        "holdout": args.holdout, "from": args.from, "to": args.to,
    });
    let run = registry.start_run(&schema.name, &run_params)?;
    let forest = match IsolationForest::fit(&p, train_m.view()) {
        Ok(f) => f,
        Err(e) => {
            let _ = registry.end_run(
                &run,
                "failed",
                &serde_json::json!({"error": e.to_string()}),
                &serde_json::json!({}),
                Some(&snapshot.id),
                None,
            );
            return Err(e.into());
        }
    };
    b.finish_and_clear();

    // 5. Evaluate on the holdout.
    let mut metrics_json = serde_json::Map::new();
    let anomalies = hold_labels.iter().filter(|&&l| l).count();
    if label.is_some() && anomalies > 0 && anomalies < hold_labels.len() {
        let scores = forest.score(hold_m.view())?;
        let c = Confusion::at_threshold(&scores, &hold_labels, forest.threshold())?;
        metrics_json.insert(
            "holdout_roc_auc".into(),
            metrics::roc_auc(&scores, &hold_labels)?.into(),
        );
        metrics_json.insert(
            "holdout_average_precision".into(),
            metrics::average_precision(&scores, &hold_labels)?.into(),
        );
        metrics_json.insert("holdout_precision".into(), c.precision().into());
        metrics_json.insert("holdout_recall".into(), c.recall().into());
        metrics_json.insert("holdout_f1".into(), c.f1().into());
        let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for ((&l, k), &s) in hold_labels.iter().zip(&hold_kinds).zip(&scores) {
            if l {
                let e = by_kind.entry(k.clone()).or_default();
                e.0 += 1;
                e.1 += (s > forest.threshold()) as usize;
            }
        }
        let kinds: serde_json::Map<String, serde_json::Value> = by_kind
            .into_iter()
            .map(|(k, (n, hit))| (k, (hit as f64 / n as f64).into()))
            .collect();
        metrics_json.insert("holdout_recall_by_kind".into(), kinds.into());
    }
    metrics_json.insert("train_rows".into(), train_m.rows().into());
    metrics_json.insert("holdout_rows".into(), hold_m.rows().into());
    let train_scores = forest.score(train_m.view())?;
    let reference = Reference::of(train_m.view(), &train_scores);
    let config_hash = format!(
        "{:016x}",
        radar_core::hash::hash64(format!("{:?}|{:?}", schema.features, schema.fields).as_bytes())
    );
    let bundle = Bundle {
        stream: schema.name.clone(),
        columns: schema.columns.clone(),
        threshold: forest.threshold(),
        forest,
        reference,
        trained: serde_json::json!({
            "run": run, "snapshot": snapshot.id, "rows": train_m.rows(),
            "from": format_rfc3339(lo), "to": format_rfc3339(hi),
        }),
    };
    let metrics_value = serde_json::Value::Object(metrics_json);
    registry.end_run(
        &run,
        "finished",
        &metrics_value,
        &serde_json::json!({"duration_ms": t0.elapsed().as_millis() as u64}),
        Some(&snapshot.id),
        Some(&config_hash),
    )?;
    let mv = rt.block_on(registry.register(
        &model_name,
        Some(&run),
        &bundle.to_bytes(),
        &metrics_value,
    ))?;
    if args.promote {
        registry.set_alias(
            &model_name,
            "champion",
            mv.version,
            &format!("radar train --promote (run {run})"),
        )?;
    }
    Ok(TrainReport {
        run,
        model: model_name,
        version: mv.version,
        promoted: args.promote,
        snapshot: snapshot.id,
        rows: records.len(),
        train_rows: train_m.rows(),
        holdout_rows: hold_m.rows(),
        threshold: bundle.threshold,
        metrics: metrics_value,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.place.load()?;
    let report = train(&config, &args, !args.json)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "trained {} v{} on {} rows ({} held out) in {:.1} s{}",
            report.model,
            report.version,
            report.train_rows,
            report.holdout_rows,
            report.seconds,
            if report.promoted {
                "; promoted to champion"
            } else {
                ""
            }
        );
        println!(
            "run {}  snapshot {}",
            report.run,
            &report.snapshot[..16.min(report.snapshot.len())]
        );
        println!("threshold {:.4}", report.threshold);
        if let Some(m) = report.metrics.as_object() {
            for (k, v) in m {
                println!("  {k:<28} {v}");
            }
        }
    }
    Ok(())
}
