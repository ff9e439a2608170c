//! `radar eval`: a detector on a labelled table (`--data`), on a stream's
//! declared features over an event file (`--config --data`), or over the
//! Numenta Anomaly Benchmark (`eval nab`). The harnesses are
//! `radar_pipeline::evaluate` and `radar_pipeline::nab`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use radar_core::synth::{self, TabularSpec};
use radar_detect::IsolationForestParams;
use radar_pipeline::evaluate::{self, Labels, StreamSpec, SupervisedSpec};
use radar_pipeline::{data, params};

use super::render;

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
    /// With --config: feedback labels (JSON lines or CSV: event_id, label,
    /// kind, source, known_at). The hybrid (gradient-boosted trees over the
    /// features and the forest's score) trains on the labels known when the
    /// training part ends and is judged beside the forest alone, against the
    /// events' own label fields.
    #[arg(long, requires = "config")]
    pub labels: Option<PathBuf>,
    /// With --labels: alerts per 1,000 events the team can review; the
    /// threshold that raises that many.
    #[arg(long, default_value_t = 10.0)]
    pub alert_budget: f64,
    /// With --labels: boosted trees.
    #[arg(long, default_value_t = 200)]
    pub gbdt_trees: usize,
    #[arg(long, default_value_t = 0.1)]
    pub gbdt_learning_rate: f64,
    #[arg(long, default_value_t = 6)]
    pub gbdt_depth: usize,
    /// With --labels: weight of a labelled fraud (default: negatives per
    /// positive, capped at 50).
    #[arg(long)]
    pub gbdt_pos_weight: Option<f64>,
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

pub fn params_from(args: &EvalArgs) -> Result<IsolationForestParams> {
    let p = IsolationForestParams {
        n_estimators: args.n_estimators,
        max_samples: params::max_samples(&args.max_samples).context("--max-samples")?,
        max_features: params::max_features(&args.max_features).context("--max-features")?,
        bootstrap: args.bootstrap,
        contamination: params::contamination(&args.contamination).context("--contamination")?,
        random_state: None,
    };
    p.validate()?;
    Ok(p)
}

pub fn run(mut args: EvalArgs) -> Result<()> {
    if let Some(EvalBenchmark::Nab(nab)) = args.benchmark.take() {
        return super::eval_nab::run(nab);
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let params = params_from(&args)?;
    let seeds: Vec<u64> = (0..args.seeds).collect();
    if let Some(config) = &args.config {
        let data = args
            .data
            .as_ref()
            .context("--data is required with --config")?;
        let schema = radar_pipeline::events::load_schema(config, args.stream.as_deref())?;
        if let Some(labels) = &args.labels {
            let spec = SupervisedSpec {
                truth: Labels::named(&schema, &args.label, &args.kind_label)?,
                schema,
                iforest: IsolationForestParams {
                    random_state: Some(0),
                    ..params
                },
                gbdt: radar_detect::GbdtParams {
                    n_trees: args.gbdt_trees,
                    learning_rate: args.gbdt_learning_rate,
                    max_depth: args.gbdt_depth,
                    scale_pos_weight: args.gbdt_pos_weight,
                    ..radar_detect::GbdtParams::default()
                },
                budget_per_thousand: args.alert_budget,
                train_fraction: args.train_fraction,
                min_history: args.min_history,
                threshold_fraction: 0.15,
            };
            let report = evaluate::supervised(data, labels, &spec)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render::supervised(&report));
            }
            return Ok(());
        }
        let spec = StreamSpec {
            labels: Labels::named(&schema, &args.label, &args.kind_label)?,
            schema,
            params,
            seeds,
            train_fraction: args.train_fraction,
            min_history: args.min_history,
        };
        let report = evaluate::stream(data, &spec)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render::stream(&report));
        }
        return Ok(());
    }
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
    let report = evaluate::table(&name, &table, &params, &seeds)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::table(&report));
    }
    Ok(())
}
