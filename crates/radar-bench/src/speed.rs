//! Isolation Forest speed: radar against scikit-learn, same data, same run.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use radar_core::Rng;
use radar_detect::{IsolationForest, IsolationForestParams};
use serde::Serialize;

use crate::{datasets, peer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data sets (names under tabular/), comma-separated.
    #[arg(long, default_value = "http,cover", value_delimiter = ',')]
    sets: Vec<String>,
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// Seeds for fit timing (and the peer's).
    #[arg(long, default_value_t = 5)]
    seeds: usize,
    /// Measure radar only.
    #[arg(long)]
    no_peer: bool,
}

#[derive(Debug, Serialize)]
struct Figure {
    dataset: String,
    figure: &'static str,
    unit: &'static str,
    radar: f64,
    peer: Option<f64>,
    /// How many times better radar is (higher is better for radar).
    ratio: Option<f64>,
    target_ratio: Option<f64>,
    met: Option<bool>,
}

struct RadarRun {
    fit_1t: f64,
    fit_all: f64,
    batch_1t: f64,
    batch_all: f64,
    single_us_median: f64,
    single_us_p99: f64,
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn measure(x: radar_core::MatrixView<'_>, seeds: usize, threads: usize) -> Result<(f64, f64)> {
    pool(threads)?.install(|| {
        let mut fits = Vec::new();
        let mut model = None;
        for seed in 0..seeds as u64 {
            let p = IsolationForestParams {
                random_state: Some(seed),
                ..Default::default()
            };
            let t0 = Instant::now();
            let m = IsolationForest::fit(&p, x)?;
            fits.push(t0.elapsed().as_secs_f64());
            model.get_or_insert(m);
        }
        let model = model.expect("seeds >= 1");
        let mut out = vec![0.0; x.rows()];
        model.score_into(x, &mut out)?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t0 = Instant::now();
            model.score_into(x, &mut out)?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        black_box(&out);
        Ok((mean(&fits), x.rows() as f64 / best))
    })
}

fn single_row(x: radar_core::MatrixView<'_>) -> Result<(f64, f64)> {
    let p = IsolationForestParams {
        random_state: Some(0),
        ..Default::default()
    };
    let model = IsolationForest::fit(&p, x)?;
    let mut rng = Rng::seed_from_u64(0);
    let mut lat = Vec::with_capacity(10_000);
    black_box(model.score_row(x.row(0))?);
    for _ in 0..10_000 {
        let row = x.row(rng.below(x.rows() as u64) as usize);
        let t0 = Instant::now();
        black_box(model.score_row(black_box(row))?);
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    Ok((lat[lat.len() / 2], lat[lat.len() * 99 / 100]))
}

pub fn run(args: Args) -> Result<()> {
    let root = datasets::locate(args.datasets.as_deref())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut figures = Vec::new();
    for name in &args.sets {
        let path = datasets::tabular_file(&root, name)?;
        let table = radar_pipeline::data::read_table(&path, Some("label"))?;
        let x = table.features.view();
        eprintln!("{name}: {} rows × {} features", x.rows(), x.cols());
        let (fit_1t, batch_1t) = measure(x, args.seeds, 1)?;
        let (fit_all, batch_all) = measure(x, args.seeds, threads)?;
        let (single_us_median, single_us_p99) = single_row(x)?;
        let r = RadarRun {
            fit_1t,
            fit_all,
            batch_1t,
            batch_all,
            single_us_median,
            single_us_p99,
        };
        let sk = if args.no_peer {
            None
        } else {
            eprintln!("{name}: running scikit-learn");
            Some(peer::sklearn_iforest(&path, args.seeds)?)
        };
        let fig = |figure,
                   unit,
                   radar: f64,
                   peer: Option<f64>,
                   higher_better: bool,
                   target: Option<f64>| {
            let ratio = peer.map(|p| if higher_better { radar / p } else { p / radar });
            Figure {
                dataset: name.clone(),
                figure,
                unit,
                radar,
                peer,
                ratio,
                target_ratio: target,
                met: ratio.zip(target).map(|(r, t)| r >= t),
            }
        };
        let sk_fit = sk.as_ref().map(|s| s.fit_seconds_mean);
        let sk_batch = sk.as_ref().map(|s| s.batch_rows_per_second_mean);
        let sk_single = sk.as_ref().map(|s| s.single_row_us_median);
        figures.push(fig(
            "fit_100_trees_1_thread",
            "s",
            r.fit_1t,
            sk_fit,
            false,
            Some(100.0),
        ));
        figures.push(fig(
            "fit_100_trees_all_threads",
            "s",
            r.fit_all,
            sk_fit,
            false,
            None,
        ));
        figures.push(fig(
            "batch_score_1_thread",
            "rows/s",
            r.batch_1t,
            sk_batch,
            true,
            Some(10.0),
        ));
        figures.push(fig(
            "batch_score_all_threads",
            "rows/s",
            r.batch_all,
            sk_batch,
            true,
            None,
        ));
        figures.push(Figure {
            dataset: name.clone(),
            figure: "batch_score_thread_scaling",
            unit: "x",
            radar: r.batch_all / r.batch_1t,
            peer: None,
            ratio: None,
            target_ratio: None,
            met: None,
        });
        figures.push(fig(
            "single_row_latency_median",
            "us",
            r.single_us_median,
            sk_single,
            false,
            Some(1000.0),
        ));
        figures.push(fig(
            "single_row_latency_p99",
            "us",
            r.single_us_p99,
            None,
            false,
            None,
        ));
    }
    eprintln!(
        "\n{:<8} {:<28} {:>14} {:>14} {:>10} {:>8}",
        "dataset", "figure", "radar", "scikit-learn", "ratio", "target"
    );
    for f in &figures {
        eprintln!(
            "{:<8} {:<28} {:>14} {:>14} {:>10} {:>8}",
            f.dataset,
            f.figure,
            format!("{:.6}", f.radar),
            f.peer.map_or("-".into(), |p| format!("{p:.6}")),
            f.ratio.map_or("-".into(), |r| format!("{r:.1}x")),
            f.target_ratio.map_or("-".into(), |t| format!("{t}x")),
        );
    }
    let doc = serde_json::json!({
        "benchmark": "iforest-speed",
        "threads": threads,
        "cpu": cpu_model(),
        "figures": figures,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    /// `fit`, `score` or `row`.
    #[arg(long)]
    what: String,
    #[arg(long, default_value = "cover")]
    set: String,
    #[arg(long)]
    datasets: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    repeat: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn run_loop(args: LoopArgs) -> Result<()> {
    let root = datasets::locate(args.datasets.as_deref())?;
    let table = radar_pipeline::data::read_table(
        &datasets::tabular_file(&root, &args.set)?,
        Some("label"),
    )?;
    let x = table.features.view();
    pool(args.threads)?.install(|| {
        let p = IsolationForestParams {
            random_state: Some(0),
            ..Default::default()
        };
        let model = IsolationForest::fit(&p, x)?;
        let t0 = Instant::now();
        match args.what.as_str() {
            "fit" => {
                for seed in 0..args.repeat as u64 {
                    let p = IsolationForestParams {
                        random_state: Some(seed),
                        ..Default::default()
                    };
                    black_box(IsolationForest::fit(&p, x)?);
                }
            }
            "score" => {
                let mut out = vec![0.0; x.rows()];
                for _ in 0..args.repeat {
                    model.score_into(x, &mut out)?;
                }
                black_box(&out);
            }
            "row" => {
                for i in 0..args.repeat {
                    black_box(model.score_row(x.row(i % x.rows()))?);
                }
            }
            other => anyhow::bail!("--what must be fit, score or row, not `{other}`"),
        }
        let per = t0.elapsed().as_secs_f64() / args.repeat as f64;
        eprintln!("{}: {:.3} µs per call", args.what, per * 1e6);
        Ok(())
    })
}
