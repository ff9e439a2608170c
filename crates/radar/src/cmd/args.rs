//! The arguments of the commands with many: `eval` and `demo`.

use std::path::PathBuf;

use clap::Args;

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
    /// Default: training's, 5.
    #[arg(long)]
    pub min_history: Option<u32>,
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
    #[arg(long, default_value_t = 400)]
    pub gbdt_trees: usize,
    #[arg(long, default_value_t = 0.05)]
    pub gbdt_learning_rate: f64,
    #[arg(long, default_value_t = 6)]
    pub gbdt_depth: usize,
    /// With --labels: weight of a labelled fraud.
    #[arg(long, default_value_t = 5.0)]
    pub gbdt_pos_weight: f64,
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
    /// Isolation Forest options. With --config they override the
    /// declaration's (the defaults are training's: 2,048 samples per tree,
    /// contamination 0.01); without, scikit-learn's defaults.
    #[arg(long)]
    pub n_estimators: Option<usize>,
    /// `auto` (min(256, rows)), a row count, or a fraction of the rows.
    #[arg(long)]
    pub max_samples: Option<String>,
    /// A feature count or a fraction of the features.
    #[arg(long)]
    pub max_features: Option<String>,
    /// Draw each tree's rows with replacement.
    #[arg(long)]
    pub bootstrap: bool,
    /// `auto` (threshold 0.5) or the expected share of anomalies.
    #[arg(long)]
    pub contamination: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum EvalBenchmark {
    /// Streaming detectors over the Numenta Anomaly Benchmark, scored with
    /// NAB's profiles.
    Nab(super::eval_nab::NabArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Live events per second sent to the HTTP ingest endpoint, or `max`.
    #[arg(long, default_value = "2000")]
    pub rate: String,
    /// How long the live phase lasts (`30s`, `2m`, or seconds).
    #[arg(long, default_value = "30s")]
    pub duration: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Where the demo keeps its data; a previous demo's data there is
    /// replaced.
    #[arg(long, default_value = "./radar-demo")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub cardholders: usize,
    /// Days of event-time history generated before the live phase.
    #[arg(long, default_value_t = 14.0)]
    pub bootstrap_days: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the final report as JSON too.
    #[arg(long)]
    pub json: bool,
    /// The loop without a person: a third of the way in, the stream
    /// shifts (amounts, merchant mix, a new fraud pattern); radar notices
    /// the drift, retrains, gates, shadows, canaries and promotes a new
    /// model, and a timeline of each step is printed.
    #[arg(long)]
    pub drift: bool,
}
