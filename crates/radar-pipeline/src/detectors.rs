//! From a declaration's detector section to a detector: the one place that
//! knows every kind.
//!
//! Adding a detector kind:
//! 1. its module in `radar-detect`, behind the `Detector` trait, with a
//!    model file `radar_detect::load` reads back (so bundles and
//!    checkpoints hold it);
//! 2. its options struct and variant in `radar_core::schema::DetectorKind`
//!    (with its option names in `DetectorKind::OPTIONS`);
//! 3. its arm in [`build`] below.
//!
//! Training, the registry, serving, online scoring and checkpoints then
//! take it as they take the others.

use radar_core::schema::{
    DetectorConfig, DetectorKind, ExtendedIsolationForestOptions, HalfSpaceTreesOptions,
    IsolationForestOptions, JointTailOptions, NumberOrAuto, RandomCutForestOptions, Serve,
};
use radar_detect::{
    Contamination, Detector, EifParams, ExtendedIsolationForest, HalfSpaceTrees, HstParams,
    IsolationForest, IsolationForestParams, JointTail, JointTailParams, MaxFeatures, MaxSamples,
    RandomCutForest, RankEnsemble, RcfParams, TailRule,
};

use crate::error::{PipelineError, Result};

/// A fresh (unfitted) detector of the declared kind over `columns`.
/// Isolation Forests are fitted by [`crate::train`] (they have no unfitted
/// state); asking for one here is an error naming that.
pub fn build(config: &DetectorConfig, columns: &[String]) -> Result<Box<dyn Detector>> {
    let seed = config.seed.unwrap_or(0);
    Ok(match &config.kind {
        DetectorKind::IsolationForest(_) => {
            return Err(PipelineError::input(
                "an Isolation Forest is fitted in batch (radar train) and served from the registry; \
                 it cannot learn online",
            ));
        }
        DetectorKind::HalfSpaceTrees(o) => Box::new(HalfSpaceTrees::new(
            hst_params(o, columns, seed),
            columns.len(),
        )?),
        DetectorKind::RandomCutForest(o) => {
            Box::new(RandomCutForest::new(rcf_params(o, columns.len(), seed))?)
        }
        DetectorKind::Ecod(o) => Box::new(JointTail::new(
            tail_params(o, TailRule::Ecod),
            columns.len(),
        )?),
        DetectorKind::Copod(o) => Box::new(JointTail::new(
            tail_params(o, TailRule::Copod),
            columns.len(),
        )?),
        DetectorKind::ExtendedIsolationForest(o) => Box::new(ExtendedIsolationForest::new(
            eif_params(o, seed)?,
            columns.len(),
        )?),
        DetectorKind::Ensemble(_) => {
            return Err(PipelineError::input(
                "an ensemble is fitted in batch (radar train) and served from the registry; \
                 it cannot learn online",
            ));
        }
    })
}

/// Fits a detector of the declared kind on `train` (batch kinds fit,
/// online kinds learn the rows in order).
pub fn fit(
    config: &DetectorConfig,
    columns: &[String],
    train: radar_core::MatrixView<'_>,
) -> Result<Box<dyn Detector>> {
    if let DetectorKind::IsolationForest(o) = &config.kind {
        let params = iforest_params(o, config.seed.unwrap_or(0))?;
        return Ok(Box::new(IsolationForest::fit(&params, train)?));
    }
    if let DetectorKind::Ensemble(o) = &config.kind {
        if o.members.is_empty() {
            return Err(PipelineError::input("ensemble: `members` lists none"));
        }
        let mut members = Vec::with_capacity(o.members.len());
        for (i, kind) in o.members.iter().enumerate() {
            if matches!(kind, DetectorKind::Ensemble(_)) || kind.default_serve() == Serve::Online {
                return Err(PipelineError::input(format!(
                    "ensemble: member {} is `{}`; members are batch detectors \
                     (isolation_forest, extended_isolation_forest, ecod, copod)",
                    i + 1,
                    kind.name()
                )));
            }
            let member = DetectorConfig {
                kind: kind.clone(),
                // Members differ in their randomness.
                seed: Some(config.seed.unwrap_or(0).wrapping_add(i as u64)),
                ..DetectorConfig::default()
            };
            members.push(fit(&member, columns, train)?);
        }
        let mut ensemble = RankEnsemble::new(members)?;
        ensemble.calibrate(train)?;
        return Ok(Box::new(ensemble));
    }
    let mut d = build(config, columns)?;
    d.fit(train)?;
    Ok(d)
}

