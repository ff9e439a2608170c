//! `radar log ls | tail | lag`: the event log.

use anyhow::Result;
use clap::{Args, Subcommand};
use radar_core::time::format_rfc3339;
use radar_log::EventLog;
use radar_pipeline::Config;

use super::Place;

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Topics with their partitions and offsets.
    Ls,
    /// The last records of a topic.
    Tail {
        topic: String,
        #[arg(short, long, default_value_t = 10)]
        n: u64,
    },
    /// How far a consumer group is behind, per partition.
    Lag {
        topic: String,
        #[arg(long, default_value = "radar-capture")]
        group: String,
    },
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
    #[command(flatten)]
    pub place: Place,
}

fn topics(config: &Config, log: &dyn EventLog) -> Vec<String> {
    config
        .streams
        .keys()
        .filter(|t| log.partitions(t).is_ok())
        .cloned()
        .collect()
}

pub fn run(args: LogArgs) -> Result<()> {
    let config = args.place.load()?;
    let log = config.open_log()?;
    match args.command {
        LogCommand::Ls => {
            println!(
                "{:<24} {:>9} {:>14} {:>14}",
                "topic", "partition", "earliest", "end"
            );
            for t in topics(&config, log.as_ref()) {
                for p in 0..log.partitions(&t)? {
                    let (lo, hi) = log.offsets(&t, p)?;
                    println!("{t:<24} {p:>9} {lo:>14} {hi:>14}");
                }
            }
        }
        LogCommand::Tail { topic, n } => {
            for p in 0..log.partitions(&topic)? {
                let (lo, hi) = log.offsets(&topic, p)?;
                for s in log.read(&topic, p, hi.saturating_sub(n).max(lo), n as usize)? {
                    println!(
                        "{}/{} {} {}",
                        s.partition,
                        s.offset,
                        format_rfc3339(s.record.timestamp),
                        String::from_utf8_lossy(&s.record.value)
                    );
                }
            }
        }
        LogCommand::Lag { topic, group } => {
            println!(
                "{:>9} {:>14} {:>14} {:>10}",
                "partition", "committed", "end", "lag"
            );
            for p in 0..log.partitions(&topic)? {
                let (lo, hi) = log.offsets(&topic, p)?;
                let c = log.committed(&topic, &group, p)?.unwrap_or(lo);
                println!("{p:>9} {c:>14} {hi:>14} {:>10}", hi.saturating_sub(c));
            }
        }
    }
    Ok(())
}
