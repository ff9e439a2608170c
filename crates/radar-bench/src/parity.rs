//! Isolation Forest ROC-AUC parity with scikit-learn's published baselines.

use std::path::PathBuf;

use anyhow::{Result, bail};
use radar_detect::IsolationForestParams;
use serde::Serialize;

use crate::datasets;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which data sets: `all`, or size classes `small` (< 1,000 rows),
    /// `medium` (< 10,000) and `large`, or names; comma-separated.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    sets: Vec<String>,
    #[arg(long)]
    datasets: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Allowed shortfall of radar's mean AUC below scikit-learn's.
    #[arg(long, default_value_t = 0.01)]
    tolerance: f64,
    /// Exit with an error when a data set falls short.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub dataset: String,
    pub rows: usize,
    pub radar_auc_mean: f64,
    pub radar_auc_std: f64,
    pub sklearn_auc_mean: f64,
    pub sklearn_auc_std: f64,
    pub difference: f64,
    pub within_tolerance: bool,
}

pub fn size_class(rows: usize) -> &'static str {
    match rows {
        0..1000 => "small",
        1000..10_000 => "medium",
        _ => "large",
    }
}

pub fn run(args: Args) -> Result<()> {
    let root = datasets::locate(args.datasets.as_deref())?;
    let baselines = datasets::baselines(&root)?;
    let names = datasets::tabular_names(&root)?;
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let mut rows = Vec::new();
    for name in names {
        let Some(base) = baselines.get(&name) else {
            eprintln!("{name}: no baseline, skipped");
            continue;
        };
        let class = size_class(base.rows);
        let wanted = args
            .sets
            .iter()
            .any(|s| s == "all" || s == class || *s == name);
        if !wanted {
            continue;
        }
        let path = datasets::tabular_file(&root, &name)?;
        let table = radar::data::read_table(&path, Some("label"))?;
        let report =
            radar::cmd::eval::evaluate(&name, &table, &IsolationForestParams::default(), &seeds)?;
        let difference = report.roc_auc.mean - base.auc_mean;
        rows.push(Row {
            dataset: name,
            rows: report.rows,
            radar_auc_mean: report.roc_auc.mean,
            radar_auc_std: report.roc_auc.std,
            sklearn_auc_mean: base.auc_mean,
            sklearn_auc_std: base.auc_std,
            difference,
            within_tolerance: difference >= -args.tolerance,
        });
    }
    eprintln!(
        "{:<12} {:>8} {:>18} {:>18} {:>9}",
        "dataset", "rows", "radar AUC", "sklearn AUC", "diff"
    );
    for r in &rows {
        eprintln!(
            "{:<12} {:>8} {:>9.4} ± {:.4} {:>9.4} ± {:.4} {:>+9.4}{}",
            r.dataset,
            r.rows,
            r.radar_auc_mean,
            r.radar_auc_std,
            r.sklearn_auc_mean,
            r.sklearn_auc_std,
            r.difference,
            if r.within_tolerance { "" } else { "  below" }
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "benchmark": "iforest-parity",
            "seeds": seeds,
            "tolerance": args.tolerance,
            "rows": rows,
        }))?
    );
    let short: Vec<&str> = rows
        .iter()
        .filter(|r| !r.within_tolerance)
        .map(|r| r.dataset.as_str())
        .collect();
    if args.check && !short.is_empty() {
        bail!(
            "below scikit-learn − {} on: {}",
            args.tolerance,
            short.join(", ")
        );
    }
    Ok(())
}
