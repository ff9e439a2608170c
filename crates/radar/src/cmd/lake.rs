//! `radar lake ls | snapshot`: the data lake.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use radar_lake::Table;

use super::{Place, time_arg};

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// The stream's files.
    Ls {
        #[arg(long)]
        stream: Option<String>,
        /// `raw` or `dead_letters`.
        #[arg(long, default_value = "raw")]
        table: String,
    },
    /// A dataset snapshot: files, rows and content hash.
    Snapshot {
        #[arg(long)]
        stream: Option<String>,
        /// Event time from (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Event time to, exclusive (RFC 3339).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LakeArgs {
    #[command(subcommand)]
    pub command: LakeCommand,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: LakeArgs) -> Result<()> {
    let config = args.place.load()?;
    let lake = config.open_lake()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.command {
        LakeCommand::Ls { stream, table } => {
            let schema = config.stream(stream.as_deref())?;
            let table = match table.as_str() {
                "raw" => Table::Raw,
                "dead_letters" => Table::DeadLetters,
                other => bail!("--table must be `raw` or `dead_letters`, not `{other}`"),
            };
            for f in rt.block_on(lake.files(table, &schema.name, None))? {
                println!(
                    "{:>12} {:>6} {:>10}..{:<10} {}",
                    f.size, f.partition, f.first_offset, f.last_offset, f.path
                );
            }
        }
        LakeCommand::Snapshot { stream, from, to } => {
            let schema = config.stream(stream.as_deref())?;
            let (from, to) = (time_arg("from", &from)?, time_arg("to", &to)?);
            let range = (from.is_some() || to.is_some())
                .then(|| (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)));
            let snap = rt.block_on(lake.snapshot(&schema.name, range))?;
            println!("{}", serde_json::to_string_pretty(&snap)?);
        }
    }
    Ok(())
}
