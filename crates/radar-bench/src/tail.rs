//! Joint-tail detectors (ECOD, COPOD) against PyOD's on the ODDS tables:
//! ROC-AUC and fit + score time, fitted on every row and scoring the same
//! rows as PyOD's `decision_scores_`, peer run in the same invocation.

use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Context, Result};
use radar_detect::{JointTail, JointTailParams, TailRule, metrics};
use serde::{Deserialize, Serialize};

use crate::{datasets, peer};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// Best of this many fits (both sides).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[derive(Debug, Deserialize)]
struct PeerRun {
    seconds: f64,
    roc_auc: f64,
}

#[derive(Debug, Deserialize)]
struct Peer {
    pyod: String,
    ecod: PeerRun,
    copod: PeerRun,
}

#[derive(Debug, Serialize)]
struct Row {
    dataset: String,
    rows: usize,
    detector: &'static str,
    radar_roc_auc: f64,
    pyod_roc_auc: f64,
    auc_difference: f64,
    radar_seconds: f64,
    pyod_seconds: f64,
    speedup: f64,
}

fn pyod(data: &Path, repeats: usize) -> Result<Peer> {
    let out = peer::run_python(
        "pyod_tail.py",
        &[
            "--data",
            &data.display().to_string(),
            "--repeats",
            &repeats.to_string(),
        ],
    )?;
    serde_json::from_slice(&out).context("reading the PyOD peer's output")
}

pub fn run(args: Args) -> Result<()> {
    let root = datasets::locate(args.datasets.as_deref())?;
    let mut rows = Vec::new();
    let mut version = String::new();
    for name in datasets::tabular_names(&root)? {
        let path = datasets::tabular_file(&root, &name)?;
        let table = radar_pipeline::data::read_table(&path, Some("label"))?;
        let labels = table.labels.clone().context("the table has no labels")?;
        let peer = pyod(&path, args.repeats)?;
        version = peer.pyod.clone();
        for (rule, theirs) in [(TailRule::Ecod, &peer.ecod), (TailRule::Copod, &peer.copod)] {
            let params = JointTailParams {
                rule,
                ..JointTailParams::default()
            };
            let (mut best, mut scores) = (f64::INFINITY, Vec::new());
            for _ in 0..args.repeats.max(1) {
                let t0 = Instant::now();
                let d = JointTail::fit(&params, table.features.view())?;
                scores = d.score(table.features.view())?;
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let auc = metrics::roc_auc(&scores, &labels)?;
            rows.push(Row {
                dataset: name.clone(),
                rows: table.features.rows(),
                detector: rule.name(),
                radar_roc_auc: auc,
                pyod_roc_auc: theirs.roc_auc,
                auc_difference: auc - theirs.roc_auc,
                radar_seconds: best,
                pyod_seconds: theirs.seconds,
                speedup: theirs.seconds / best,
            });
        }
    }
    let geomean = |rule: &str| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.detector == rule)
            .map(|r| r.speedup.ln())
            .collect();
        (v.iter().sum::<f64>() / v.len().max(1) as f64).exp()
    };
    let worst = |rule: &str| {
        rows.iter()
            .filter(|r| r.detector == rule)
            .map(|r| r.auc_difference)
            .fold(f64::INFINITY, f64::min)
    };
    let doc = serde_json::json!({
        "benchmark": "joint_tail",
        "peer": format!("pyod {version}, n_jobs=1"),
        "rayon_threads": rayon::current_num_threads(),
        "ecod_speedup_geomean": geomean("ecod"),
        "copod_speedup_geomean": geomean("copod"),
        "ecod_worst_auc_difference": worst("ecod"),
        "copod_worst_auc_difference": worst("copod"),
        "rows": rows,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
