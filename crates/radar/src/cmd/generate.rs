use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use radar_core::synth::transactions::{LabelPolicy, TransactionSpec, Transactions, team_labels};
use radar_core::synth::{self, TabularSpec};
use radar_core::{tabular, time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Card transactions with labelled fraud, as JSON lines.
    Transactions,
    /// Numeric rows with labelled anomalies, as CSV.
    Tabular,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, value_enum, default_value = "transactions")]
    pub kind: Kind,
    /// Output file; `-` writes to standard output.
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Transactions: number of cardholders.
    #[arg(long, default_value_t = 10_000)]
    pub cardholders: usize,
    /// Transactions: share of events that are fraud, in [0, 0.5].
    #[arg(long, default_value_t = 0.01)]
    pub fraud_rate: f64,
    /// Transactions: event time of the first day (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Transactions: event-time span in days.
    #[arg(long, default_value_t = 30.0)]
    pub days: f64,
    /// Transactions: stop after this many events.
    #[arg(long)]
    pub events: Option<u64>,
    /// Transactions: write this many events per second of wall time;
    /// without it, as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Transactions: also write the labels a fraud team would have (an
    /// analyst's verdicts on a first model's alerts within hours, 70% of
    /// fraud charged back 5–40 days later, the rest never labelled) as
    /// JSON lines to this file.
    #[arg(long)]
    pub labels_out: Option<PathBuf>,
    /// Tabular: rows.
    #[arg(long, default_value_t = 20_000)]
    pub rows: usize,
    /// Tabular: feature columns.
    #[arg(long, default_value_t = 8)]
    pub features: usize,
    /// Tabular: share of anomalous rows, in [0, 0.5].
    #[arg(long, default_value_t = 0.02)]
    pub anomaly_rate: f64,
}

impl GenerateArgs {
    pub fn tabular_spec(&self) -> Result<TabularSpec> {
        if self.features == 0 {
            bail!("--features must be at least 1");
        }
        if !(0.0..=0.5).contains(&self.anomaly_rate) {
            bail!(
                "--anomaly-rate must be in [0, 0.5], got {}",
                self.anomaly_rate
            );
        }
        Ok(TabularSpec {
            rows: self.rows,
            features: self.features,
            anomaly_rate: self.anomaly_rate,
            seed: self.seed,
        })
    }

    pub fn transaction_spec(&self) -> Result<TransactionSpec> {
        if self.cardholders == 0 || self.cardholders > u32::MAX as usize {
            bail!("--cardholders must be between 1 and {}", u32::MAX);
        }
        if !(0.0..=0.5).contains(&self.fraud_rate) {
            bail!("--fraud-rate must be in [0, 0.5], got {}", self.fraud_rate);
        }
        if !(self.days > 0.0 && self.days.is_finite()) {
            bail!("--days must be positive, got {}", self.days);
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite())
        {
            bail!("--rate must be positive, got {rate}");
        }
        let start =
            time::parse_rfc3339(&self.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
        Ok(TransactionSpec {
            cardholders: self.cardholders,
            fraud_rate: self.fraud_rate,
            seed: self.seed,
            start,
            days: self.days,
        })
    }
}

fn output(path: &PathBuf) -> Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::new(std::io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
}

pub fn run(args: GenerateArgs) -> Result<()> {
    match args.kind {
        Kind::Tabular => {
            let table = synth::tabular(&args.tabular_spec()?);
            let mut out = output(&args.out)?;
            tabular::write_csv(&table, "label", &mut out)?;
            out.flush()?;
            if args.out.as_os_str() != "-" {
                eprintln!(
                    "wrote {} rows × {} features to {}",
                    table.features.rows(),
                    table.features.cols(),
                    args.out.display()
                );
            }
        }
        Kind::Transactions => {
            let spec = args.transaction_spec()?;
            let mut out = output(&args.out)?;
            let labels = match &args.labels_out {
                Some(path) => Some(output(path)?),
                None => None,
            };
            let (written, fraud, labelled) =
                write_transactions(spec, args.events, args.rate, &mut out, labels)?;
            if args.out.as_os_str() != "-" {
                eprintln!(
                    "wrote {written} transactions ({fraud} fraud) to {}",
                    args.out.display()
                );
            }
            if let Some(path) = &args.labels_out {
                eprintln!("wrote {labelled} labels to {}", path.display());
            }
        }
    }
    Ok(())
}

/// Writes transactions as JSON lines, and their team labels to `labels`;
/// returns (events, fraud events, labels).
pub fn write_transactions(
    spec: TransactionSpec,
    limit: Option<u64>,
    rate: Option<f64>,
    out: &mut dyn Write,
    mut labels: Option<Box<dyn Write>>,
) -> Result<(u64, u64, u64)> {
    let started = Instant::now();
    let seed = spec.seed;
    let policy = LabelPolicy::default();
    let mut line = String::with_capacity(256);
    let (mut written, mut fraud, mut labelled) = (0u64, 0u64, 0u64);
    for tx in Transactions::new(spec) {
        if limit.is_some_and(|l| written >= l) {
            break;
        }
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(written as f64 / rate);
            let now = Instant::now();
            if due > now {
                out.flush()?;
                std::thread::sleep(due - now);
            }
        }
        line.clear();
        tx.write_json(&mut line);
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            // A closed pipe (`radar generate | head`) ends the stream.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok((written, fraud, labelled));
            }
            return Err(e.into());
        }
        written += 1;
        fraud += tx.fraud.is_some() as u64;
        if let Some(l) = labels.as_mut() {
            for label in team_labels(&tx, seed, &policy) {
                line.clear();
                label.write_json(&mut line);
                line.push('\n');
                l.write_all(line.as_bytes())?;
                labelled += 1;
            }
        }
    }
    if let Some(mut l) = labels {
        l.flush()?;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok((written, fraud, labelled)),
    }
}
