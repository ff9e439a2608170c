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
    /// Alerts per 1,000 events the team can review: the threshold raises
    /// that many (out of sample). Default: the detector's own threshold
    /// alone, `contamination × 1000` with a supervised part.
    pub alert_budget: Option<f64>,
    /// Labels known at this time train the supervised part (default: now).
    pub labels_as_of: Option<i64>,
    pub gbdt: radar_detect::GbdtParams,
}

/// The most recent share of the training span whose scores set a budget
/// threshold (the supervised part does not learn from it).
const THRESHOLD_SLICE: f64 = 0.15;

/// The parameters of the supervised part radar trains by default (chosen
/// on the generated stream; see BENCHMARKS.md).
pub fn default_gbdt() -> radar_detect::GbdtParams {
    radar_detect::GbdtParams {
        n_trees: 400,
        learning_rate: 0.05,
        scale_pos_weight: Some(5.0),
        ..radar_detect::GbdtParams::default()
    }
}

struct Fitted {
    detector: Box<dyn radar_detect::Detector>,
    supervised: Option<Box<dyn radar_detect::Detector>>,
    skipped: Option<String>,
    threshold: f64,
}

/// The detector on the training rows, the supervised part on the learning
/// rows with their labels, and the threshold.
fn fit_all(
    spec: &TrainSpec,
    columns: &[String],
    train: &Matrix,
    learn: &Matrix,
    learn_labels: &[bool],
    calib: &Matrix,
) -> Result<Fitted> {
    let detector = crate::detectors::fit(&spec.detector, columns, train.view())?;
    let learn_scores = detector.score_batch(learn.view())?;
    let supervised =
        crate::hybrid::fit_supervised(learn.view(), &learn_scores, learn_labels, &spec.gbdt)?;
    let (supervised, skipped) = match supervised {
        Ok(g) => (Some(Box::new(g) as Box<dyn radar_detect::Detector>), None),
        Err(why) => (None, Some(why)),
    };
    // Out-of-sample scores for a budget (the calibration slice, else the
    // training rows).
    let budget_rows = if calib.rows() > 0 { calib } else { train };
    let (u, p) =
        crate::hybrid::score_rows(detector.as_ref(), supervised.as_deref(), budget_rows.view())?;
    let budget = spec
        .alert_budget
        .or(supervised.as_ref().map(|_| spec.contamination * 1000.0));
    let threshold = match (budget, &p) {
        (Some(b), Some(p)) => crate::hybrid::budget_threshold(p, b)?,
        (Some(b), None) => crate::hybrid::budget_threshold(&u, b)?,
        (None, _) => match detector.fitted_threshold() {
            Some(t) => t,
            None => {
                let train_scores = detector.score_batch(train.view())?;
                evaluate::quantile(&train_scores, 1.0 - spec.contamination)
            }
        },
    };
    Ok(Fitted {
        detector,
        supervised,
        skipped,
        threshold,
    })
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
            alert_budget: None,
            labels_as_of: None,
            gbdt: default_gbdt(),
        }
    }

    /// Everything that can be checked without data.
    pub fn validate(&self) -> Result<()> {
        if let Some(b) = self.alert_budget {
            crate::hybrid::budget_threshold(&[0.0], b)?;
        }
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

/// A window of the lake as training sees it: events in log order with
/// their ids, the labels known at a time, and every event's features from
/// the one engine (label-derived ones fed each label from when it became
/// known).
pub struct LakeWindow {
    pub records: Vec<Record>,
    pub ids: Vec<String>,
    pub features: Matrix,
    /// Each row's entity history length.
    pub history: Vec<u32>,
    pub book: crate::labels::LabelBook,
    pub snapshot: radar_lake::Snapshot,
}

impl LakeWindow {
    /// Scans `range` (event time from, to; all when `None`) of the stream
    /// and featurises it; at least 10 events or an error naming the gap.
    ///
    /// Entity state is warmed up on what came before `from` (back to the
    /// stream's entity TTL, else the lake's start), as the live scorer's
    /// state was: a window's first events must not look like every
    /// entity's first (the model would learn cold-start features that
    /// serving never shows, and its reference would look drifted at once).
    pub fn load(
        lake: &radar_lake::Lake,
        rt: &tokio::runtime::Runtime,
        schema: &StreamSchema,
        range: (Option<i64>, Option<i64>),
        labels_as_of: i64,
        progress: Progress<'_>,
    ) -> Result<LakeWindow> {
        let (from, to) = (range.0.unwrap_or(i64::MIN), range.1.unwrap_or(i64::MAX));
        let warm_from = match (range.0, schema.entity_ttl_seconds) {
            (None, _) => i64::MIN,
            (Some(f), Some(ttl)) => f.saturating_sub((ttl as i64).saturating_mul(1_000_000)),
            (Some(_), None) => i64::MIN,
        };
        let mut positions: Vec<(u32, u64)> = Vec::new();
        let (records, snapshot) = rt.block_on(async {
            let mut scan = lake.scan(schema, warm_from, to).await?;
            let files = scan.files().len() as u64;
            let mut records: Vec<Record> = Vec::new();
            let mut done = 0;
            while let Some(rows) = scan.next_file().await? {
                for r in rows {
                    positions.push((r.partition, r.offset));
                    records.push(r.record);
                }
                done += 1;
                progress("scan", done, files);
            }
            let bounded = (range.0.is_some() || range.1.is_some()).then_some((from, to));
            let snapshot = lake.snapshot(&schema.name, bounded).await?;
            Ok::<_, PipelineError>((records, snapshot))
        })?;
        let in_window = records.iter().filter(|r| r.ts >= from).count();
        if in_window < 10 {
            return Err(PipelineError::input(format!(
                "the lake holds {in_window} events of stream `{}` in that range; ingest and capture data first (radar ingest, radar capture)",
                schema.name
            )));
        }
        let book = crate::labels::LabelBook::new(
            rt.block_on(lake.labels(&schema.name))?
                .into_iter()
                .map(|r| r.label)
                .filter(|l| l.known_at <= labels_as_of),
        );
        let ids: Vec<String> = records
            .iter()
            .zip(&positions)
            .map(|(r, &(partition, offset))| {
                crate::labels::event_id(&schema.name, r, partition, offset)
            })
            .collect();
        let feeds = book.feeds(ids.iter().map(|id| Some(id.as_str())));
        let width = FeatureEngine::new(schema.clone()).width();
        let mut rows = vec![0.0; records.len() * width];
        let mut seen = vec![0u32; records.len()];
        replay_by_partition(
            schema, &records, &positions, &feeds, &mut rows, &mut seen, progress,
        );
        let mut features = Matrix::with_columns(width)?;
        let mut history = Vec::with_capacity(records.len());
        let mut keep = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            keep.push(r.ts >= from);
            if r.ts >= from {
                history.push(seen[i]);
                features.push_row(&rows[i * width..(i + 1) * width])?;
            }
        }
        // The warm-up events built state; the window is the rest.
        let (mut records, mut ids) = (records, ids);
        let mut kept = keep.iter();
        records.retain(|_| kept.next().copied().unwrap_or(false));
        let mut kept = keep.iter();
        ids.retain(|_| kept.next().copied().unwrap_or(false));
        Ok(LakeWindow {
            records,
            ids,
            features,
            history,
            book,
            snapshot,
        })
    }
}

