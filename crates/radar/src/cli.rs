use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// radar: real-time anomaly detection with the MLOps loop around it.
#[derive(Debug, Parser)]
#[command(name = "radar", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How log lines look on stderr: `text` for people, `json` (one object
    /// per line, structured fields) for collectors. Levels: RUST_LOG
    /// (default `info`).
    #[arg(long, global = true, default_value = "text", env = "RADAR_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a detector: on a labelled CSV file, on a stream's declared
    /// features over an event file (--config), or over NAB (`eval nab`).
    Eval(cmd::args::EvalArgs),
    /// Write synthetic labelled data: card transactions (JSON lines) or
    /// tabular rows (CSV).
    Generate(cmd::generate::GenerateArgs),
    /// Compute a stream's declared features for a file of events.
    Features(cmd::features::FeaturesArgs),
    /// Append a file of events to a stream's log topic.
    Ingest(cmd::ingest::IngestArgs),
    /// Inspect the event log.
    Log(cmd::log::LogArgs),
    /// Write a stream's events from the log to the data lake.
    Capture(cmd::capture::CaptureArgs),
    /// Inspect the data lake.
    Lake(cmd::lake::LakeArgs),
    /// Train a model on a stream's lake data and register it.
    Train(cmd::train::TrainArgs),
    /// Feedback labels: import, mark, list.
    Labels(cmd::labels::LabelsArgs),
    /// Model versions and their aliases.
    Models(cmd::models::ModelsArgs),
    /// API keys and their roles for `radar up`.
    Keys(cmd::keys::KeysArgs),
    /// Training runs.
    Runs(cmd::models::RunsArgs),
    /// The served model's drift, from a running `radar up`.
    Monitor(cmd::monitor::MonitorArgs),
    /// Train a candidate and gate it against the champion; it becomes the
    /// challenger only if it passes (exit status 3 when it does not).
    Retrain(cmd::retrain::RetrainArgs),
    /// The registry to other systems (`export mlflow --url …`).
    Export(cmd::export::ExportArgs),
    /// Run ingest, capture, the scorer and the HTTP API together.
    Up(cmd::up::UpArgs),
    /// The whole loop on one machine, from nothing: history, training,
    /// live scoring over HTTP, and a report.
    Demo(cmd::args::DemoArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Eval(args) => cmd::eval::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Features(args) => cmd::features::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Log(args) => cmd::log::run(args),
        Command::Capture(args) => cmd::capture::run(args),
        Command::Lake(args) => cmd::lake::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Labels(args) => cmd::labels::run(args),
        Command::Models(args) => cmd::models::run_models(args),
        Command::Keys(args) => cmd::keys::run(args),
        Command::Runs(args) => cmd::models::run_runs(args),
        Command::Monitor(args) => cmd::monitor::run(args),
        Command::Retrain(args) => cmd::retrain::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Demo(args) => cmd::demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
