//! What every evaluation shares, written once: summaries over seeds, time
//! splits, labels and kinds from a stream's label fields, recall by kind,
//! quantiles; and the two harnesses built on them: a detector on a
//! labelled table ([`table`]) and on a stream's declared features over an
//! event file ([`stream`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use radar_core::Matrix;
use radar_core::decode::{Decoder, Record, Value};
use radar_core::features::FeatureEngine;
use radar_core::schema::{DetectorConfig, DetectorKind, FieldType, StreamSchema};
use radar_core::tabular::LabelledTable;
use radar_core::time::format_rfc3339;
use radar_detect::metrics::{self, Confusion};
use radar_detect::{Detector, IsolationForest, IsolationForestParams};
use serde::Serialize;

use crate::error::{PipelineError, Result};

/// Mean ± population standard deviation (as the Python baselines report)
/// of a metric over seeds, with every value.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: f64,
    pub values: Vec<f64>,
}

impl Summary {
    pub fn of(values: Vec<f64>) -> Summary {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Summary { mean, std, values }
    }
}

/// Runs `one` per seed and summarises each of its `N` figures.
pub fn over_seeds<const N: usize>(
    seeds: &[u64],
    mut one: impl FnMut(u64) -> Result<[f64; N]>,
) -> Result<[Summary; N]> {
    if seeds.is_empty() {
        return Err(PipelineError::input("at least one seed is needed"));
    }
    let mut cols: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(seeds.len()));
    for &seed in seeds {
        for (col, v) in cols.iter_mut().zip(one(seed)?) {
            col.push(v);
        }
    }
    Ok(cols.map(Summary::of))
}

/// The earliest and latest event times.
pub fn time_span(records: &[Record]) -> (i64, i64) {
    records.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.ts), hi.max(r.ts))
    })
}

/// The event time before which `fraction` of the span lies.
pub fn time_cut(records: &[Record], fraction: f64) -> i64 {
    let (lo, hi) = time_span(records);
    lo + ((hi - lo) as f64 * fraction) as i64
}

/// The event time from which the last `holdout` share of the span lies.
pub fn holdout_cut(records: &[Record], holdout: f64) -> i64 {
    time_cut(records, 1.0 - holdout)
}

/// The `q` quantile of `values` (nearest rank below), 0.5 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.5,
        n => v[((n - 1) as f64 * q.clamp(0.0, 1.0)).floor() as usize],
    }
}

/// A stream's label fields: the numeric or bool one says anomaly (non-zero
/// = yes), the category one names its kind.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    label: Option<usize>,
    kind: Option<usize>,
}

impl Labels {
    /// The first label field of each sort.
    pub fn of(schema: &StreamSchema) -> Labels {
        Labels {
            label: schema
                .labels()
                .find(|&i| schema.fields[i].ty != FieldType::Category),
            kind: schema
                .labels()
                .find(|&i| schema.fields[i].ty == FieldType::Category),
        }
    }

    /// Named label fields: `label` must be a numeric or bool label field;
    /// `kind`, if it names a category label field, is used.
    pub fn named(schema: &StreamSchema, label: &str, kind: &str) -> Result<Labels> {
        let label = schema
            .field_index(label)
            .filter(|&i| schema.fields[i].label && schema.fields[i].ty != FieldType::Category)
            .ok_or_else(|| {
                PipelineError::input(format!(
                    "stream `{}` has no numeric or bool label field `{label}`",
                    schema.name
                ))
            })?;
        let kind = schema
            .field_index(kind)
            .filter(|&i| schema.fields[i].label && schema.fields[i].ty == FieldType::Category);
        Ok(Labels {
            label: Some(label),
            kind,
        })
    }

    pub fn has_label(&self) -> bool {
        self.label.is_some()
    }

    pub fn is_anomaly(&self, r: &Record) -> bool {
        self.label
            .and_then(|l| r.values[l].as_f64())
            .is_some_and(|v| v != 0.0)
    }

    /// The anomaly's kind (empty when none is named).
    pub fn kind(&self, r: &Record) -> String {
        match self.kind.map(|k| &r.values[k]) {
            Some(Value::Str(s)) => s.to_string(),
            _ => String::new(),
        }
    }
}

