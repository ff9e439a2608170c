//! Extended Isolation Forest against isotree's (extended mode, Hariri et
//! al.'s model) on the ODDS tables: ROC-AUC averaged over seeds and the
//! best fit + score time, both fitted on every row and scoring the same
//! rows, peer run in the same invocation.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use radar_detect::{Detector, EifParams, ExtendedIsolationForest, metrics};
use serde::{Deserialize, Serialize};

use crate::{datasets, peer};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// Seeds per table (both sides).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
}

#[derive(Debug, Deserialize)]
struct Peer {
    isotree: String,
    seconds: f64,
    roc_auc: f64,
}

#[derive(Debug, Serialize)]
struct Row {
    dataset: String,
    rows: usize,
    radar_roc_auc: f64,
    isotree_roc_auc: f64,
    auc_difference: f64,
    radar_seconds: f64,
    isotree_seconds: f64,
    speedup: f64,
}

pub fn run(args: Args) -> Result<()> {
    let root = datasets::locate(args.datasets.as_deref())?;
    let mut rows = Vec::new();
    let mut version = String::new();
    for name in datasets::tabular_names(&root)? {
        let path = datasets::tabular_file(&root, &name)?;
        let table = radar_pipeline::data::read_table(&path, Some("label"))?;
        let labels = table.labels.clone().context("the table has no labels")?;
        let out = peer::run_python(
            "isotree_eif.py",
            &[
                "--data",
                &path.display().to_string(),
                "--seeds",
                &args.seeds.to_string(),
            ],
        )?;
        let theirs: Peer = serde_json::from_slice(&out).context("reading isotree's output")?;
        version = theirs.isotree.clone();
        let (mut best, mut aucs) = (f64::INFINITY, Vec::new());
        for seed in 0..args.seeds.max(1) {
            let params = EifParams {
                seed,
                ..EifParams::default()
            };
            let t0 = Instant::now();
            let forest = ExtendedIsolationForest::fit(&params, table.features.view())?;
            let scores = forest.score_batch(table.features.view())?;
            best = best.min(t0.elapsed().as_secs_f64());
            aucs.push(metrics::roc_auc(&scores, &labels)?);
        }
        let auc = aucs.iter().sum::<f64>() / aucs.len() as f64;
        rows.push(Row {
            dataset: name.clone(),
            rows: table.features.rows(),
            radar_roc_auc: auc,
            isotree_roc_auc: theirs.roc_auc,
            auc_difference: auc - theirs.roc_auc,
            radar_seconds: best,
            isotree_seconds: theirs.seconds,
            speedup: theirs.seconds / best,
        });
    }
    let n = rows.len().max(1) as f64;
    let doc = serde_json::json!({
        "benchmark": "extended_isolation_forest",
        "peer": format!("isotree {version}, ndim = all features, coefs normal, nthreads=1"),
        "rayon_threads": rayon::current_num_threads(),
        "mean_radar_roc_auc": rows.iter().map(|r| r.radar_roc_auc).sum::<f64>() / n,
        "mean_isotree_roc_auc": rows.iter().map(|r| r.isotree_roc_auc).sum::<f64>() / n,
        "worst_auc_difference": rows.iter().map(|r| r.auc_difference).fold(f64::INFINITY, f64::min),
        "speedup_geomean": (rows.iter().map(|r| r.speedup.ln()).sum::<f64>() / n).exp(),
        "rows": rows,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
