//! Online detectors against their peers, same data, same order, same run:
//! - Half-Space Trees against River's on the tabular sets (ROC-AUC and
//!   rows/s, score then learn per row);
//! - Random Cut Forest against AWS's (PyPI `krcf`) on the NAB series
//!   (score + update throughput, and both detectors' scores through
//!   radar's NAB scorer with the same normalisation).
//!
//! Also reports memory per tree and per detector at the defaults.

use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Context, Result, bail};
use radar_detect::metrics::roc_auc;
use radar_detect::{HalfSpaceTrees, HstParams, RandomCutForest, RcfParams};
use radar_pipeline::nab;
use serde::{Deserialize, Serialize};

use crate::{datasets, peer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tabular data sets for Half-Space Trees (default: all).
    #[arg(long, value_delimiter = ',')]
    sets: Vec<String>,
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// Skip River for sets with more rows than this (its figure is then
    /// missing, not guessed); River runs ~1,000 rows/s.
    #[arg(long)]
    river_max_rows: Option<usize>,
    /// Measure radar only.
    #[arg(long)]
    no_peer: bool,
    /// Half-Space Trees seeds 0..N-1 for radar and River; ROC-AUC is their
    /// mean (one seed's AUC varies by a few hundredths on small sets).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Only the HST part or only the RCF part.
    #[arg(long, value_parser = ["hst", "rcf"])]
    only: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RiverRun {
    rows: usize,
    river: Option<String>,
    roc_auc: Option<f64>,
    roc_aucs: Option<Vec<f64>>,
    rows_per_second: Option<f64>,
    build_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct HstFigure {
    dataset: String,
    rows: usize,
    dims: usize,
    seeds: u64,
    radar_roc_auc: f64,
    radar_roc_aucs: Vec<f64>,
    river_roc_auc: Option<f64>,
    river_roc_aucs: Option<Vec<f64>>,
    auc_met: Option<bool>,
    radar_rows_per_second: f64,
    river_rows_per_second: Option<f64>,
    river_build_seconds: Option<f64>,
    radar_nodes_per_tree: f64,
    radar_bytes: usize,
}

#[derive(Debug, Deserialize, Serialize)]
struct KrcfRun {
    krcf: String,
    rows: usize,
    seconds: f64,
    rows_per_second: f64,
}

#[derive(Debug, Serialize)]
struct RcfReport {
    series: usize,
    rows: usize,
    radar_rows_per_second: f64,
    peer: Option<KrcfRun>,
    speedup: Option<f64>,
    /// NAB (standard, low FP, low FN) of radar's scores and of the peer's,
    /// both through `radar_pipeline::nab::anomaly_scores` and radar's scorer.
    radar_nab: [f64; 3],
    peer_nab: Option<[f64; 3]>,
    radar_bytes_per_detector: usize,
    radar_bytes_per_tree: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    hst: Vec<HstFigure>,
    rcf: Option<RcfReport>,
}

pub fn run(args: Args) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let root = datasets::locate(args.datasets.as_deref())?;
    let hst = if args.only.as_deref() == Some("rcf") {
        Vec::new()
    } else {
        run_hst(&args, &root)?
    };
    let rcf = if args.only.as_deref() == Some("hst") {
        None
    } else {
        Some(run_rcf(&args, &root)?)
    };
    let report = Report {
        machine: format!(
            "{}, {} threads",
            crate::speed::cpu_model(),
            std::thread::available_parallelism().map_or(1, usize::from)
        ),
        hst,
        rcf,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn run_hst(args: &Args, root: &Path) -> Result<Vec<HstFigure>> {
    let names = if args.sets.is_empty() {
        datasets::tabular_names(root)?
    } else {
        args.sets.clone()
    };
    let tmp = tempfile::tempdir()?;
    let mut figures = Vec::new();
    for name in names {
        let path = datasets::tabular_file(root, &name)?;
        let table = radar_pipeline::data::read_table(&path, Some("label"))?;
        let labels = table.labels.context("no label column")?;
        let x = &table.features;
        let (n, d) = (x.rows(), x.cols());
        // The peer script writes the row order (numpy's permutation);
        // River itself runs after all of radar's measurements.
        let order_file = tmp.path().join(format!("{name}.order"));
        let order_args = [
            "--data",
            path.to_str().context("data path")?,
            "--order-out",
            order_file.to_str().context("temp path")?,
        ];
        let shape: RiverRun = serde_json::from_slice(&peer::run_python(
            "river_hst.py",
            &[&order_args[..], &["--skip-river"]].concat(),
        )?)?;
        if shape.rows != n {
            bail!("{name}: the peer read {} rows, radar {n}", shape.rows);
        }
        let order: Vec<usize> = std::fs::read_to_string(&order_file)?
            .lines()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        // Min-max scaling as the peer does it; a constant column becomes 0.
        let mut lo = vec![f64::INFINITY; d];
        let mut hi = vec![f64::NEG_INFINITY; d];
        for i in 0..n {
            for (k, &v) in x.row(i).iter().enumerate() {
                lo[k] = lo[k].min(v);
                hi[k] = hi[k].max(v);
            }
        }
        let mut rows = Vec::with_capacity(n * d);
        for &i in &order {
            for (k, &v) in x.row(i).iter().enumerate() {
                rows.push(if hi[k] > lo[k] {
                    (v - lo[k]) / (hi[k] - lo[k])
                } else {
                    0.0
                });
            }
        }
        // Per seed: best of 3 passes for the rate (scores are identical
        // each pass).
        let mut best = f64::INFINITY;
        let mut aucs = Vec::new();
        let mut model = None;
        let ordered_labels: Vec<bool> = order.iter().map(|&i| labels[i]).collect();
        for seed in 0..args.seeds {
            let params = HstParams {
                n_trees: 25,
                height: 15,
                window_size: 250,
                limits: Some(vec![(0.0, 1.0); d]),
                seed,
            };
            let mut scores = vec![0.0; n];
            for _ in 0..3 {
                let mut m = HalfSpaceTrees::new(params.clone(), d)?;
                let start = Instant::now();
                for (k, row) in rows.chunks_exact(d).enumerate() {
                    scores[k] = m.score_and_update(row)?;
                }
                best = best.min(start.elapsed().as_secs_f64());
                model = Some(m);
            }
            aucs.push(roc_auc(&scores, &ordered_labels)?);
        }
        let model = model.context("at least one seed")?;
        let auc = aucs.iter().sum::<f64>() / aucs.len() as f64;
        let nodes = model.node_counts();
        figures.push(HstFigure {
            dataset: name.clone(),
            rows: n,
            dims: d,
            seeds: args.seeds,
            radar_roc_auc: auc,
            radar_roc_aucs: aucs,
            river_roc_auc: None,
            river_roc_aucs: None,
            auc_met: None,
            radar_rows_per_second: n as f64 / best,
            river_rows_per_second: None,
            river_build_seconds: None,
            radar_nodes_per_tree: nodes.iter().sum::<usize>() as f64 / nodes.len() as f64,
            radar_bytes: model.heap_bytes(),
        });
        eprintln!(
            "hst {name:<11} rows {n:>7}  auc {auc:.4}  rows/s {:>10.0}",
            n as f64 / best
        );
    }
    for figure in &mut figures {
        let n = figure.rows;
        if args.no_peer || args.river_max_rows.is_some_and(|m| n > m) {
            continue;
        }
        let name = &figure.dataset;
        let path = datasets::tabular_file(root, name)?;
        let order_file = tmp.path().join(format!("{name}.order"));
        let seeds = args.seeds.to_string();
        let river: RiverRun = serde_json::from_slice(&peer::run_python(
            "river_hst.py",
            &[
                "--data",
                path.to_str().context("data path")?,
                "--order-out",
                order_file.to_str().context("temp path")?,
                "--seeds",
                &seeds,
            ],
        )?)?;
        figure.river_roc_auc = river.roc_auc;
        figure.river_roc_aucs = river.roc_aucs;
        figure.auc_met = river.roc_auc.map(|r| figure.radar_roc_auc >= r - 0.01);
        figure.river_rows_per_second = river.rows_per_second;
        figure.river_build_seconds = river.build_seconds;
        eprintln!(
            "river {name:<11} auc {:.4} (radar {:.4})  rows/s {:.0}  {}",
            river.roc_auc.unwrap_or(f64::NAN),
            figure.radar_roc_auc,
            river.rows_per_second.unwrap_or(f64::NAN),
            river.river.as_deref().unwrap_or("")
        );
    }
    Ok(figures)
}

fn run_rcf(args: &Args, root: &Path) -> Result<RcfReport> {
    let nab_root = root.join("nab");
    let schema = radar_pipeline::nab::builtin_schema()?;
    let corpus = nab::load_corpus(
        &nab_root.join("data"),
        &nab_root.join("labels/combined_windows.json"),
        &schema,
    )?;
    let rows: usize = corpus.iter().map(|s| s.values.len()).sum();
    let params = RcfParams {
        random_seed: 1,
        ..RcfParams::default()
    };
    // Best of 2 timed passes over the corpus.
    let mut best = f64::INFINITY;
    let mut raw: Vec<Vec<f64>> = Vec::new();
    let mut bytes = 0;
    for _ in 0..2 {
        raw.clear();
        let start = Instant::now();
        for s in &corpus {
            let mut forest = RandomCutForest::new(params.clone())?;
            let mut out = Vec::with_capacity(s.values.len());
            for &v in &s.values {
                out.push(forest.score_and_update(&[v])?);
            }
            bytes = bytes.max(forest.heap_bytes());
            raw.push(out);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let radar_scores: Vec<Vec<f64>> = raw.iter().map(|r| nab::anomaly_scores(r)).collect();
    let nab3 = |scores: &[Vec<f64>]| -> [f64; 3] {
        let p = nab::score_corpus(&corpus, scores);
        [p[0].normalized, p[1].normalized, p[2].normalized]
    };
    let radar_nab = nab3(&radar_scores);
    let (peer, peer_nab) = if args.no_peer {
        (None, None)
    } else {
        let tmp = tempfile::tempdir()?;
        let list = tmp.path().join("files.txt");
        let paths: Vec<String> = corpus
            .iter()
            .map(|s| nab_root.join("data").join(&s.name).display().to_string())
            .collect();
        std::fs::write(&list, paths.join("\n"))?;
        let out_dir = tmp.path().join("scores");
        std::fs::create_dir_all(&out_dir)?;
        let run: KrcfRun = serde_json::from_slice(&peer::run_python(
            "krcf_nab.py",
            &[
                "--files",
                &list.display().to_string(),
                "--out-dir",
                &out_dir.display().to_string(),
            ],
        )?)?;
        let mut peer_scores = Vec::with_capacity(corpus.len());
        for (k, s) in corpus.iter().enumerate() {
            let text = std::fs::read_to_string(out_dir.join(format!("{k}.txt")))?;
            let r: Vec<f64> = text.lines().map(str::parse).collect::<Result<_, _>>()?;
            if r.len() != s.values.len() {
                bail!(
                    "krcf scored {} of {} rows of {}",
                    r.len(),
                    s.values.len(),
                    s.name
                );
            }
            peer_scores.push(nab::anomaly_scores(&r));
        }
        (Some(run), Some(nab3(&peer_scores)))
    };
    let rate = rows as f64 / best;
    let report = RcfReport {
        series: corpus.len(),
        rows,
        radar_rows_per_second: rate,
        speedup: peer.as_ref().map(|p| rate / p.rows_per_second),
        peer,
        radar_nab,
        peer_nab,
        radar_bytes_per_detector: bytes,
        radar_bytes_per_tree: bytes as f64 / params.num_trees as f64,
    };
    eprintln!(
        "rcf NAB {} series {rows} rows: radar {rate:.0} rows/s, NAB {:.1}/{:.1}/{:.1}; peer {} rows/s, NAB {}",
        report.series,
        radar_nab[0],
        radar_nab[1],
        radar_nab[2],
        report
            .peer
            .as_ref()
            .map_or("-".into(), |p| format!("{:.0}", p.rows_per_second)),
        report.peer_nab.map_or("-".into(), |p| format!(
            "{:.1}/{:.1}/{:.1}",
            p[0], p[1], p[2]
        )),
    );
    Ok(report)
}