/// Per anomaly kind: (anomalies, share scored above `threshold`).
pub fn recall_by_kind(
    scores: &[f64],
    labels: &[bool],
    kinds: &[String],
    threshold: f64,
) -> BTreeMap<String, (usize, f64)> {
    let mut hits: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((&l, k), &s) in labels.iter().zip(kinds).zip(scores) {
        if l {
            let e = hits.entry(k.as_str()).or_default();
            e.0 += 1;
            e.1 += (s > threshold) as usize;
        }
    }
    hits.into_iter()
        .map(|(k, (n, hit))| (k.to_owned(), (n, hit as f64 / n as f64)))
        .collect()
}

/// An Isolation Forest on a labelled table, per seed.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub data: String,
    pub rows: usize,
    pub features: usize,
    pub anomalies: usize,
    pub n_estimators: usize,
    pub max_samples: usize,
    pub max_features: usize,
    pub bootstrap: bool,
    pub contamination: String,
    pub seeds: Vec<u64>,
    pub threads: usize,
    pub roc_auc: Summary,
    pub average_precision: Summary,
    /// Precision among the `anomalies` highest scores (R-precision).
    pub precision_at_k: Summary,
    pub precision: Summary,
    pub recall: Summary,
    pub f1: Summary,
    pub flagged: Summary,
    pub threshold: Summary,
    pub fit_seconds: Summary,
    pub score_rows_per_second: Summary,
}

/// Fits and scores once per seed on the whole table (as the Python
/// baselines do) and summarises the metrics.
pub fn table(
    name: &str,
    table: &LabelledTable,
    params: &IsolationForestParams,
    seeds: &[u64],
) -> Result<TableReport> {
    let Some(labels) = &table.labels else {
        return Err(PipelineError::input("the data has no label column"));
    };
    let x = table.features.view();
    let anomalies = labels.iter().filter(|&&l| l).count();
    if anomalies == 0 || anomalies == labels.len() {
        return Err(PipelineError::input(format!(
            "the label column must hold both classes; found {anomalies} anomalies in {} rows",
            labels.len()
        )));
    }
    let mut last = None;
    let [
        auc,
        ap,
        pk,
        precision,
        recall,
        f1,
        flagged,
        threshold,
        fit,
        rate,
    ] = over_seeds(seeds, |seed| {
        let p = IsolationForestParams {
            random_state: Some(seed),
            ..params.clone()
        };
        let t0 = Instant::now();
        let model = IsolationForest::fit(&p, x)?;
        let fit = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let scores = model.score(x)?;
        let score_time = t1.elapsed().as_secs_f64();
        let confusion = Confusion::at_threshold(&scores, labels, model.threshold())?;
        let values = [
            metrics::roc_auc(&scores, labels)?,
            metrics::average_precision(&scores, labels)?,
            metrics::precision_at_k(&scores, labels, anomalies)?,
            confusion.precision(),
            confusion.recall(),
            confusion.f1(),
            (confusion.true_positives + confusion.false_positives) as f64,
            model.threshold(),
            fit,
            x.rows() as f64 / score_time,
        ];
        last = Some(model);
        Ok(values)
    })?;
    let model = last.ok_or_else(|| PipelineError::Internal("no seed ran".into()))?;
    Ok(TableReport {
        data: name.to_owned(),
        rows: x.rows(),
        features: x.cols(),
        anomalies,
        n_estimators: model.n_trees(),
        max_samples: model.max_samples(),
        max_features: model.max_features(),
        bootstrap: params.bootstrap,
        contamination: match params.contamination {
            radar_detect::Contamination::Auto => "auto".into(),
            radar_detect::Contamination::Fraction(c) => c.to_string(),
        },
        seeds: seeds.to_vec(),
        threads: rayon::current_num_threads(),
        roc_auc: auc,
        average_precision: ap,
        precision_at_k: pk,
        precision,
        recall,
        f1,
        flagged,
        threshold,
        fit_seconds: fit,
        score_rows_per_second: rate,
    })
}

/// The precision at which the highest reachable recall is reported.
pub const TARGET_PRECISION: f64 = 0.85;

/// What to evaluate on a stream's declared features.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub schema: StreamSchema,
    pub labels: Labels,
    /// The detector fitted (its seed replaced by each of `seeds`).
    pub detector: DetectorConfig,
    pub seeds: Vec<u64>,
    /// Share of the event-time span trained on; the rest is judged.
    pub train_fraction: f64,
    /// Train only on events whose entity had this many earlier events.
    pub min_history: u32,
    /// The threshold of detectors that do not fit one: the training
    /// scores' `1 − contamination` quantile.
    pub contamination: f64,
}

