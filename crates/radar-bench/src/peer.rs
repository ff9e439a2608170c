//! Running scikit-learn in a Python virtual environment, created on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

const REQUIREMENTS: &[&str] = &[
    "scikit-learn==1.9.1",
    "pandas",
    "river==0.26.1",
    "krcf==0.4.0",
    "lightgbm",
    "xgboost",
    "pyod==3.6.7",
    "isotree==0.6.1.post10",
];

/// `$RADAR_PYTHON`, else a venv under ~/.cache/radar/venv (created and filled
/// with scikit-learn when missing).
pub fn python() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("RADAR_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var("HOME").context("HOME is not set")?;
    let venv = Path::new(&home).join(".cache/radar/venv");
    let py = venv.join("bin/python");
    let ready = py.is_file()
        && Command::new(&py)
            .args([
                "-c",
                "import sklearn, pandas, river, krcf, lightgbm, xgboost, pyod, isotree",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        eprintln!(
            "setting up {} with {}",
            venv.display(),
            REQUIREMENTS.join(" ")
        );
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q"])
                .args(REQUIREMENTS)
                .status()?
                .success();
        if !ok {
            bail!("could not set up the Python peer in {}", venv.display());
        }
    }
    Ok(py)
}

/// Runs `bench/<script>` with the peer's Python; its standard output.
pub fn run_python(script: &str, args: &[&str]) -> Result<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench")
        .join(script);
    let out = Command::new(python()?)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct SklearnRun {
    pub sklearn: String,
    pub rows: usize,
    pub fit_seconds_mean: f64,
    pub batch_rows_per_second_mean: f64,
    pub single_row_us_median: f64,
    pub roc_auc_mean: f64,
    pub roc_auc_std: f64,
}

pub fn sklearn_iforest(data: &Path, seeds: usize) -> Result<SklearnRun> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/sklearn_iforest.py");
    let out = Command::new(python()?)
        .arg(&script)
        .arg("--data")
        .arg(data)
        .arg("--seeds")
        .arg(seeds.to_string())
        .output()
        .context("running the scikit-learn peer")?;
    if !out.status.success() {
        bail!(
            "scikit-learn peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("reading the scikit-learn peer's output")
}
