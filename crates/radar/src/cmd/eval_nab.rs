//! `radar eval nab`: detectors over the Numenta Anomaly Benchmark, scored
//! with radar's implementation of NAB's scoring.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use radar_detect::nab::NabScore;
use radar_pipeline::nab::{self, NabDetector};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct NabArgs {
    /// NAB's `data` folder (`<category>/<file>.csv`, `timestamp,value`).
    #[arg(long)]
    pub data: PathBuf,
    /// NAB's windows file (`labels/combined_windows.json`); its keys name
    /// the series to run.
    #[arg(long)]
    pub labels: PathBuf,
    /// Detectors to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "rcf,hst,iforest", value_parser = |s: &str| s.parse::<NabDetector>().map_err(|e| e.to_string()))]
    pub detector: Vec<NabDetector>,
    /// A stream declaration for the series (default: the built-in metric
    /// declaration: value, its 7 previous values, its z-score).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write NAB's results layout here (one CSV per detector and series:
    /// timestamp,value,anomaly_score,label).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out: write each detector's raw scores in the anomaly_score
    /// column instead of NAB anomaly scores (to study post-processing).
    #[arg(long, requires = "out")]
    pub raw_scores: bool,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct DetectorResult {
    detector: &'static str,
    series: usize,
    rows: usize,
    seconds: f64,
    profiles: Vec<ProfileResult>,
}

#[derive(Debug, Serialize)]
struct ProfileResult {
    profile: &'static str,
    score: f64,
    threshold: f64,
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
}

impl From<&NabScore> for ProfileResult {
    fn from(s: &NabScore) -> Self {
        ProfileResult {
            profile: s.profile,
            score: s.normalized,
            threshold: s.threshold,
            true_positives: s.true_positives,
            false_positives: s.false_positives,
            false_negatives: s.false_negatives,
        }
    }
}

pub fn run(args: NabArgs) -> Result<()> {
    let schema = match &args.config {
        Some(path) => radar_pipeline::events::load_schema(path, None)?,
        None => nab::builtin_schema()?,
    };
    let corpus = nab::load_corpus(&args.data, &args.labels, &schema)?;
    let rows: usize = corpus.iter().map(|s| s.values.len()).sum();
    let late: usize = corpus.iter().map(|s| s.late).sum();
    eprintln!("{} series, {rows} rows", corpus.len());
    if late > 0 {
        eprintln!(
            "rows whose time stepped back: {late}; each was processed at its series' latest time (the streaming rule)"
        );
    }
    let mut results = Vec::new();
    for &detector in &args.detector {
        let start = Instant::now();
        let mut scores = Vec::with_capacity(corpus.len());
        let mut raws = Vec::with_capacity(corpus.len());
        for series in &corpus {
            let raw = nab::raw_scores(detector, series, args.seed)
                .with_context(|| format!("{} on `{}`", detector.name(), series.name))?;
            scores.push(nab::anomaly_scores(&raw));
            raws.push(raw);
        }
        let seconds = start.elapsed().as_secs_f64();
        if let Some(out) = &args.out {
            let written = if args.raw_scores { &raws } else { &scores };
            for (series, s) in corpus.iter().zip(written) {
                nab::write_results(out, detector.name(), series, s)?;
            }
        }
        let profiles = nab::score_corpus(&corpus, &scores);
        results.push(DetectorResult {
            detector: detector.name(),
            series: corpus.len(),
            rows,
            seconds,
            profiles: profiles.iter().map(ProfileResult::from).collect(),
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!(
        "{:<9} {:>9} {:>9} {:>9}   {:>14}   {:>8}",
        "detector", "standard", "low FP", "low FN", "TP/FP/FN (std)", "seconds"
    );
    for r in &results {
        let p = &r.profiles;
        println!(
            "{:<9} {:>9.1} {:>9.1} {:>9.1}   {:>14}   {:>8.1}",
            r.detector,
            p[0].score,
            p[1].score,
            p[2].score,
            format!(
                "{}/{}/{}",
                p[0].true_positives, p[0].false_positives, p[0].false_negatives
            ),
            r.seconds
        );
    }
    Ok(())
}