impl StreamSpec {
    /// What `radar train` would fit for `schema` (its declared detector,
    /// training's defaults where the declaration is silent), over seeds
    /// 0..`seeds`, trained on the first 70% of event time.
    pub fn for_stream(schema: &StreamSchema, labels: Labels, seeds: u64) -> StreamSpec {
        let train = crate::train::TrainSpec::for_stream(schema);
        StreamSpec {
            schema: schema.clone(),
            labels,
            detector: train.detector,
            seeds: (0..seeds).collect(),
            train_fraction: 0.7,
            min_history: train.min_history,
            contamination: train.contamination,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KindRecall {
    pub anomalies: usize,
    pub recall: Summary,
}

#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub data: String,
    pub stream: String,
    pub features: Vec<String>,
    pub events: usize,
    pub dead_letters: usize,
    pub train_until: String,
    pub train_rows: usize,
    pub test_rows: usize,
    pub test_anomalies: usize,
    /// The detector's kind and its declared options.
    pub detector: String,
    pub min_history: u32,
    pub seeds: Vec<u64>,
    pub roc_auc: Summary,
    pub average_precision: Summary,
    /// At the threshold fitted on the training part.
    pub precision: Summary,
    pub recall: Summary,
    pub f1: Summary,
    pub flagged: Summary,
    /// The highest recall on the test part at any threshold whose precision
    /// is at least 0.85 (0 when none is).
    pub recall_at_precision_085: Summary,
    /// Recall per anomaly kind at the fitted threshold.
    pub recall_by_kind: BTreeMap<String, KindRecall>,
    pub feature_seconds: f64,
    pub fit_seconds: Summary,
}

/// `kind {options}` as the declaration gives them.
fn describe(d: &DetectorConfig) -> String {
    let options = serde_json::to_value(&d.kind)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.into_iter()
                .filter(|(k, v)| k != "kind" && !v.is_null())
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!("{} ({options})", d.kind.name())
}

/// A stream's declared detector on its declared features over the events
/// of `data`: fitted on the first part of event time, judged on the rest.
pub fn stream(data: &Path, spec: &StreamSpec) -> Result<StreamReport> {
    if !(spec.train_fraction > 0.0 && spec.train_fraction < 1.0) {
        return Err(PipelineError::input(format!(
            "the train fraction must be in (0, 1), got {}",
            spec.train_fraction
        )));
    }
    let schema = &spec.schema;
    // A bad option fails before the file is read.
    if let DetectorKind::IsolationForest(o) = &spec.detector.kind {
        crate::detectors::iforest_params(o, 0)?;
    }
    let mut decoder = Decoder::new(schema.clone());
    let file = crate::events::read_all(data, &mut decoder)?;
    if !file.dead_letters.is_empty() {
        tracing::warn!("{}", crate::events::dead_letter_summary(&file.dead_letters));
    }
    let records = file.records;
    if records.len() < 2 {
        return Err(PipelineError::input(format!(
            "`{}` holds {} valid events; at least 2 are needed",
            data.display(),
            records.len()
        )));
    }
    let t0 = Instant::now();
    let mut engine = FeatureEngine::new(schema.clone());
    let (features, history) = engine.batch_with_history(&records)?;
    let feature_seconds = t0.elapsed().as_secs_f64();

    let cut = time_cut(&records, spec.train_fraction);
    let width = features.cols();
    let mut train = Matrix::with_columns(width)?;
    let mut test = Matrix::with_columns(width)?;
    let mut labels = Vec::new();
    let mut kinds = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.ts < cut {
            if history[i] >= spec.min_history {
                train.push_row(features.row(i))?;
            }
        } else {
            test.push_row(features.row(i))?;
            labels.push(spec.labels.is_anomaly(r));
            kinds.push(spec.labels.kind(r));
        }
    }
    let anomalies = labels.iter().filter(|&&l| l).count();
    if train.rows() == 0 || anomalies == 0 || anomalies == labels.len() {
        return Err(PipelineError::input(format!(
            "the split at {} leaves {} training rows and {anomalies} anomalies in {} test rows; both parts need rows and the test part both classes",
            format_rfc3339(cut),
            train.rows(),
            labels.len()
        )));
    }
    let mut by_kind: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    let [auc, ap, precision, recall, f1, flagged, at_precision, fit] =
        over_seeds(&spec.seeds, |seed| {
            let config = DetectorConfig {
                seed: Some(seed),
                ..spec.detector.clone()
            };
            let t = Instant::now();
            let m = crate::detectors::fit(&config, &schema.columns, train.view())?;
            let threshold = match m.fitted_threshold() {
                Some(t) => t,
                None => quantile(&m.score_batch(train.view())?, 1.0 - spec.contamination),
            };
            let fit = t.elapsed().as_secs_f64();
            let scores = m.score_batch(test.view())?;
            let c = Confusion::at_threshold(&scores, &labels, threshold)?;
            let at_precision = metrics::recall_at_precision(&scores, &labels, TARGET_PRECISION)?
                .map_or(0.0, |(r, _)| r);
            for (k, (n, r)) in recall_by_kind(&scores, &labels, &kinds, threshold) {
                by_kind.entry(k).or_insert((n, Vec::new())).1.push(r);
            }
            let values = [
                metrics::roc_auc(&scores, &labels)?,
                metrics::average_precision(&scores, &labels)?,
                c.precision(),
                c.recall(),
                c.f1(),
                (c.true_positives + c.false_positives) as f64,
                at_precision,
                fit,
            ];
            Ok(values)
        })?;
    Ok(StreamReport {
        data: data.display().to_string(),
        stream: schema.name.clone(),
        features: schema.columns.clone(),
        events: records.len() + file.dead_letters.len(),
        dead_letters: file.dead_letters.len(),
        train_until: format_rfc3339(cut),
        train_rows: train.rows(),
        test_rows: test.rows(),
        test_anomalies: anomalies,
        detector: describe(&spec.detector),
        min_history: spec.min_history,
        seeds: spec.seeds.clone(),
        roc_auc: auc,
        average_precision: ap,
        precision,
        recall,
        f1,
        flagged,
        recall_at_precision_085: at_precision,
        recall_by_kind: by_kind
            .into_iter()
            .map(|(k, (n, r))| {
                (
                    if k.is_empty() { "(none)".into() } else { k },
                    KindRecall {
                        anomalies: n,
                        recall: Summary::of(r),
                    },
                )
            })
            .collect(),
        feature_seconds,
        fit_seconds: fit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_over_seeds_and_quantiles() {
        let [a, b] = over_seeds(&[1, 2, 3], |s| Ok([s as f64, 10.0])).unwrap();
        assert_eq!(a.mean, 2.0);
        assert!((a.std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((b.mean, b.std), (10.0, 0.0));
        assert!(over_seeds::<1>(&[], |_| Ok([0.0])).is_err());
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), 2.0);
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 1.0), 4.0);
    }

    #[test]
    fn recall_by_kind_counts_only_anomalies() {
        let r = recall_by_kind(
            &[0.9, 0.1, 0.8, 0.2],
            &[true, true, false, true],
            &["a".into(), "a".into(), "".into(), "b".into()],
            0.5,
        );
        assert_eq!(r["a"], (2, 0.5));
        assert_eq!(r["b"], (1, 0.0));
        assert!(!r.contains_key(""));
    }
}

/// What to evaluate with labels: an unsupervised detector alone and the
/// hybrid (gradient-boosted trees over the features and the unsupervised
/// score), both at the same alert budget.
#[derive(Debug, Clone)]
pub struct SupervisedSpec {
    pub schema: StreamSchema,
    /// The events' ground truth (judging only; never a feature or a label
    /// the models see).
    pub truth: Labels,
    pub iforest: IsolationForestParams,
    pub gbdt: radar_detect::GbdtParams,
    /// Alerts per 1,000 events the team can review.
    pub budget_per_thousand: f64,
    /// Share of the event-time span trained on; the rest is judged.
    pub train_fraction: f64,
    /// The Isolation Forest trains only on events whose entity had this
    /// many earlier events.
    pub min_history: u32,
    /// The most recent share of the training span is not learned from: its
    /// scores set the budget threshold (out of sample, no labels needed).
    pub threshold_fraction: f64,
}

/// Figures of one model on the judged part.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub threshold: f64,
    pub flagged: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub average_precision: f64,
    pub roc_auc: f64,
    /// Mean over days of the share of the day's k most suspicious cards
    /// that had fraud that day (k: the day's budget).
    pub card_precision_at_k: f64,
    pub recall_by_kind: BTreeMap<String, (usize, f64)>,
}

