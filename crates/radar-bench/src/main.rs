//! Benchmarks of radar against its peers, measured in the same run.
//! Each command prints JSON on stdout and a readable table on stderr.

mod datasets;
mod eif;
mod features;
mod lake;
mod log;
mod parity;
mod peer;
mod scale;
mod serve;
mod served;
mod soak;
mod speed;
mod streaming;
mod supervised;
mod tail;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "radar-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Variant names are the subcommand names (`iforest-speed`, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Isolation Forest speed against scikit-learn: fit, batch scoring on one
    /// and all threads, single-row latency.
    IforestSpeed(speed::Args),
    /// Isolation Forest ROC-AUC over seeds against scikit-learn's baselines.
    IforestParity(parity::Args),
    /// Stream decoding and feature speed, feature-state memory per entity.
    Features(features::Args),
    /// Event log append and read throughput.
    Log(log::Args),
    /// Capture into Parquet and lake scan throughput; Kafka produce and
    /// consume through the Kafka implementation.
    Lake(lake::Args),
    /// Online detectors against their peers: Half-Space Trees against
    /// River, Random Cut Forest against AWS's (krcf) with NAB scores.
    Streaming(streaming::Args),
    /// `radar up` fed for many minutes at a steady rate with churning
    /// entities: memory, open files, disk use and lag over time.
    Soak(soak::Args),
    /// `radar up`'s `/score` against a FastAPI + uvicorn + scikit-learn
    /// peer at the same concurrency, then batched ingest end to end.
    Serve(serve::Args),
    /// The scorer scaled out: 1, 2, 3 `radar up` workers in one consumer
    /// group scoring one backlog on a Kafka-protocol broker.
    Scale(scale::Args),
    /// Radar's boosted trees (the hybrid's supervised part) against
    /// LightGBM and XGBoost on the generated stream's labels.
    Supervised(supervised::Args),
    /// ECOD and COPOD against PyOD's on the ODDS tables (AUC, fit + score time).
    JointTail(tail::Args),
    /// Extended Isolation Forest against isotree's extended mode on the
    /// ODDS tables (AUC over seeds, fit + score time).
    Eif(eif::Args),
    /// Repeats one Isolation Forest operation in a loop, for profilers.
    IforestLoop(speed::LoopArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::IforestSpeed(args) => speed::run(args),
        Command::IforestParity(args) => parity::run(args),
        Command::IforestLoop(args) => speed::run_loop(args),
        Command::Features(args) => features::run(args),
        Command::Log(args) => log::run(args),
        Command::Lake(args) => lake::run(args),
        Command::Streaming(args) => streaming::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Supervised(args) => supervised::run(args),
        Command::JointTail(args) => tail::run(args),
        Command::Eif(args) => eif::run(args),
    }
}
