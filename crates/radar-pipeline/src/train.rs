//! Training: the stream's lake events (in log order) → the one feature
//! engine → a time split → fit → evaluate on the holdout → the run
//! recorded → a version registered (its whole, synced artifact first) →
//! optionally promoted to `champion`.
//!
//! A [`TrainSpec`] is checked whole before any I/O: a bad contamination
//! or holdout fails at once, not after the scan.

use std::time::Instant;

use radar_core::Matrix;
use radar_core::decode::Record;
use radar_core::features::FeatureEngine;
use radar_core::schema::{DetectorConfig, DetectorKind, NumberOrAuto, StreamSchema};
use radar_core::time::format_rfc3339;
use radar_detect::metrics::{self, Confusion};
use radar_registry::{Bundle, Reference};
use serde::Serialize;

use crate::config::Config;
use crate::error::{PipelineError, Result};
use crate::evaluate::{self, Labels};

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub schema: StreamSchema,
    /// The detector and its options (the declaration's, with any
    /// overrides applied).
    pub detector: DetectorConfig,
    /// The registry's model name.
    pub model: String,
    /// Event time from, to (exclusive), UTC µs.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Share of the event-time span held out for evaluation.
    pub holdout: f64,
    /// Train only on events whose entity had this many earlier events.
    pub min_history: u32,
    /// Expected anomaly share: the threshold of detectors that do not fit
    /// their own (all but Isolation Forest) is the training scores'
    /// `1 − contamination` quantile.
    pub contamination: f64,
    /// Move `champion` to the new version.
    pub promote: bool,
}

impl TrainSpec {
    /// The stream's declared detector with training's defaults where the
    /// declaration is silent (Isolation Forest: 2,048 samples per tree,
    /// contamination 0.01, seed 0).
    pub fn for_stream(schema: &StreamSchema) -> TrainSpec {
        let mut detector = schema.detector.clone();
        if let DetectorKind::IsolationForest(o) = &mut detector.kind {
            o.max_samples.get_or_insert(NumberOrAuto::Number(2048.0));
            o.contamination.get_or_insert(NumberOrAuto::Number(0.01));
        }
        detector.seed.get_or_insert(0);
        TrainSpec {
            model: detector.model_name(&schema.name),
            schema: schema.clone(),
            detector,
            from: None,
            to: None,
            holdout: 0.2,
            min_history: 5,
            contamination: 0.01,
            promote: false,
        }
    }

