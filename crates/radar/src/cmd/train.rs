//! `radar train`: the stream's declared detector (or `--detector`) trained
//! on the lake, registered, optionally promoted.

use anyhow::Result;
use clap::Args;
use radar_core::schema::DetectorKind;
use radar_pipeline::train::{self, TrainReport, TrainSpec};

use super::{Place, time_arg};

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
    /// Model name in the registry (default: the declaration's
    /// `detector.model`, else `<stream>-<kind>`, e.g. `transactions-iforest`).
    #[arg(long)]
    pub model: Option<String>,
    /// Detector kind instead of the declaration's: `isolation_forest`,
    /// `half_space_trees` or `random_cut_forest` (options of the
    /// declaration's kind are then not used).
    #[arg(long)]
    pub detector: Option<String>,
    /// Share of the event-time span held out for evaluation (when labels
    /// exist).
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Train only on events whose entity had this many earlier events.
    #[arg(long, default_value_t = 5)]
    pub min_history: u32,
    /// Isolation Forest: trees (default: the declaration's, else 100).
    #[arg(long)]
    pub n_estimators: Option<usize>,
    /// Isolation Forest: `auto`, a row count or a fraction (default: the
    /// declaration's, else 2048).
    #[arg(long)]
    pub max_samples: Option<String>,
    /// The expected anomaly share: the decision threshold is the training
    /// scores' matching quantile (`auto` for an Isolation Forest: 0.5).
    #[arg(long, default_value = "0.01")]
    pub contamination: String,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Alerts per 1,000 events the team can review: the threshold raises
    /// that many on recent events (default: the contamination's quantile,
    /// or `contamination × 1000` alerts with a supervised part).
    #[arg(long)]
    pub alert_budget: Option<f64>,
    /// Train the supervised part on the labels known at this time (RFC
    /// 3339; default: now).
    #[arg(long)]
    pub labels_as_of: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

/// The spec these arguments ask for, checked before anything is read.
pub fn spec(config: &radar_pipeline::Config, args: &TrainArgs) -> Result<TrainSpec> {
    let schema = config.stream(args.stream.as_deref())?;
    let mut declared = schema.clone();
    if let Some(kind) = &args.detector {
        let table = format!("kind = \"{kind}\"");
        declared.detector.kind = toml::from_str::<radar_core::schema::DetectorConfig>(&table)
            .map_err(|e| anyhow::anyhow!("--detector: {e}"))?
            .kind;
        declared.detector.model = None;
    }
    let mut spec = TrainSpec::for_stream(&declared);
    if args.contamination != "auto" {
        spec.contamination = args.contamination.parse::<f64>().map_err(|_| {
            anyhow::anyhow!(
                "--contamination: expected `auto` or a fraction in (0, 0.5], found `{}`",
                args.contamination
            )
        })?;
    }
    let is_forest = matches!(spec.detector.kind, DetectorKind::IsolationForest(_));
    radar_pipeline::params::ForestOverrides {
        n_estimators: args.n_estimators,
        max_samples: args.max_samples.clone(),
        // The forest's own threshold follows --contamination.
        contamination: is_forest.then(|| args.contamination.clone()),
        ..Default::default()
    }
    .apply(&mut spec.detector)?;
    if let Some(s) = args.seed {
        spec.detector.seed = Some(s);
    }
    if let Some(m) = &args.model {
        spec.model = m.clone();
    }
    spec.from = time_arg("from", &args.from)?;
    spec.to = time_arg("to", &args.to)?;
    spec.holdout = args.holdout;
    spec.alert_budget = args.alert_budget;
    spec.labels_as_of = time_arg("labels-as-of", &args.labels_as_of)?;
    spec.min_history = args.min_history;
    spec.promote = args.promote;
    spec.validate()?;
    Ok(spec)
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.place.load()?;
    let spec = spec(&config, &args)?;
    let bar = super::bar("{spinner} {msg:<9} [{bar:30}] {pos}/{len}", !args.json);
    let report = train::train(&config, &spec, &|step, done, total| {
        bar.set_message(step.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

fn print(report: &TrainReport) {
    println!(
        "trained {} v{} ({}) on {} rows ({} held out) in {:.1} s{}",
        report.model,
        report.version,
        report.detector,
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
