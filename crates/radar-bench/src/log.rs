//! Event log throughput: appends acknowledged only once durable (group
//! commit), and sequential reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use radar_log::embedded::{EmbeddedLog, Options};
use radar_log::{EventLog, Record};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records to append.
    #[arg(long, default_value_t = 2_000_000)]
    records: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 200)]
    bytes: usize,
    /// Records per append call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent producers.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Directory for the log (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let log = Arc::new(EmbeddedLog::open(&dir, Options::default())?);
    log.create_topic("bench", args.partitions)?;
    let per = args.records / args.producers;
    let value = vec![b'x'; args.bytes];
    let t0 = Instant::now();
    let handles: Vec<_> = (0..args.producers)
        .map(|w| {
            let log = log.clone();
            let value = value.clone();
            let batch = args.batch;
            std::thread::spawn(move || -> Result<()> {
                let mut sent = 0;
                let mut i = 0u64;
                while sent < per {
                    let n = batch.min(per - sent);
                    let records: Vec<Record> = (0..n)
                        .map(|_| {
                            i += 1;
                            Record::new(
                                Some(format!("k{w}-{}", i % 1000).as_bytes()),
                                value.clone(),
                                i as i64,
                            )
                        })
                        .collect();
                    log.append("bench", &records)?;
                    sent += n;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))??;
    }
    let append_secs = t0.elapsed().as_secs_f64();
    let appended = per * args.producers;

    // Reads: best of three passes over everything (from the page cache).
    let mut read = 0usize;
    let mut read_secs = f64::INFINITY;
    for _ in 0..3 {
        read = 0;
        let t1 = Instant::now();
        for p in 0..args.partitions {
            let (mut at, end) = log.offsets("bench", p)?;
            while at < end {
                let got = log.read("bench", p, at, 10_000)?;
                read += got.len();
                at = got.last().map_or(end, |s| s.offset + 1);
            }
        }
        read_secs = read_secs.min(t1.elapsed().as_secs_f64());
    }
    let append_rate = appended as f64 / append_secs;
    let read_rate = read as f64 / read_secs;
    eprintln!(
        "append {append_rate:.0} records/s ({} producers, batches of {}, {} B values, fsync per group commit)",
        args.producers, args.batch, args.bytes
    );
    eprintln!("read   {read_rate:.0} records/s");
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "benchmark": "log",
            "implementation": "embedded",
            "records": appended,
            "value_bytes": args.bytes,
            "batch": args.batch,
            "producers": args.producers,
            "partitions": args.partitions,
            "figures": [
                {"figure": "append_records_per_second", "value": append_rate, "target": 500000, "met": append_rate >= 500000.0},
                {"figure": "read_records_per_second", "value": read_rate, "target": 2000000, "met": read_rate >= 2000000.0},
            ],
        }))?
    );
    Ok(())
}
