//! The hybrid decision: an unsupervised detector (finds what is new) and,
//! once labels exist, gradient-boosted trees trained on the labelled events
//! with the unsupervised score as one more input (the XGBOD idea: the
//! supervised part learns when to trust it). A bundle's score is then the
//! supervised probability, and its threshold comes from an alert budget.
//!
//! Training the supervised part needs enough known fraud: below
//! [`MIN_POSITIVES`] labelled positives radar keeps the unsupervised
//! detector alone and says why.

use radar_core::Matrix;
use radar_detect::{Detector, Gbdt, GbdtParams};

use crate::error::{PipelineError, Result};

/// Known fraud needed to train a supervised part.
pub const MIN_POSITIVES: usize = 20;

/// The supervised part's inputs: the row's features, then the
/// unsupervised score.
pub fn with_score(features: &[f64], unsupervised: f64, out: &mut Vec<f64>) {
    out.clear();
    out.extend_from_slice(features);
    out.push(unsupervised);
}

/// Fits the supervised part on `x` (features) with the unsupervised
/// `scores` and point-in-time `labels`; `None` (with the reason) when the
/// labels cannot support one.
pub fn fit_supervised(
    x: radar_core::MatrixView<'_>,
    scores: &[f64],
    labels: &[bool],
    params: &GbdtParams,
) -> Result<std::result::Result<Gbdt, String>> {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives < MIN_POSITIVES {
        return Ok(Err(format!(
            "{positives} labelled fraud events known at training time; a supervised part needs at least {MIN_POSITIVES}"
        )));
    }
    if positives == labels.len() {
        return Ok(Err("every training event is labelled fraud".into()));
    }
    let mut augmented = Matrix::with_columns(x.cols() + 1)?;
    let mut row = Vec::with_capacity(x.cols() + 1);
    for (i, &score) in scores.iter().enumerate().take(x.rows()) {
        with_score(x.row(i), score, &mut row);
        augmented.push_row(&row)?;
    }
    Ok(Ok(Gbdt::fit(params, augmented.view(), labels)?))
}

/// The threshold that raises `per_thousand` alerts per 1,000 events on
/// `scores` (the training scores): their `1 − per_thousand/1000` quantile.
pub fn budget_threshold(scores: &[f64], per_thousand: f64) -> Result<f64> {
    if !(per_thousand > 0.0 && per_thousand < 1000.0) {
        return Err(PipelineError::input(format!(
            "the alert budget must be in (0, 1000) alerts per 1,000 events, got {per_thousand}"
        )));
    }
    Ok(crate::evaluate::quantile(
        scores,
        1.0 - per_thousand / 1000.0,
    ))
}

/// Scores rows with an unsupervised detector and, when present, the
/// supervised part on top.
pub fn score_rows(
    unsupervised: &dyn Detector,
    supervised: Option<&dyn Detector>,
    x: radar_core::MatrixView<'_>,
) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
    let u = unsupervised.score_batch(x)?;
    let Some(s) = supervised else {
        return Ok((u, None));
    };
    let mut row = Vec::with_capacity(x.cols() + 1);
    let p = (0..x.rows())
        .map(|i| {
            with_score(x.row(i), u[i], &mut row);
            s.score_row(&row)
        })
        .collect::<std::result::Result<Vec<f64>, _>>()?;
    Ok((u, Some(p)))
}