/// Features of `records` (each at log position `positions[i]`: partition,
/// offset) as the live scorer computes them: one engine per partition, each
/// fed its partition's events in offset order and, before each, the labels
/// known by its time about that partition's earlier events (`feeds`, sorted
/// by when they became known). Rows go to `rows` (`width` per record), each
/// entity's history length to `seen`.
pub fn replay_by_partition(
    schema: &StreamSchema,
    records: &[Record],
    positions: &[(u32, u64)],
    feeds: &[radar_core::features::LabelFeed],
    rows: &mut [f64],
    seen: &mut [u32],
    progress: Progress<'_>,
) {
    let mut by_partition: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, &(p, _)) in positions.iter().enumerate() {
        by_partition.entry(p).or_default().push(i);
    }
    let mut done = 0u64;
    for mut indices in by_partition.into_values() {
        // The lake keeps a partition's events in files per hour of event
        // time: log order is the offsets'.
        indices.sort_by_key(|&i| positions[i].1);
        let place: std::collections::HashMap<usize, usize> =
            indices.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let mut engine = FeatureEngine::new(schema.clone());
        let width = engine.width();
        // This partition's labels (still sorted by when they became known),
        // each with its event's place among the partition's events.
        let local_feeds: Vec<(usize, &radar_core::features::LabelFeed)> = feeds
            .iter()
            .filter_map(|f| place.get(&f.row).map(|&k| (k, f)))
            .collect();
        let mut next_label = 0;
        for (k, &i) in indices.iter().enumerate() {
            // `FeatureEngine::apply_labels_before` on the partition's rows.
            while let Some(&(row, f)) = local_feeds.get(next_label)
                && f.at <= records[i].ts
                && row < k
            {
                let keys = engine.label_keyer().keys(&records[f.row]);
                engine.apply_label(&keys, f.at, f.change);
                next_label += 1;
            }
            seen[i] = engine.process(&records[i], &mut rows[i * width..(i + 1) * width]);
            done += 1;
            if done.is_multiple_of(10_000) {
                progress("features", done, records.len() as u64);
            }
        }
    }
}

