//! `radar export mlflow`: the registry's runs, model versions and aliases
//! to an MLflow tracking server (or an Azure ML workspace's MLflow
//! endpoint), once; `radar up --mlflow-url` does it continuously.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Place;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// To an MLflow tracking server over its REST API; safe to repeat (what
    /// is there already is found again, not duplicated).
    Mlflow {
        /// The tracking server, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        url: String,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: ExportCommand,
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let config = args.place.load()?;
    let registry = config.open_registry()?;
    match args.command {
        ExportCommand::Mlflow { url } => {
            let e = radar_pipeline::mlflow::export(&registry, &url)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "runs: {} exported, {} already there; versions: {} exported, {} already there, {} without a run skipped; aliases: {} set, {} removed",
                    e.runs_created,
                    e.runs_present,
                    e.versions_created,
                    e.versions_present,
                    e.versions_skipped,
                    e.aliases_set,
                    e.aliases_removed
                );
            }
        }
    }
    Ok(())
}
