//! Operating the log and the lake: `ingest`, `log`, `capture`, `lake`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use radar_core::decode::Decoder;
use radar_core::time::{format_rfc3339, parse_rfc3339};
use radar_lake::Table;
use radar_lake::capture::{self, CaptureOptions};
use radar_log::retrying::append_retrying;
use radar_log::{EventLog, Record};

use crate::config::Config;
use crate::{data, streams};

/// Where the config and data live; shared by these commands.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// The config file (radar.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Storage root (local directory or object-store URL); overrides the
    /// config's `storage.root`.
    #[arg(long, global = true)]
    pub data_dir: Option<String>,
}

impl Place {
    pub fn load(&self) -> Result<Config> {
        let mut c = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            c.storage.root = d.clone();
        }
        Ok(c)
    }
}

pub use radar_core::time::now_micros;

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

/// What an ingest did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Ingested {
    pub events: u64,
    pub invalid: u64,
}

/// Appends the file's events to the stream's topic. Valid events are keyed
/// by entity; invalid ones go in unkeyed, to be dead-lettered with their
/// reason by capture (nothing is dropped).
pub fn ingest(
    log: &dyn EventLog,
    config: &Config,
    stream: Option<&str>,
    file: &std::path::Path,
    progress: bool,
) -> Result<Ingested> {
    ingest_from(
        log,
        config,
        stream,
        file,
        progress,
        1,
        Duration::from_secs(300),
    )
}

/// [`ingest`] from line `from_line` on, retrying refused appends for up to
/// `retry_for`. When it still fails, the error says how many events were
/// appended and the line to resume from (every line before it is stored).
pub fn ingest_from(
    log: &dyn EventLog,
    config: &Config,
    stream: Option<&str>,
    file: &std::path::Path,
    progress: bool,
    from_line: u64,
    retry_for: Duration,
) -> Result<Ingested> {
    let schema = config.stream(stream)?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let mut decoder = Decoder::new(schema.clone());
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        ProgressBar::new(size)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reader = BufReader::with_capacity(1 << 20, data::open(file)?);
    let is_json = {
        let buf = reader.fill_buf()?;
        buf.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b == b'{')
    };
    let mut header: Vec<String> = Vec::new();
    let mut batch: Vec<Record> = Vec::with_capacity(5000);
    // The file line of each record in `batch`.
    let mut lines: Vec<u64> = Vec::with_capacity(5000);
    let mut stats = Ingested::default();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let flush = |batch: &mut Vec<Record>,
                 lines: &mut Vec<u64>,
                 stats: &mut Ingested,
                 line_no: u64| {
        let result = append_retrying(log, &schema.name, batch, retry_for, |e| {
            bar.suspend(|| eprintln!("the log refused an append ({e}); retrying"))
        });
        if let Err(e) = result {
            let done = e.stored.iter().filter(|&&s| s).count() as u64;
            let resume = e
                .stored
                .iter()
                .position(|&s| !s)
                .map_or(line_no + 1, |i| lines[i]);
            let ahead = e
                .stored
                .iter()
                .zip(lines.iter())
                .filter(|&(&s, &l)| s && l > resume)
                .count();
            bail!(
                "stopped: {}; {} events were appended, every line before line {resume} is stored{}; \
                 resume with `--from-line {resume}`",
                e.source,
                stats.events + done,
                if ahead > 0 {
                    format!(" (and {ahead} events of later lines, which a resume stores again)")
                } else {
                    String::new()
                },
            );
        }
        stats.events += batch.len() as u64;
        batch.clear();
        lines.clear();
        Ok(())
    };
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bar.inc(n as u64);
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if line_no < from_line && (is_json || !header.is_empty()) {
            continue;
        }
        let now = now_micros();
        let (key, value) = if is_json {
            match decoder.decode_json(&line, now) {
                Ok(r) => (r.entity.map(|e| e.as_bytes().to_vec()), line.clone()),
                Err(_) => (None, line.clone()),
            }
        } else if header.is_empty() {
            header = streams::csv_cells(&line);
            continue;
        } else {
            let cells = streams::csv_cells(&line);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            match decoder.decode_cells(&names, &cells, &line, now) {
                Ok(r) => (
                    r.entity.as_ref().map(|e| e.as_bytes().to_vec()),
                    r.to_json(&schema).into_bytes(),
                ),
                Err(_) => (None, line.clone()),
            }
        };
        batch.push(Record::new(key.as_deref(), value, now));
        lines.push(line_no);
        if batch.len() == 5000 {
            flush(&mut batch, &mut lines, &mut stats, line_no)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut lines, &mut stats, line_no)?;
    }
    stats.invalid = decoder.stats().total_dead_letters();
    bar.finish_and_clear();
    Ok(stats)
}

pub fn run_ingest(args: IngestArgs) -> Result<()> {
    let config = args.place.load()?;
    let log = config.open_log()?;
    let t0 = Instant::now();
    let stats = ingest_from(
        log.as_ref(),
        &config,
        args.stream.as_deref(),
        &args.file,
        true,
        args.from_line,
        Duration::from_secs(args.retry_seconds),
    )?;
    eprintln!(
        "ingested {} events ({} invalid, kept for the dead-letter table) in {:.1} s",
        stats.events,
        stats.invalid,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

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

pub fn run_log(args: LogArgs) -> Result<()> {
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

/// Runs capture until Ctrl-C or, with `until_idle`, until the group has
/// caught up and nothing arrived for that long.
pub fn run_capture(args: CaptureArgs) -> Result<()> {
    let config = args.place.load()?;
    let schema = config.stream(args.stream.as_deref())?;
    let log = config.open_log()?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let lake = config.open_lake()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let options = CaptureOptions {
        max_age: Duration::from_secs_f64(args.roll_seconds.max(0.01)),
        max_rows: args.roll_rows.max(1),
        ..CaptureOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    if let Some(idle) = args.until_idle {
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
                } else if caught_up && last_change.elapsed().as_secs_f64() >= idle {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        });
    }
    let stats = capture::run(
        log.as_ref(),
        &lake,
        &schema,
        &schema.name,
        &options,
        &stop,
        rt.handle(),
        &radar_core::health::Health::default(),
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

pub fn time_arg(name: &str, v: &Option<String>, default: i64) -> Result<i64> {
    match v {
        None => Ok(default),
        Some(s) => parse_rfc3339(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")),
    }
}

pub fn run_lake(args: LakeArgs) -> Result<()> {
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
            let range = if from.is_some() || to.is_some() {
                Some((
                    time_arg("from", &from, i64::MIN)?,
                    time_arg("to", &to, i64::MAX)?,
                ))
            } else {
                None
            };
            let snap = rt
                .block_on(lake.snapshot(&schema.name, range))
                .context("snapshot")?;
            println!("{}", serde_json::to_string_pretty(&snap)?);
        }
    }
    Ok(())
}
