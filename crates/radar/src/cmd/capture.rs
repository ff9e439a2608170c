//! `radar capture`: a stream's log into the lake.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use radar_lake::capture::CaptureOptions;

use super::Place;

#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[arg(long)]
    pub stream: Option<String>,
    /// Stop once the stream has been idle (nothing new) this many seconds.
    #[arg(long)]
    pub until_idle: Option<f64>,
    /// Seconds between file rolls.
    #[arg(long, default_value_t = 10.0)]
    pub roll_seconds: f64,
    /// Events per file roll.
    #[arg(long, default_value_t = 200_000)]
    pub roll_rows: usize,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: CaptureArgs) -> Result<()> {
    let config = args.place.load()?;
    let options = CaptureOptions {
        max_age: Duration::from_secs_f64(args.roll_seconds.max(0.01)),
        max_rows: args.roll_rows.max(1),
        ..CaptureOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C or SIGTERM flushes and commits what was read, then stops.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(super::stop_signal());
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let stats = radar_pipeline::capture::run(
        &config,
        args.stream.as_deref(),
        &options,
        args.until_idle.map(Duration::from_secs_f64),
        stop,
    )?;
    eprintln!(
        "captured {} events and {} dead letters into {} files ({} commits; {} uncommitted files from an earlier run removed)",
        stats.events,
        stats.dead_letters,
        stats.files,
        stats.commits,
        stats.removed_uncommitted_files
    );
    Ok(())
}
