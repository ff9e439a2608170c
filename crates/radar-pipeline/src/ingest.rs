//! Event files into a stream's log topic. Valid events are keyed by
//! entity; refused ones go in unkeyed with their reason in a header, for
//! capture to file in the dead-letter table (nothing is dropped). An append
//! the log refuses for a reason that may pass (a full disk, a broker away)
//! is retried, appending again only what did not arrive; when it still
//! fails, the error says how many events were appended and from which line
//! to resume, so a rerun does not double them.

use std::path::Path;
use std::time::Duration;

use radar_core::decode::Decoder;
use radar_lake::capture::dead_letter_record;
use radar_log::retrying::append_retrying;
use radar_log::{EventLog, Record};

use crate::config::Config;
use crate::error::{PipelineError, Result};
use crate::events::EventFile;

/// What to ingest.
#[derive(Debug, Clone)]
pub struct IngestSpec<'a> {
    pub file: &'a Path,
    /// The stream (the only one declared when `None`).
    pub stream: Option<&'a str>,
    /// Start at this line of the file (1 = the first; a CSV header is read
    /// wherever it is).
    pub from_line: u64,
    /// How long a refused append is retried.
    pub retry_for: Duration,
}

/// What an ingest did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Ingested {
    pub events: u64,
    pub invalid: u64,
}

/// An ingest that stopped part-way.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped: {source}; {appended} events were appended, every line before line {resume_line} is stored{}; resume with `--from-line {resume_line}`",
    if *.ahead > 0 { format!(" (and {} events of later lines, which a resume stores again)", .ahead) } else { String::new() }
)]
pub struct Stopped {
    pub appended: u64,
    pub resume_line: u64,
    /// Events of lines at or after `resume_line` already appended.
    pub ahead: u64,
    #[source]
    pub source: radar_log::LogError,
}

const BATCH: usize = 5000;

/// Appends the file's events to the stream's topic; `progress` hears the
/// events appended so far.
pub fn ingest(
    log: &dyn EventLog,
    config: &Config,
    spec: &IngestSpec<'_>,
    progress: &dyn Fn(u64),
    waiting: &mut dyn FnMut(&radar_log::LogError),
) -> Result<Ingested> {
    let schema = config.stream(spec.stream)?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let mut decoder = Decoder::new(schema.clone());
    let mut file = EventFile::open(spec.file)?;
    let header = file.header().to_vec();
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    // The file line of each record in `batch`.
    let mut lines: Vec<u64> = Vec::with_capacity(BATCH);
    let mut stats = Ingested::default();
    let mut last_line = 0;
    let mut flush =
        |batch: &mut Vec<Record>, lines: &mut Vec<u64>, stats: &mut Ingested, last_line: u64| {
            if let Err(e) = append_retrying(log, &schema.name, batch, spec.retry_for, &mut *waiting)
            {
                let done = e.stored.iter().filter(|&&s| s).count() as u64;
                let resume_line = e
                    .stored
                    .iter()
                    .position(|&s| !s)
                    .map_or(last_line + 1, |i| lines[i]);
                let ahead = e
                    .stored
                    .iter()
                    .zip(lines.iter())
                    .filter(|&(&s, &l)| s && l > resume_line)
                    .count() as u64;
                return Err(PipelineError::IngestStopped(Box::new(Stopped {
                    appended: stats.events + done,
                    resume_line,
                    ahead,
                    source: e.source,
                })));
            }
            stats.events += batch.len() as u64;
            progress(stats.events);
            batch.clear();
            lines.clear();
            Ok(())
        };
    while let Some(event) = file.next_event()? {
        last_line = event.line;
        if event.line < spec.from_line {
            continue;
        }
        let now = radar_core::time::now_micros();
        let record = match event.decode(&mut decoder, &header, now) {
            // CSV rows are stored as JSON: the log holds one format.
            Ok(r) => Record::new(
                r.entity.as_deref().map(str::as_bytes),
                match &event.body {
                    crate::events::Body::Json(bytes) => bytes.clone(),
                    crate::events::Body::Cells { .. } => r.to_json(&schema).into_bytes(),
                },
                now,
            ),
            Err(dl) => {
                stats.invalid += 1;
                dead_letter_record(&dl, now)
            }
        };
        batch.push(record);
        lines.push(event.line);
        if batch.len() == BATCH {
            flush(&mut batch, &mut lines, &mut stats, last_line)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut lines, &mut stats, last_line)?;
    }
    Ok(stats)
}
