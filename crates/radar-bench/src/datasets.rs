//! Finding the benchmark data sets (../shared/datasets on this project's
//! machines) and their published baselines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// `--datasets DIR`, else `$RADAR_DATASETS`, else `shared/datasets` in the
/// current directory or any of its ancestors' parents.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Ok(dir) = std::env::var("RADAR_DATASETS") {
        return Ok(PathBuf::from(dir));
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        for candidate in [dir.join("shared/datasets"), dir.join("../shared/datasets")] {
            if candidate.join("tabular").is_dir() {
                return Ok(candidate);
            }
        }
    }
    bail!("benchmark data sets not found: pass --datasets DIR or set RADAR_DATASETS")
}

/// The tabular file of a data set (`NAME.csv` or `NAME.csv.gz`).
pub fn tabular_file(root: &Path, name: &str) -> Result<PathBuf> {
    for ext in ["csv", "csv.gz"] {
        let p = root.join("tabular").join(format!("{name}.{ext}"));
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "data set `{name}` not found under {}",
        root.join("tabular").display()
    )
}

/// Names of all tabular data sets, sorted.
pub fn tabular_names(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("tabular"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_suffix(".csv.gz")
            .or_else(|| name.strip_suffix(".csv"))
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// scikit-learn's published figures for one data set (BASELINES.md).
#[derive(Debug, Clone)]
pub struct Baseline {
    pub rows: usize,
    pub auc_mean: f64,
    pub auc_std: f64,
}

/// Parses the public table of BASELINES.md.
pub fn baselines(root: &Path) -> Result<BTreeMap<String, Baseline>> {
    let path = root.join("BASELINES.md");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | dataset | rows | dims | anom % | IF ROC-AUC (mean ± std) | ...
        if cells.len() < 7 || cells[2].parse::<usize>().is_err() {
            continue;
        }
        let name = cells[1].trim_end_matches(['†', ' ']).to_owned();
        let Some((mean, std)) = cells[5].split_once('±') else {
            continue;
        };
        let rows: usize = cells[2].parse()?;
        out.entry(name).or_insert(Baseline {
            rows,
            auc_mean: mean.trim().parse()?,
            auc_std: std.trim().parse()?,
        });
    }
    if out.is_empty() {
        bail!("no baseline rows found in {}", path.display());
    }
    Ok(out)
}
