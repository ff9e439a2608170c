use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use radar_core::synth::{self, TabularSpec};
use radar_core::tabular::LabelledTable;
use radar_detect::metrics::{self, Confusion};
use radar_detect::{IsolationForest, IsolationForestParams};
use serde::Serialize;

use crate::{data, params};

#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub benchmark: Option<EvalBenchmark>,
    /// Labelled CSV file (optionally gzipped): a header line, numeric
    /// feature columns and a 0/1 label column.
    #[arg(
        long,
        required_unless_present = "synthetic",
        conflicts_with = "synthetic"
    )]
    pub data: Option<PathBuf>,
    /// Evaluate on a stream's declared features: events (JSON lines or CSV
    /// in --data) are decoded and featurised with the config's declaration,
    /// the forest is fitted on the first part of event time and scored on
    /// the rest.
    #[arg(long, conflicts_with = "synthetic")]
    pub config: Option<PathBuf>,
    /// Stream name in --config (optional when it declares one stream).
    #[arg(long, requires = "config")]
    pub stream: Option<String>,
    /// With --config: share of the event-time span used for training.
    #[arg(long, default_value_t = 0.7)]
    pub train_fraction: f64,
    /// With --config: train only on events whose entity had at least this
    /// many earlier events (cold-start rows, with no history to compare
    /// against, would teach the forest that everything new is normal).
    #[arg(long, default_value_t = 0)]
    pub min_history: u32,
    /// Evaluate on a synthetic labelled data set generated in memory
    /// (see `radar generate`) instead of a file.
    #[arg(long)]
    pub synthetic: bool,
    /// Name of the label column (1 = anomaly, 0 = normal). With --config, a
    /// label field of the stream.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// With --config: a category label field whose values name the kind of
    /// each anomaly; recall is reported per kind.
    #[arg(long, default_value = "label_kind")]
    pub kind_label: String,
    /// Number of seeds (0, 1, ...) to fit and score with; metrics are
    /// reported as mean ± standard deviation over them.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 100)]
    pub n_estimators: usize,
    /// `auto` (min(256, rows)), a row count, or a fraction of the rows.
    #[arg(long, default_value = "auto")]
    pub max_samples: String,
    /// A feature count or a fraction of the features.
    #[arg(long, default_value = "1.0")]
    pub max_features: String,
    /// Draw each tree's rows with replacement.
    #[arg(long)]
    pub bootstrap: bool,
    /// `auto` (threshold 0.5) or the expected share of anomalies.
    #[arg(long, default_value = "auto")]
    pub contamination: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum EvalBenchmark {
    /// Streaming detectors over the Numenta Anomaly Benchmark, scored with
    /// NAB's profiles.
    Nab(super::eval_nab::NabArgs),
}

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
        // Population standard deviation, as the Python baselines report.
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Summary { mean, std, values }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
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

/// Fits and scores once per seed and summarises the metrics.
pub fn evaluate(
    name: &str,
    table: &LabelledTable,
    params: &IsolationForestParams,
    seeds: &[u64],
) -> Result<Report> {
    let Some(labels) = &table.labels else {
        bail!("the data has no label column");
    };
    let x = table.features.view();
    let anomalies = labels.iter().filter(|&&l| l).count();
    if anomalies == 0 || anomalies == labels.len() {
        bail!(
            "the label column must hold both classes; found {anomalies} anomalies in {} rows",
            labels.len()
        );
    }
    let mut cols: [Vec<f64>; 10] = Default::default();
    let mut last = None;
    for &seed in seeds {
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
        for (col, v) in cols.iter_mut().zip(values) {
            col.push(v);
        }
        last = Some(model);
    }
    let model = last.context("at least one seed is needed")?;
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
    ] = cols.map(Summary::of);
    Ok(Report {
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

pub fn params_from(args: &EvalArgs) -> Result<IsolationForestParams> {
    Ok(IsolationForestParams {
        n_estimators: args.n_estimators,
        max_samples: params::max_samples(&args.max_samples).context("--max-samples")?,
        max_features: params::max_features(&args.max_features).context("--max-features")?,
        bootstrap: args.bootstrap,
        contamination: params::contamination(&args.contamination).context("--contamination")?,
        random_state: None,
    })
}

pub fn run(mut args: EvalArgs) -> Result<()> {
    if let Some(EvalBenchmark::Nab(nab)) = args.benchmark.take() {
        return super::eval_nab::run(nab);
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if args.config.is_some() {
        return crate::cmd::eval_stream::run(args);
    }
    let params = params_from(&args)?;
    let (name, table) = match &args.data {
        Some(path) => (
            path.display().to_string(),
            data::read_table(path, Some(&args.label))?,
        ),
        None => {
            let spec = TabularSpec::default();
            let name = format!(
                "synthetic ({} rows, {} features, {}% anomalies, seed {})",
                spec.rows,
                spec.features,
                spec.anomaly_rate * 100.0,
                spec.seed
            );
            (name, synth::tabular(&spec))
        }
    };
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let report = evaluate(&name, &table, &params, &seeds)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let pct = 100.0 * r.anomalies as f64 / r.rows as f64;
    let _ = writeln!(s, "data      {}", r.data);
    let _ = writeln!(
        s,
        "          {} rows × {} features, {} labelled anomalies ({pct:.2}%)",
        r.rows, r.features, r.anomalies
    );
    let _ = writeln!(
        s,
        "model     isolation forest: {} trees, max_samples {}, max_features {}, bootstrap {}, contamination {}",
        r.n_estimators, r.max_samples, r.max_features, r.bootstrap, r.contamination
    );
    let _ = writeln!(
        s,
        "seeds     {} ({}..={}), {} threads\n",
        r.seeds.len(),
        r.seeds[0],
        r.seeds[r.seeds.len() - 1],
        r.threads
    );
    let _ = writeln!(s, "{:<28} {:>10} {:>10}", "metric", "mean", "std");
    let rows: [(&str, &Summary); 7] = [
        ("ROC-AUC", &r.roc_auc),
        ("average precision", &r.average_precision),
        ("precision@k (k = anomalies)", &r.precision_at_k),
        ("precision at threshold", &r.precision),
        ("recall at threshold", &r.recall),
        ("F1 at threshold", &r.f1),
        ("threshold", &r.threshold),
    ];
    for (name, m) in rows {
        let _ = writeln!(s, "{name:<28} {:>10.4} {:>10.4}", m.mean, m.std);
    }
    let _ = writeln!(
        s,
        "{:<28} {:>10.1} {:>10.1}",
        "rows flagged", r.flagged.mean, r.flagged.std
    );
    let _ = writeln!(
        s,
        "{:<28} {:>10.2} {:>10.2}",
        "fit time (ms)",
        r.fit_seconds.mean * 1e3,
        r.fit_seconds.std * 1e3
    );
    let _ = writeln!(
        s,
        "{:<28} {:>10.0} {:>10.0}",
        "scoring (rows/s)", r.score_rows_per_second.mean, r.score_rows_per_second.std
    );
    s
}
