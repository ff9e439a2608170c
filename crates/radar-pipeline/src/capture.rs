//! Capture on its own (`radar capture`): the stream's log into the lake,
//! until stopped or, as a backfill, until the stream has been idle for a
//! while with everything committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use radar_core::health::Health;
use radar_lake::capture::{self, CaptureOptions, CaptureStats};

use crate::config::Config;
use crate::error::{PipelineError, Result};

/// Runs capture of `stream` until `stop`, or with `until_idle` until the
/// group has caught up and nothing arrived for that long.
pub fn run(
    config: &Config,
    stream: Option<&str>,
    options: &CaptureOptions,
    until_idle: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> Result<CaptureStats> {
    let schema = config.stream(stream)?;
    let log = config.open_log()?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let lake = config.open_lake()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PipelineError::io("starting the I/O runtime"))?;
    if let Some(idle) = until_idle {
        let (stop, log, topic, group) = (
            stop.clone(),
            log.clone(),
            schema.name.clone(),
            options.group.clone(),
        );
        std::thread::spawn(move || {
            let mut last_change = Instant::now();
            let mut last_state = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let state: Vec<(u64, Option<u64>)> = (0..log.partitions(&topic).unwrap_or(0))
                    .map(|p| {
                        (
                            log.offsets(&topic, p).map_or(0, |o| o.1),
                            log.committed(&topic, &group, p).ok().flatten(),
                        )
                    })
                    .collect();
                let caught_up = state.iter().all(|(end, c)| c.unwrap_or(0) >= *end);
                if state != last_state {
                    last_state = state;
                    last_change = Instant::now();
                } else if caught_up && last_change.elapsed() >= idle {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        });
    }
    Ok(capture::run(
        log.as_ref(),
        &lake,
        &schema,
        &schema.name,
        options,
        &stop,
        rt.handle(),
        &crate::labels::Indexing::new(
            &schema,
            config.entity_hasher()?,
            config.open_labels()?,
            std::sync::Arc::new(Health::default()),
            None,
        ),
    )?)
}