/// Trains, registers and (with `promote`) promotes a model.
pub fn train(config: &Config, spec: &TrainSpec, progress: Progress<'_>) -> Result<TrainReport> {
    let t0 = Instant::now();
    spec.validate()?;
    let schema = &spec.schema;
    let lake = config.open_lake()?;
    let registry = config.open_registry()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PipelineError::io("starting the I/O runtime"))?;

    // 1–2. The lake's events, the labels then known, the features.
    let labels_as_of = spec
        .labels_as_of
        .unwrap_or_else(radar_core::time::now_micros);
    let window = LakeWindow::load(
        &lake,
        &rt,
        schema,
        (spec.from, spec.to),
        labels_as_of,
        progress,
    )?;
    let LakeWindow {
        records,
        ids,
        features: all,
        history,
        book,
        snapshot,
    } = window;
    let width = all.cols();

    // 3. Time-based split: the holdout is judged; of the rest, the
    // detector learns every row with enough history, the supervised part
    // the rows before the most recent slice, whose scores set the budget
    // threshold out of sample.
    let cut = evaluate::holdout_cut(&records, spec.holdout);
    let train_end = if spec.holdout > 0.0 { cut } else { i64::MAX };
    let in_train: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].ts < train_end)
        .collect();
    let train_records: Vec<Record> = in_train.iter().map(|&i| records[i].clone()).collect();
    let calib_cut = evaluate::time_cut(&train_records, 1.0 - THRESHOLD_SLICE);
    let truth = Labels::of(schema);
    let (mut train_m, mut learn_m, mut calib_m, mut hold_m) = (
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
    );
    let (mut learn_labels, mut hold_labels, mut hold_kinds) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in records.iter().enumerate() {
        if r.ts >= train_end {
            hold_m.push_row(all.row(i))?;
            hold_labels.push(truth.is_anomaly(r));
            hold_kinds.push(truth.kind(r));
            continue;
        }
        if history[i] >= spec.min_history {
            train_m.push_row(all.row(i))?;
        }
        if r.ts < calib_cut {
            learn_m.push_row(all.row(i))?;
            // Point in time: the labels known when the model is trained.
            learn_labels.push(book.fraud_as_of(&ids[i], labels_as_of));
        } else {
            calib_m.push_row(all.row(i))?;
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
        "contamination": spec.contamination, "alert_budget": spec.alert_budget,
        "labels_as_of": format_rfc3339(labels_as_of),
        "from": spec.from.map(format_rfc3339), "to": spec.to.map(format_rfc3339),
    });
    let run = registry.start_run(&schema.name, &run_params)?;
    let fitted = fit_all(
        spec,
        &schema.columns,
        &train_m,
        &learn_m,
        &learn_labels,
        &calib_m,
    );
    let fitted = match fitted {
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
    progress("fit", 1, 1);

    // 5. Evaluate on the holdout (when the events carry ground truth).
    let mut metrics_json = serde_json::Map::new();
    let bundle_probe = Bundle {
        stream: schema.name.clone(),
        columns: schema.columns.clone(),
        threshold: fitted.threshold,
        detector: fitted.detector,
        supervised: fitted.supervised,
        reference: Reference::default(),
        trained: serde_json::Value::Null,
    };
    let anomalies = hold_labels.iter().filter(|&&l| l).count();
    if truth.has_label() && anomalies > 0 && anomalies < hold_labels.len() {
        let scores = bundle_probe.score_batch(hold_m.view())?;
        let threshold = bundle_probe.threshold;
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
        // For people: the confusion at the threshold and the curve.
        metrics_json.insert(
            "holdout_confusion".into(),
            serde_json::json!({
                "true_positives": c.true_positives, "false_positives": c.false_positives,
                "true_negatives": c.true_negatives, "false_negatives": c.false_negatives,
            }),
        );
        metrics_json.insert(
            "holdout_pr_curve".into(),
            metrics::pr_curve(&scores, &hold_labels, 50)?
                .into_iter()
                .map(|(r, p)| serde_json::json!([r, p]))
                .collect::<Vec<_>>()
                .into(),
        );
        let by_kind = evaluate::recall_by_kind(&scores, &hold_labels, &hold_kinds, threshold);
        let kinds: serde_json::Map<String, serde_json::Value> = by_kind
            .into_iter()
            .map(|(k, (_, recall))| (k, recall.into()))
            .collect();
        metrics_json.insert("holdout_recall_by_kind".into(), kinds.into());
    }
    metrics_json.insert("train_rows".into(), train_m.rows().into());
    metrics_json.insert("holdout_rows".into(), hold_m.rows().into());
    metrics_json.insert(
        "labelled_fraud".into(),
        learn_labels.iter().filter(|&&l| l).count().into(),
    );
    match &fitted.skipped {
        Some(why) => metrics_json.insert("supervised".into(), format!("not trained: {why}").into()),
        None => metrics_json.insert("supervised".into(), "gradient_boosted_trees".into()),
    };
    let train_scores = bundle_probe.score_batch(train_m.view())?;
    let reference = Reference::of(train_m.view(), &train_scores);
    let config_hash = format!(
        "{:016x}",
        radar_core::hash::hash64(format!("{:?}|{:?}", schema.features, schema.fields).as_bytes())
    );
    let (lo, hi) = evaluate::time_span(&records);
    let kind = bundle_probe.detector.kind().name();
    let threshold = bundle_probe.threshold;
    let bundle = Bundle {
        reference,
        trained: serde_json::json!({
            "run": run, "snapshot": snapshot.id, "rows": train_m.rows(),
            "from": format_rfc3339(lo), "to": format_rfc3339(hi),
            "labels_as_of": format_rfc3339(labels_as_of),
        }),
        ..bundle_probe
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
        detector: match &fitted.skipped {
            None => format!("{kind} + gradient_boosted_trees"),
            Some(_) => kind.to_owned(),
        },
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
