use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// radar: real-time anomaly detection with the MLOps loop around it.
#[derive(Debug, Parser)]
#[command(name = "radar", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit an Isolation Forest on a labelled CSV file and report how well its
    /// scores find the labelled anomalies.
    Eval(cmd::eval::EvalArgs),
    /// Write synthetic labelled data: card transactions (JSON lines) or
    /// tabular rows (CSV).
    Generate(cmd::generate::GenerateArgs),
    /// Compute a stream's declared features for a file of events.
    Features(cmd::features::FeaturesArgs),
    /// Append a file of events to a stream's log topic.
    Ingest(cmd::ops::IngestArgs),
    /// Inspect the event log.
    Log(cmd::ops::LogArgs),
    /// Write a stream's events from the log to the data lake.
    Capture(cmd::ops::CaptureArgs),
    /// Inspect the data lake.
    Lake(cmd::ops::LakeArgs),
    /// Train a model on a stream's lake data and register it.
    Train(cmd::train::TrainArgs),
    /// Model versions and their aliases.
    Models(cmd::models::ModelsArgs),
    /// Training runs.
    Runs(cmd::models::RunsArgs),
    /// Run ingest, capture, the scorer and the HTTP API together.
    Up(cmd::up::UpArgs),
    /// The whole loop on one machine, from nothing: history, training,
    /// live scoring over HTTP, and a report.
    Demo(cmd::demo::DemoArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => cmd::eval::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Features(args) => cmd::features::run(args),
        Command::Ingest(args) => cmd::ops::run_ingest(args),
        Command::Log(args) => cmd::ops::run_log(args),
        Command::Capture(args) => cmd::ops::run_capture(args),
        Command::Lake(args) => cmd::ops::run_lake(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Models(args) => cmd::models::run_models(args),
        Command::Runs(args) => cmd::models::run_runs(args),
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
