//! `radar ingest FILE`: events into a stream's log topic.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use radar_pipeline::ingest::{self, IngestSpec};

use super::Place;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Events: JSON lines or CSV with a header (optionally gzipped).
    pub file: PathBuf,
    #[arg(long)]
    pub stream: Option<String>,
    /// Start at this line of the file (1 = the first; a CSV header is read
    /// wherever it is): to resume an ingest that stopped part-way.
    #[arg(long, default_value_t = 1)]
    pub from_line: u64,
    /// How long to keep retrying an append the log refuses for a reason
    /// that may pass (a full disk, a broker restarting), in seconds.
    #[arg(long, default_value_t = 300)]
    pub retry_seconds: u64,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: IngestArgs) -> Result<()> {
    let config = args.place.load()?;
    let log = config.open_log()?;
    let t0 = Instant::now();
    let bar = super::bar("{spinner} ingest {pos} events", true);
    let spec = IngestSpec {
        file: &args.file,
        stream: args.stream.as_deref(),
        from_line: args.from_line,
        retry_for: Duration::from_secs(args.retry_seconds),
    };
    let stats = ingest::ingest(
        log.as_ref(),
        &config,
        &spec,
        &|n| bar.set_position(n),
        &mut |e| bar.suspend(|| eprintln!("the log refused an append ({e}); retrying")),
    )?;
    bar.finish_and_clear();
    eprintln!(
        "ingested {} events ({} invalid, kept for the dead-letter table) in {:.1} s",
        stats.events,
        stats.invalid,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
