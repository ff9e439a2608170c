//! `radar eval`: a detector on a labelled table (`--data`), on a stream's
//! declared features over an event file (`--config --data`), or over the
//! Numenta Anomaly Benchmark (`eval nab`). The harnesses are
//! `radar_pipeline::evaluate` and `radar_pipeline::nab`.

use anyhow::{Context, Result, bail};
use radar_core::synth::{self, TabularSpec};
use radar_detect::IsolationForestParams;
use radar_pipeline::evaluate::{self, Labels, StreamSpec, SupervisedSpec};
use radar_pipeline::{data, params};

use super::args::{EvalArgs, EvalBenchmark};
use super::render;

/// The forest of a labelled table: scikit-learn's defaults where no flag
/// is given.
pub fn params_from(args: &EvalArgs) -> Result<IsolationForestParams> {
    let d = IsolationForestParams::default();
    let p = IsolationForestParams {
        n_estimators: args.n_estimators.unwrap_or(d.n_estimators),
        max_samples: match &args.max_samples {
            Some(m) => params::max_samples(m).context("--max-samples")?,
            None => d.max_samples,
        },
        max_features: match &args.max_features {
            Some(f) => params::max_features(f).context("--max-features")?,
            None => d.max_features,
        },
        bootstrap: args.bootstrap,
        contamination: match &args.contamination {
            Some(c) => params::contamination(c).context("--contamination")?,
            None => d.contamination,
        },
        random_state: None,
    };
    p.validate()?;
    Ok(p)
}

fn forest_overrides(args: &EvalArgs) -> params::ForestOverrides {
    params::ForestOverrides {
        n_estimators: args.n_estimators,
        max_samples: args.max_samples.clone(),
        max_features: args.max_features.clone(),
        contamination: args.contamination.clone(),
        bootstrap: args.bootstrap,
    }
}

pub fn run(mut args: EvalArgs) -> Result<()> {
    if let Some(EvalBenchmark::Nab(nab)) = args.benchmark.take() {
        return super::eval_nab::run(nab);
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let params = params_from(&args)?;
    let seeds: Vec<u64> = (0..args.seeds).collect();
    if let Some(config) = &args.config {
        let data = args
            .data
            .as_ref()
            .context("--data is required with --config")?;
        let schema = radar_pipeline::events::load_schema(config, args.stream.as_deref())?;
        if let Some(labels) = &args.labels {
            let spec = SupervisedSpec {
                truth: Labels::named(&schema, &args.label, &args.kind_label)?,
                schema,
                iforest: IsolationForestParams {
                    random_state: Some(0),
                    ..params
                },
                gbdt: radar_detect::GbdtParams {
                    n_trees: args.gbdt_trees,
                    learning_rate: args.gbdt_learning_rate,
                    max_depth: args.gbdt_depth,
                    scale_pos_weight: Some(args.gbdt_pos_weight),
                    ..radar_detect::GbdtParams::default()
                },
                budget_per_thousand: args.alert_budget,
                train_fraction: args.train_fraction,
                min_history: args.min_history.unwrap_or(0),
                threshold_fraction: 0.15,
            };
            let report = evaluate::supervised(data, labels, &spec)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render::supervised(&report));
            }
            return Ok(());
        }
        let labels = Labels::named(&schema, &args.label, &args.kind_label)?;
        let mut spec = StreamSpec::for_stream(&schema, labels, args.seeds);
        forest_overrides(&args).apply(&mut spec.detector)?;
        spec.train_fraction = args.train_fraction;
        if let Some(m) = args.min_history {
            spec.min_history = m;
        }
        let report = evaluate::stream(data, &spec)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render::stream(&report));
        }
        return Ok(());
    }
    let (name, table) = match &args.data {
        Some(path) => (
            path.display().to_string(),
            data::read_table(path, Some(&args.label))?,
        ),
        None => {
            let spec = TabularSpec::default();
            let name = format!(
                "synthetic ({} rows, {} features, {}% anomalies, seed {})",
                spec.rows,
                spec.features,
                spec.anomaly_rate * 100.0,
                spec.seed
            );
            (name, synth::tabular(&spec))
        }
    };
    let report = evaluate::table(&name, &table, &params, &seeds)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::table(&report));
    }
    Ok(())
}