#[derive(Debug, Serialize)]
pub struct SupervisedReport {
    pub data: String,
    pub labels: String,
    pub events: usize,
    pub train_until: String,
    pub train_rows: usize,
    pub threshold_rows: usize,
    pub test_rows: usize,
    pub test_frauds: usize,
    /// Labels in the file, and those known when training ended.
    pub labels_total: usize,
    pub labelled_fraud_known_at_training: usize,
    pub budget_per_thousand: f64,
    pub unsupervised: Judged,
    /// Absent (with the reason) when the labels could not support it.
    pub hybrid: Option<Judged>,
    pub hybrid_skipped: Option<String>,
    pub fit_seconds: f64,
}

/// Judges `scores` of the test rows against the truth at `threshold`.
fn judge(
    scores: &[f64],
    truth: &[bool],
    kinds: &[String],
    days_cards: &[(i64, String)],
    threshold: f64,
    budget_per_thousand: f64,
) -> Result<Judged> {
    let c = Confusion::at_threshold(scores, truth, threshold)?;
    // Card precision@k per day.
    let mut per_day: BTreeMap<i64, BTreeMap<&str, (f64, bool)>> = BTreeMap::new();
    for (i, (day, card)) in days_cards.iter().enumerate() {
        let e = per_day
            .entry(*day)
            .or_default()
            .entry(card.as_str())
            .or_insert((f64::MIN, false));
        e.0 = e.0.max(scores[i]);
        e.1 |= truth[i];
    }
    let mut daily = Vec::new();
    for cards in per_day.values() {
        let events_today: usize = days_cards.len() / per_day.len().max(1);
        let k = ((budget_per_thousand / 1000.0 * events_today as f64).round() as usize).max(1);
        let mut v: Vec<&(f64, bool)> = cards.values().collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        let top = &v[..k.min(v.len())];
        daily.push(top.iter().filter(|c| c.1).count() as f64 / top.len().max(1) as f64);
    }
    Ok(Judged {
        threshold,
        flagged: c.true_positives + c.false_positives,
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        average_precision: metrics::average_precision(scores, truth)?,
        roc_auc: metrics::roc_auc(scores, truth)?,
        card_precision_at_k: daily.iter().sum::<f64>() / daily.len().max(1) as f64,
        recall_by_kind: recall_by_kind(scores, truth, kinds, threshold),
    })
}