/// Isolation Forest's parameters from its options (scikit-learn's
/// defaults where unset).
pub fn iforest_params(o: &IsolationForestOptions, seed: u64) -> Result<IsolationForestParams> {
    let d = IsolationForestParams::default();
    let max_samples = match &o.max_samples {
        None => d.max_samples,
        Some(NumberOrAuto::Text(t)) if t == "auto" => MaxSamples::Auto,
        Some(NumberOrAuto::Number(n)) if *n >= 1.0 && n.fract() == 0.0 => {
            MaxSamples::Count(*n as usize)
        }
        Some(NumberOrAuto::Number(f)) => MaxSamples::Fraction(*f),
        Some(NumberOrAuto::Text(t)) => {
            return Err(PipelineError::input(format!(
                "max_samples: expected `auto`, a row count or a fraction, got `{t}`"
            )));
        }
    };
    let contamination = contamination(&o.contamination)?;
    let max_features = match o.max_features {
        None => d.max_features,
        Some(n) if n >= 1.0 && n.fract() == 0.0 => MaxFeatures::Count(n as usize),
        Some(f) => MaxFeatures::Fraction(f),
    };
    let params = IsolationForestParams {
        n_estimators: o.n_estimators.unwrap_or(d.n_estimators),
        max_samples,
        max_features,
        bootstrap: o.bootstrap.unwrap_or(d.bootstrap),
        contamination,
        random_state: Some(seed),
    };
    params.validate()?;
    Ok(params)
}

/// `auto` (the default) or a fraction.
fn contamination(o: &Option<NumberOrAuto>) -> Result<Contamination> {
    Ok(match o {
        None => Contamination::Auto,
        Some(NumberOrAuto::Text(t)) if t == "auto" => Contamination::Auto,
        Some(NumberOrAuto::Number(f)) => Contamination::Fraction(*f),
        Some(NumberOrAuto::Text(t)) => {
            return Err(PipelineError::input(format!(
                "contamination: expected `auto` or a fraction in (0, 0.5], got `{t}`"
            )));
        }
    })
}

/// Extended Isolation Forest's parameters from its options (Hariri et
/// al.'s defaults where unset).
pub fn eif_params(o: &ExtendedIsolationForestOptions, seed: u64) -> Result<EifParams> {
    let d = EifParams::default();
    let params = EifParams {
        n_trees: o.n_trees.unwrap_or(d.n_trees),
        sample_size: o.sample_size.unwrap_or(d.sample_size),
        extension_level: o.extension_level,
        contamination: contamination(&o.contamination)?,
        seed,
    };
    params.validate()?;
    Ok(params)
}

fn hst_params(o: &HalfSpaceTreesOptions, columns: &[String], seed: u64) -> HstParams {
    let d = HstParams::default();
    HstParams {
        n_trees: o.n_trees.unwrap_or(d.n_trees),
        height: o.height.unwrap_or(d.height),
        window_size: o.window_size.unwrap_or(d.window_size),
        limits: o.limits.as_ref().map(|l| {
            columns
                .iter()
                .map(|c| l.get(c).map_or((0.0, 1.0), |[a, b]| (*a, *b)))
                .collect()
        }),
        seed,
    }
}

fn rcf_params(o: &RandomCutForestOptions, dimensions: usize, seed: u64) -> RcfParams {
    let d = RcfParams::default();
    let sample_size = o.sample_size.unwrap_or(d.sample_size);
    RcfParams {
        dimensions,
        // Declared features usually carry history already (lags); raise
        // this for a raw series.
        shingle_size: o.shingle_size.unwrap_or(1),
        num_trees: o.num_trees.unwrap_or(d.num_trees),
        sample_size,
        time_decay: o.time_decay,
        output_after: sample_size,
        random_seed: seed,
    }
}

fn tail_params(o: &JointTailOptions, rule: TailRule) -> JointTailParams {
    JointTailParams {
        rule,
        max_knots: o.max_knots.unwrap_or(JointTailParams::default().max_knots),
    }
}
