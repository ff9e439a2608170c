//! `radar eval --config`: a detector on a stream's declared features, fitted
//! on the first part of event time and judged on the rest.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use radar_core::Matrix;
use radar_core::decode::{Decoder, Value};
use radar_core::features::FeatureEngine;
use radar_core::schema::FieldType;
use radar_core::time::format_rfc3339;
use radar_detect::metrics::{self, Confusion};
use radar_detect::{IsolationForest, IsolationForestParams};
use serde::Serialize;

use super::eval::{EvalArgs, Summary, params_from};
use crate::streams;

/// The precision at which the highest reachable recall is reported.
const TARGET_PRECISION: f64 = 0.85;

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
    pub n_estimators: usize,
    pub max_samples: usize,
    pub contamination: String,
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

pub fn run(args: EvalArgs) -> Result<()> {
    let config = args.config.as_ref().context("--config")?;
    let data = args
        .data
        .as_ref()
        .context("--data is required with --config")?;
    if !(args.train_fraction > 0.0 && args.train_fraction < 1.0) {
        bail!(
            "--train-fraction must be in (0, 1), got {}",
            args.train_fraction
        );
    }
    let schema = streams::load_schema(config, args.stream.as_deref())?;
    let label = schema
        .field_index(&args.label)
        .filter(|&i| schema.fields[i].label && schema.fields[i].ty != FieldType::Category)
        .with_context(|| {
            format!(
                "stream `{}` has no numeric or bool label field `{}`",
                schema.name, args.label
            )
        })?;
    let kind = schema
        .field_index(&args.kind_label)
        .filter(|&i| schema.fields[i].label && schema.fields[i].ty == FieldType::Category);

    let mut decoder = Decoder::new(schema.clone());
    let file = streams::read_events(data, &mut decoder)?;
    if !file.dead_letters.is_empty() {
        eprintln!("{}", streams::dead_letter_summary(&file.dead_letters));
    }
    let records = file.records;
    if records.len() < 2 {
        bail!(
            "`{}` holds {} valid events; at least 2 are needed",
            data.display(),
            records.len()
        );
    }
    let t0 = Instant::now();
    let mut engine = FeatureEngine::new(schema.clone());
    let (features, history) = engine.batch_with_history(&records)?;
    let feature_seconds = t0.elapsed().as_secs_f64();

    let (lo, hi) = records.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.ts), hi.max(r.ts))
    });
    let cut = lo + ((hi - lo) as f64 * args.train_fraction) as i64;
    let width = features.cols();
    let mut train = Matrix::with_columns(width)?;
    let mut test = Matrix::with_columns(width)?;
    let mut labels = Vec::new();
    let mut kinds = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.ts < cut {
            if history[i] >= args.min_history {
                train.push_row(features.row(i))?;
            }
        } else {
            test.push_row(features.row(i))?;
            labels.push(r.values[label].as_f64().is_some_and(|v| v != 0.0));
            kinds.push(match kind.map(|k| &r.values[k]) {
                Some(Value::Str(s)) => s.to_string(),
                _ => String::new(),
            });
        }
    }
    let anomalies = labels.iter().filter(|&&l| l).count();
    if train.rows() == 0 || anomalies == 0 || anomalies == labels.len() {
        bail!(
            "the split at {} leaves {} training rows and {anomalies} anomalies in {} test rows; both parts need rows and the test part both classes",
            format_rfc3339(cut),
            train.rows(),
            labels.len()
        );
    }
    let params = params_from(&args)?;
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let mut cols: [Vec<f64>; 8] = Default::default();
    let mut by_kind: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    let mut model = None;
    for &seed in &seeds {
        let p = IsolationForestParams {
            random_state: Some(seed),
            ..params.clone()
        };
        let t = Instant::now();
        let m = IsolationForest::fit(&p, train.view())?;
        let fit = t.elapsed().as_secs_f64();
        let scores = m.score(test.view())?;
        let c = Confusion::at_threshold(&scores, &labels, m.threshold())?;
        let at_precision = metrics::recall_at_precision(&scores, &labels, TARGET_PRECISION)?
            .map_or(0.0, |(r, _)| r);
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
        for (col, v) in cols.iter_mut().zip(values) {
            col.push(v);
        }
        let mut hits: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for ((&l, k), &s) in labels.iter().zip(&kinds).zip(&scores) {
            if l {
                let e = hits.entry(k.as_str()).or_default();
                e.0 += 1;
                e.1 += (s > m.threshold()) as usize;
            }
        }
        for (k, (n, hit)) in hits {
            let e = by_kind.entry(k.to_owned()).or_insert((n, Vec::new()));
            e.1.push(hit as f64 / n as f64);
        }
        model = Some(m);
    }
    let model = model.context("at least one seed")?;
    let [auc, ap, precision, recall, f1, flagged, at_precision, fit] = cols.map(Summary::of);
    let report = StreamReport {
        data: data.display().to_string(),
        stream: schema.name.clone(),
        features: schema.columns.clone(),
        events: records.len() + file.dead_letters.len(),
        dead_letters: file.dead_letters.len(),
        train_until: format_rfc3339(cut),
        train_rows: train.rows(),
        test_rows: test.rows(),
        test_anomalies: anomalies,
        n_estimators: model.n_trees(),
        max_samples: model.max_samples(),
        contamination: args.contamination.clone(),
        seeds,
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
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn render(r: &StreamReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "data      {} (stream `{}`)", r.data, r.stream);
    let _ = writeln!(
        s,
        "          {} events ({} dead letters); trained on {} rows before {}, tested on {} rows ({} anomalies)",
        r.events, r.dead_letters, r.train_rows, r.train_until, r.test_rows, r.test_anomalies
    );
    let _ = writeln!(s, "features  {}", r.features.join(", "));
    let _ = writeln!(
        s,
        "model     isolation forest: {} trees, max_samples {}, contamination {}; {} seeds\n",
        r.n_estimators,
        r.max_samples,
        r.contamination,
        r.seeds.len()
    );
    let _ = writeln!(
        s,
        "{:<34} {:>10} {:>10}",
        "metric (test part)", "mean", "std"
    );
    for (name, m) in [
        ("ROC-AUC", &r.roc_auc),
        ("average precision", &r.average_precision),
        ("precision at fitted threshold", &r.precision),
        ("recall at fitted threshold", &r.recall),
        ("F1 at fitted threshold", &r.f1),
        ("recall at precision >= 0.85", &r.recall_at_precision_085),
    ] {
        let _ = writeln!(s, "{name:<34} {:>10.4} {:>10.4}", m.mean, m.std);
    }
    let _ = writeln!(
        s,
        "{:<34} {:>10.1} {:>10.1}",
        "rows flagged", r.flagged.mean, r.flagged.std
    );
    let _ = writeln!(s, "\nrecall by kind (fitted threshold)");
    for (k, v) in &r.recall_by_kind {
        let _ = writeln!(
            s,
            "  {k:<32} {:>10.4} {:>10.4}   ({} anomalies)",
            v.recall.mean, v.recall.std, v.anomalies
        );
    }
    let _ = writeln!(
        s,
        "\nfeatures computed in {:.2} s; fit {:.1} ms",
        r.feature_seconds,
        r.fit_seconds.mean * 1e3
    );
    s
}