/// The data of a supervised evaluation, split in time: the rows learned
/// from (with the labels known when training ended), the slice whose
/// scores set the budget threshold, the judged rows (with the truth), and
/// the fitted forest's scores of each.
pub struct Prepared {
    pub events: usize,
    pub labels_total: usize,
    pub cut: i64,
    pub learn: Matrix,
    pub learn_labels: Vec<bool>,
    pub calib: Matrix,
    pub test: Matrix,
    pub truth: Vec<bool>,
    pub kinds: Vec<String>,
    /// (day, entity) of each judged row.
    pub days_cards: Vec<(i64, String)>,
    pub forest: IsolationForest,
    pub learn_scores: Vec<f64>,
    pub calib_scores: Vec<f64>,
    pub test_scores: Vec<f64>,
    pub forest_seconds: f64,
}

/// Reads, featurises and splits the events of `data` with the labels of
/// `labels_path`, and fits the forest (see [`supervised`]).
pub fn prepare_supervised(
    data: &Path,
    labels_path: &Path,
    spec: &SupervisedSpec,
) -> Result<Prepared> {
    if !(spec.train_fraction > 0.0 && spec.train_fraction < 1.0) {
        return Err(PipelineError::input(format!(
            "the train fraction must be in (0, 1), got {}",
            spec.train_fraction
        )));
    }
    if !(spec.threshold_fraction >= 0.0 && spec.threshold_fraction < 0.5) {
        return Err(PipelineError::input(format!(
            "the threshold fraction must be in [0, 0.5), got {}",
            spec.threshold_fraction
        )));
    }
    crate::hybrid::budget_threshold(&[0.0], spec.budget_per_thousand)?;
    spec.iforest.validate()?;
    spec.gbdt.validate()?;
    let schema = &spec.schema;
    let all_labels =
        crate::labels::read_file(labels_path, "import", radar_core::time::now_micros())?;
    let labels_total = all_labels.len();
    let book = crate::labels::LabelBook::new(all_labels);
    let mut decoder = Decoder::new(schema.clone());
    let file = crate::events::read_all(data, &mut decoder)?;
    let records = file.records;
    if records.len() < 100 {
        return Err(PipelineError::input(format!(
            "`{}` holds {} valid events; at least 100 are needed",
            data.display(),
            records.len()
        )));
    }
    let mut engine = FeatureEngine::new(schema.clone());
    // Label-derived features see each label from when it became known.
    let feeds = book.feeds(records.iter().map(|r| r.id.as_deref()));
    let (features, history) = engine.batch_with_labels(&records, &feeds)?;
    let cut = time_cut(&records, spec.train_fraction);
    let learn_until = time_cut(
        &records,
        spec.train_fraction * (1.0 - spec.threshold_fraction),
    );
    let width = features.cols();
    let (mut learn, mut forest_rows, mut calib, mut test) = (
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
        Matrix::with_columns(width)?,
    );
    let (mut learn_labels, mut truth, mut kinds, mut days_cards) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, r) in records.iter().enumerate() {
        if r.ts < learn_until {
            learn.push_row(features.row(i))?;
            // Point in time: what the team knew when training ended.
            learn_labels.push(r.id.as_deref().is_some_and(|id| book.fraud_as_of(id, cut)));
            if history[i] >= spec.min_history {
                forest_rows.push_row(features.row(i))?;
            }
        } else if r.ts < cut {
            calib.push_row(features.row(i))?;
        } else {
            test.push_row(features.row(i))?;
            truth.push(spec.truth.is_anomaly(r));
            kinds.push(spec.truth.kind(r));
            days_cards.push((
                r.ts.div_euclid(86_400_000_000),
                r.entity.as_deref().unwrap_or_default().to_owned(),
            ));
        }
    }
    let frauds = truth.iter().filter(|&&l| l).count();
    if forest_rows.rows() < 2 || frauds == 0 || frauds == truth.len() {
        return Err(PipelineError::input(format!(
            "the split at {} leaves {} training rows and {frauds} frauds in {} test rows",
            format_rfc3339(cut),
            forest_rows.rows(),
            truth.len()
        )));
    }
    let t0 = Instant::now();
    let forest = IsolationForest::fit(&spec.iforest, forest_rows.view())?;
    let forest_seconds = t0.elapsed().as_secs_f64();
    Ok(Prepared {
        events: records.len(),
        labels_total,
        cut,
        learn_scores: forest.score(learn.view())?,
        calib_scores: forest.score(calib.view())?,
        test_scores: forest.score(test.view())?,
        learn,
        learn_labels,
        calib,
        test,
        truth,
        kinds,
        days_cards,
        forest,
        forest_seconds,
    })
}