    /// Everything that can be checked without data.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..0.9).contains(&self.holdout) {
            return Err(PipelineError::input(format!(
                "holdout must be in [0, 0.9), got {}",
                self.holdout
            )));
        }
        if !(self.contamination > 0.0 && self.contamination <= 0.5) {
            return Err(PipelineError::input(format!(
                "contamination must be in (0, 0.5], got {}",
                self.contamination
            )));
        }
        if let (Some(a), Some(b)) = (self.from, self.to)
            && a >= b
        {
            return Err(PipelineError::input(format!(
                "the time range is empty: from {} is not before to {}",
                format_rfc3339(a),
                format_rfc3339(b)
            )));
        }
        radar_registry::check_model_name(&self.model)?;
        if let DetectorKind::IsolationForest(o) = &self.detector.kind {
            crate::detectors::iforest_params(o, 0)
                .map_err(|e| PipelineError::input(format!("detector: {e}")))?;
        } else {
            // Online kinds are built (not fitted) to check their options.
            crate::detectors::build(&self.detector, &self.schema.columns)
                .map_err(|e| PipelineError::input(format!("detector: {e}")))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub run: String,
    pub model: String,
    pub detector: String,
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

/// Progress of a long step: (step, done, total).
pub type Progress<'a> = &'a dyn Fn(&str, u64, u64);

/// Trains, registers and (with `promote`) promotes a model.
pub fn train(config: &Config, spec: &TrainSpec, progress: Progress<'_>) -> Result<TrainReport> {
    let t0 = Instant::now();
    spec.validate()?;
    let schema = &spec.schema;
    let (from, to) = (spec.from.unwrap_or(i64::MIN), spec.to.unwrap_or(i64::MAX));
    let lake = config.open_lake()?;
    let registry = config.open_registry()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PipelineError::io("starting the I/O runtime"))?;

    // 1. Scan the lake in log order.
    let (records, snapshot) = rt.block_on(async {
        let mut scan = lake.scan(schema, from, to).await?;
        let files = scan.files().len() as u64;
        let mut records: Vec<Record> = Vec::new();
        let mut done = 0;
        while let Some(rows) = scan.next_file().await? {
            records.extend(rows.into_iter().map(|r| r.record));
            done += 1;
            progress("scan", done, files);
        }
        let range = (spec.from.is_some() || spec.to.is_some()).then_some((from, to));
        let snapshot = lake.snapshot(&schema.name, range).await?;
        Ok::<_, PipelineError>((records, snapshot))
    })?;
    if records.len() < 10 {
        return Err(PipelineError::input(format!(
            "the lake holds {} events of stream `{}` in that range; ingest and capture data first (radar ingest, radar capture)",
            records.len(),
            schema.name
        )));
    }

    // 2. Features, with the same engine the scorer runs.
    let mut engine = FeatureEngine::new(schema.clone());
    let width = engine.width();
    let mut all = Matrix::with_columns(width)?;
    let mut history = Vec::with_capacity(records.len());
    let mut row = vec![0.0; width];
    for (i, r) in records.iter().enumerate() {
        history.push(engine.process(r, &mut row));
        all.push_row(&row)?;
        if i % 10_000 == 0 {
            progress("features", i as u64, records.len() as u64);
        }
    }

    // 3. Time-based split.
    let cut = evaluate::holdout_cut(&records, spec.holdout);
    let labels = Labels::of(schema);
    let mut train_m = Matrix::with_columns(width)?;
    let mut hold_m = Matrix::with_columns(width)?;
    let mut hold_labels = Vec::new();
    let mut hold_kinds = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if spec.holdout > 0.0 && r.ts >= cut {
            hold_m.push_row(all.row(i))?;
            hold_labels.push(labels.is_anomaly(r));
            hold_kinds.push(labels.kind(r));
        } else if history[i] >= spec.min_history {
            train_m.push_row(all.row(i))?;
        }
    }
    if train_m.rows() < 2 {
        return Err(PipelineError::input(format!(
            "only {} training rows after the holdout and min_history {}",
            train_m.rows(),
            spec.min_history
        )));
    }

    // 4. Fit, recording the run whatever happens.
    progress("fit", 0, 1);
    let run_params = serde_json::json!({
        "stream": schema.name, "detector": spec.detector, "model": spec.model,
        "min_history": spec.min_history, "holdout": spec.holdout,
        "contamination": spec.contamination,
        "from": spec.from.map(format_rfc3339), "to": spec.to.map(format_rfc3339),
    });
    let run = registry.start_run(&schema.name, &run_params)?;
    let fitted =
        crate::detectors::fit(&spec.detector, &schema.columns, train_m.view()).and_then(|d| {
            let train_scores = d.score_batch(train_m.view())?;
            Ok((d, train_scores))
        });
    let (detector, train_scores) = match fitted {
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
            return Err(e);
        }
    };
    // A forest fits its own (its contamination's quantile, or 0.5).
    let threshold = detector
        .fitted_threshold()
        .unwrap_or_else(|| evaluate::quantile(&train_scores, 1.0 - spec.contamination));
    progress("fit", 1, 1);

    // 5. Evaluate on the holdout.
    let mut metrics_json = serde_json::Map::new();
    let anomalies = hold_labels.iter().filter(|&&l| l).count();
    if labels.has_label() && anomalies > 0 && anomalies < hold_labels.len() {
        let scores = detector.score_batch(hold_m.view())?;
        let c = Confusion::at_threshold(&scores, &hold_labels, threshold)?;
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
        let by_kind = evaluate::recall_by_kind(&scores, &hold_labels, &hold_kinds, threshold);
        let kinds: serde_json::Map<String, serde_json::Value> = by_kind
            .into_iter()
            .map(|(k, (_, recall))| (k, recall.into()))
            .collect();
        metrics_json.insert("holdout_recall_by_kind".into(), kinds.into());
    }
    metrics_json.insert("train_rows".into(), train_m.rows().into());
    metrics_json.insert("holdout_rows".into(), hold_m.rows().into());
    let reference = Reference::of(train_m.view(), &train_scores);
    let config_hash = format!(
        "{:016x}",
        radar_core::hash::hash64(format!("{:?}|{:?}", schema.features, schema.fields).as_bytes())
    );
    let (lo, hi) = evaluate::time_span(&records);
    let kind = detector.kind().name();
    let bundle = Bundle {
        stream: schema.name.clone(),
        columns: schema.columns.clone(),
        threshold,
        detector,
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
        &spec.model,
        Some(&run),
        &bundle.to_bytes(),
        &metrics_value,
    ))?;
    if spec.promote {
        registry.set_alias(
            &spec.model,
            "champion",
            mv.version,
            &format!("radar train --promote (run {run})"),
        )?;
    }
    Ok(TrainReport {
        run,
        model: spec.model.clone(),
        detector: kind.to_owned(),
        version: mv.version,
        promoted: spec.promote,
        snapshot: snapshot.id,
        rows: records.len(),
        train_rows: train_m.rows(),
        holdout_rows: hold_m.rows(),
        threshold,
        metrics: metrics_value,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// A progress that shows nothing.
pub fn quiet(_: &str, _: u64, _: u64) {}
