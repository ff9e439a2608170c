use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use radar_core::synth::transactions::{Shift, TransactionSpec};
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
    /// Transactions: from this many days after the start, the stream
    /// shifts as in `radar demo --drift` (amounts ×2.5, 30% of purchases
    /// in digital goods, a new fraud pattern: account takeovers).
    #[arg(long)]
    pub shift_after_days: Option<f64>,
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
        let shift = match self.shift_after_days {
            Some(d) if d >= 0.0 && d.is_finite() => Some(Shift::demo(
                start + (d * 86_400.0 * time::MICROS_PER_SECOND as f64) as i64,
            )),
            Some(d) => bail!("--shift-after-days must be at least 0, got {d}"),
            None => None,
        };
        Ok(TransactionSpec {
            cardholders: self.cardholders,
            fraud_rate: self.fraud_rate,
            seed: self.seed,
            start,
            days: self.days,
            shift,
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
            let (written, fraud, labelled) = radar_pipeline::demo::write_transactions(
                spec,
                args.events,
                args.rate,
                &mut out,
                labels,
            )?;
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
