use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use radar_core::synth::{self, TabularSpec};
use radar_core::tabular;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output file (CSV); `-` writes to standard output.
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 20_000)]
    pub rows: usize,
    #[arg(long, default_value_t = 8)]
    pub features: usize,
    /// Share of anomalous rows, in [0, 0.5].
    #[arg(long, default_value_t = 0.02)]
    pub anomaly_rate: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl GenerateArgs {
    pub fn spec(&self) -> Result<TabularSpec> {
        if self.features == 0 {
            anyhow::bail!("--features must be at least 1");
        }
        if !(0.0..=0.5).contains(&self.anomaly_rate) {
            anyhow::bail!(
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
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let table = synth::tabular(&args.spec()?);
    if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        tabular::write_csv(&table, "label", BufWriter::new(stdout.lock()))?;
        return Ok(());
    }
    let file = File::create(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    let mut out = BufWriter::new(file);
    tabular::write_csv(&table, "label", &mut out)?;
    out.flush()?;
    eprintln!(
        "wrote {} rows × {} features to {}",
        table.features.rows(),
        table.features.cols(),
        args.out.display()
    );
    Ok(())
}