/// Trains on the first part of event time with the labels known when it
/// ends (point in time), judges the rest against the ground truth.
pub fn supervised(
    data: &Path,
    labels_path: &Path,
    spec: &SupervisedSpec,
) -> Result<SupervisedReport> {
    let p = prepare_supervised(data, labels_path, spec)?;
    let t0 = Instant::now();
    let supervised = crate::hybrid::fit_supervised(
        p.learn.view(),
        &p.learn_scores,
        &p.learn_labels,
        &spec.gbdt,
    )?;
    let fit_seconds = p.forest_seconds + t0.elapsed().as_secs_f64();
    let sup = supervised.as_ref().ok().map(|g| g as &dyn Detector);
    // Budget thresholds from out-of-sample scores (the calibration slice,
    // or the learning rows when there is none).
    let budget_rows = if p.calib.rows() > 0 {
        &p.calib
    } else {
        &p.learn
    };
    let (u_calib, p_calib) = crate::hybrid::score_rows(&p.forest, sup, budget_rows.view())?;
    let (u_test, p_test) = crate::hybrid::score_rows(&p.forest, sup, p.test.view())?;
    let budget = spec.budget_per_thousand;
    let judged = |scores: &[f64], calib: &[f64]| {
        judge(
            scores,
            &p.truth,
            &p.kinds,
            &p.days_cards,
            crate::hybrid::budget_threshold(calib, budget)?,
            budget,
        )
    };
    let unsupervised = judged(&u_test, &u_calib)?;
    let hybrid = match (&p_calib, &p_test) {
        (Some(pc), Some(pt)) => Some(judged(pt, pc)?),
        _ => None,
    };
    Ok(SupervisedReport {
        data: data.display().to_string(),
        labels: labels_path.display().to_string(),
        events: p.events,
        train_until: format_rfc3339(p.cut),
        train_rows: p.learn.rows(),
        threshold_rows: p.calib.rows(),
        test_rows: p.test.rows(),
        test_frauds: p.truth.iter().filter(|&&l| l).count(),
        labels_total: p.labels_total,
        labelled_fraud_known_at_training: p.learn_labels.iter().filter(|&&l| l).count(),
        budget_per_thousand: budget,
        unsupervised,
        hybrid,
        hybrid_skipped: supervised.err(),
        fit_seconds,
    })
}
