//! Radar's boosted trees against LightGBM and XGBoost (PyPI), in the same
//! run: `radar generate`'s default stream and its team labels, the
//! supervised part's inputs (the declared features and the Isolation
//! Forest's score) written once for all three, each trained on the labels
//! known when training ended and judged against the events' truth. Figures:
//! average precision, fit time (one thread), single-event latency (radar:
//! the whole hybrid, forest and trees; the peers: the trees alone).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use radar_core::synth::transactions::TransactionSpec;
use radar_detect::{Detector, Gbdt, IsolationForestParams, metrics};
use radar_pipeline::evaluate::{self, Labels, SupervisedSpec};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stream declaration (default: examples/transactions.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 2000)]
    single_row_calls: usize,
}

fn csv(
    path: &std::path::Path,
    m: &radar_core::Matrix,
    scores: &[f64],
    label: (&str, &[bool]),
) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let cols: Vec<String> = (0..m.cols()).map(|c| format!("f{c}")).collect();
    writeln!(f, "{},score,{}", cols.join(","), label.0)?;
    for (i, (score, positive)) in scores.iter().zip(label.1).enumerate() {
        for v in m.row(i) {
            write!(f, "{v},")?;
        }
        writeln!(f, "{score},{}", *positive as u8)?;
    }
    f.flush()?;
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, labels) = (dir.path().join("tx.jsonl"), dir.path().join("labels.jsonl"));
    let spec = TransactionSpec {
        seed: args.seed,
        ..TransactionSpec::default()
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&data)?);
    let label_file: Box<dyn Write> = Box::new(std::fs::File::create(&labels)?);
    radar_pipeline::demo::write_transactions(spec, None, None, &mut out, Some(label_file))?;
    out.flush()?;
    let config = args.config.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/transactions.toml")
    });
    let schema = radar_pipeline::events::load_schema(&config, None)?;
    let gbdt = radar_pipeline::train::default_gbdt();
    let spec = SupervisedSpec {
        truth: Labels::named(&schema, "label", "label_kind")?,
        schema,
        iforest: IsolationForestParams {
            max_samples: radar_detect::MaxSamples::Count(2048),
            contamination: radar_detect::Contamination::Fraction(0.01),
            random_state: Some(0),
            ..Default::default()
        },
        gbdt: gbdt.clone(),
        budget_per_thousand: 10.0,
        train_fraction: 0.7,
        min_history: 5,
        threshold_fraction: 0.15,
    };
    let p = evaluate::prepare_supervised(&data, &labels, &spec)?;
    let (learn_csv, test_csv) = (dir.path().join("learn.csv"), dir.path().join("test.csv"));
    csv(
        &learn_csv,
        &p.learn,
        &p.learn_scores,
        ("label", &p.learn_labels),
    )?;
    csv(&test_csv, &p.test, &p.test_scores, ("truth", &p.truth))?;

    // radar, on one thread like the peers.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut with = radar_core::Matrix::with_columns(p.learn.cols() + 1)?;
    for i in 0..p.learn.rows() {
        let mut row = p.learn.row(i).to_vec();
        row.push(p.learn_scores[i]);
        with.push_row(&row)?;
    }
    let t0 = Instant::now();
    let model = pool.install(|| Gbdt::fit(&gbdt, with.view(), &p.learn_labels))?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let mut row = Vec::new();
    let test_p: Vec<f64> = (0..p.test.rows())
        .map(|i| {
            row.clear();
            row.extend_from_slice(p.test.row(i));
            row.push(p.test_scores[i]);
            model.predict_proba(&row)
        })
        .collect::<std::result::Result<_, _>>()?;
    let ap = metrics::average_precision(&test_p, &p.truth)?;
    let mut times = Vec::with_capacity(args.single_row_calls);
    for i in 0..args.single_row_calls {
        let r = p.test.row(i % p.test.rows());
        let t = Instant::now();
        let u = p.forest.score_row(r)?;
        row.clear();
        row.extend_from_slice(r);
        row.push(u);
        std::hint::black_box(model.score_row(&row)?);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let hybrid_us = times[times.len() / 2];

    let python = crate::peer::python()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/gbdt_peers.py");
    let peer = std::process::Command::new(&python)
        .arg(&script)
        .args(["--learn", learn_csv.to_str().context("path")?])
        .args(["--test", test_csv.to_str().context("path")?])
        .args(["--trees", &gbdt.n_trees.to_string()])
        .args(["--learning-rate", &gbdt.learning_rate.to_string()])
        .args(["--depth", &gbdt.max_depth.to_string()])
        .args([
            "--pos-weight",
            &gbdt.scale_pos_weight.unwrap_or(5.0).to_string(),
        ])
        .args(["--single-row-calls", &args.single_row_calls.to_string()])
        .output()?;
    if !peer.status.success() {
        bail!("the peer failed: {}", String::from_utf8_lossy(&peer.stderr));
    }
    let peers: serde_json::Value = serde_json::from_slice(&peer.stdout)?;
    let result = json!({
        "data": {"events": p.events, "learn_rows": p.learn.rows(), "test_rows": p.test.rows(),
                 "labelled_fraud_known": p.learn_labels.iter().filter(|&&l| l).count(),
                 "test_frauds": p.truth.iter().filter(|&&l| l).count(), "inputs": p.learn.cols() + 1},
        "params": {"trees": gbdt.n_trees, "learning_rate": gbdt.learning_rate, "max_depth": gbdt.max_depth,
                   "scale_pos_weight": gbdt.scale_pos_weight, "min_samples_leaf": gbdt.min_samples_leaf},
        "radar": {"average_precision": ap, "fit_seconds": fit_seconds, "hybrid_single_event_us": hybrid_us},
        "forest_only_average_precision": metrics::average_precision(&p.test_scores, &p.truth)?,
        "lightgbm": peers["lightgbm"],
        "xgboost": peers["xgboost"],
    });
    eprintln!(
        "average precision: radar {:.4}, LightGBM {:.4}, XGBoost {:.4} (forest alone {:.4})",
        ap,
        peers["lightgbm"]["average_precision"]
            .as_f64()
            .unwrap_or(f64::NAN),
        peers["xgboost"]["average_precision"]
            .as_f64()
            .unwrap_or(f64::NAN),
        result["forest_only_average_precision"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    eprintln!(
        "fit (1 thread): radar {:.2} s, LightGBM {:.2} s, XGBoost {:.2} s; single event: radar hybrid {:.1} µs, LightGBM {:.0} µs, XGBoost {:.0} µs",
        fit_seconds,
        peers["lightgbm"]["fit_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN),
        peers["xgboost"]["fit_seconds"].as_f64().unwrap_or(f64::NAN),
        hybrid_us,
        peers["lightgbm"]["single_row_us"]
            .as_f64()
            .unwrap_or(f64::NAN),
        peers["xgboost"]["single_row_us"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
