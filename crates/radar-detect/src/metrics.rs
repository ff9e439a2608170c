//! Evaluation metrics with scikit-learn's semantics, for scores where higher
//! means more anomalous and labels where `true` means anomaly.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum MetricError {
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("the metric is undefined when every label is {0}: both classes are needed")]
    SingleClass(&'static str),
    #[error("score {index} is NaN")]
    NanScore { index: usize },
    #[error("k must be at least 1")]
    ZeroK,
}

fn check(scores: &[f64], labels: &[bool]) -> Result<(usize, usize), MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(MetricError::NanScore { index });
    }
    let positives = labels.iter().filter(|&&l| l).count();
    Ok((positives, labels.len() - positives))
}

/// Indices sorted by descending score; ties keep index order.
fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Walks the distinct score thresholds from the highest down, yielding the
/// cumulative (true positives, false positives) after each tie group.
fn tie_groups(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let order = order_desc(scores);
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((tp, fp));
    }
    out
}

/// Area under the ROC curve; tied scores form one step of the curve, which is
/// integrated with the trapezoid rule (as `sklearn.metrics.roc_auc_score`).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    let (p, n) = check(scores, labels)?;
    if p == 0 {
        return Err(MetricError::SingleClass("normal"));
    }
    if n == 0 {
        return Err(MetricError::SingleClass("anomaly"));
    }
    let mut area = 0.0;
    let (mut prev_tp, mut prev_fp) = (0usize, 0usize);
    for (tp, fp) in tie_groups(scores, labels) {
        area += (fp - prev_fp) as f64 * (tp + prev_tp) as f64 / 2.0;
        prev_tp = tp;
        prev_fp = fp;
    }
    Ok(area / (p as f64 * n as f64))
}

/// Average precision: sum over thresholds of (R_k − R_{k−1}) · P_k, without
/// interpolation (as `sklearn.metrics.average_precision_score`).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    let (p, _) = check(scores, labels)?;
    if p == 0 {
        return Err(MetricError::SingleClass("normal"));
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (tp, fp) in tie_groups(scores, labels) {
        let recall = tp as f64 / p as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Ok(ap)
}

/// The precision-recall curve, thinned to at most `points` points spread
/// over recall (each tie group of scores is one step): `(recall,
/// precision)` from the highest threshold down.
pub fn pr_curve(
    scores: &[f64],
    labels: &[bool],
    points: usize,
) -> Result<Vec<(f64, f64)>, MetricError> {
    let (p, _) = check(scores, labels)?;
    if p == 0 {
        return Err(MetricError::SingleClass("normal"));
    }
    let all: Vec<(f64, f64)> = tie_groups(scores, labels)
        .into_iter()
        .map(|(tp, fp)| (tp as f64 / p as f64, tp as f64 / (tp + fp) as f64))
        .collect();
    let step = 1.0 / points.max(1) as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points + 1);
    for (i, &(recall, precision)) in all.iter().enumerate() {
        let last = i + 1 == all.len();
        if last || out.last().is_none_or(|&(r, _)| recall - r >= step) {
            out.push((recall, precision));
        }
    }
    Ok(out)
}

/// The highest recall reached at a threshold whose precision is at least
/// `min_precision`, with that threshold (rows scoring at or above it are
/// flagged). None when no threshold reaches the precision.
pub fn recall_at_precision(
    scores: &[f64],
    labels: &[bool],
    min_precision: f64,
) -> Result<Option<(f64, f64)>, MetricError> {
    let (p, _) = check(scores, labels)?;
    if p == 0 {
        return Err(MetricError::SingleClass("normal"));
    }
    let order = order_desc(scores);
    let mut best: Option<(f64, f64)> = None;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / p as f64;
        if precision >= min_precision && best.is_none_or(|(r, _)| recall > r) {
            best = Some((recall, s));
        }
    }
    Ok(best)
}

/// Counts of a binary decision against the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts from predictions (`true` = flagged as anomaly).
    pub fn from_predictions(predicted: &[bool], labels: &[bool]) -> Result<Self, MetricError> {
        if predicted.len() != labels.len() {
            return Err(MetricError::LengthMismatch {
                scores: predicted.len(),
                labels: labels.len(),
            });
        }
        let mut c = Confusion::default();
        for (&p, &l) in predicted.iter().zip(labels) {
            match (p, l) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        Ok(c)
    }

    /// Flags rows whose score is strictly above `threshold`, as a detector's
    /// `predict` does.
    pub fn at_threshold(
        scores: &[f64],
        labels: &[bool],
        threshold: f64,
    ) -> Result<Self, MetricError> {
        check(scores, labels)?;
        let predicted: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
        Confusion::from_predictions(&predicted, labels)
    }

    /// tp / (tp + fp); 0 when nothing was flagged (scikit-learn's
    /// `zero_division` default).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// tp / (tp + fn); 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Share of anomalies among the `k` highest scores (ties broken by row
/// order). `k` larger than the data is clamped to its length.
pub fn precision_at_k(scores: &[f64], labels: &[bool], k: usize) -> Result<f64, MetricError> {
    check(scores, labels)?;
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    let k = k.min(scores.len());
    if k == 0 {
        return Ok(0.0);
    }
    let order = order_desc(scores);
    let hits = order[..k].iter().filter(|&&i| labels[i]).count();
    Ok(hits as f64 / k as f64)
}

/// The `q`-quantile (0..=1) of `values` with linear interpolation between
/// order statistics (numpy's default `percentile` method).
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_pr_curve_steps_down_the_thresholds_and_ends_at_full_recall() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let labels = [true, false, true, false, false, true];
        let curve = pr_curve(&scores, &labels, 100).unwrap();
        assert_eq!(curve.first(), Some(&(1.0 / 3.0, 1.0)));
        assert_eq!(curve.last(), Some(&(1.0, 0.5)));
        assert!(curve.windows(2).all(|w| w[0].0 <= w[1].0));
        // Thinned: at most about `points` steps of recall apart.
        assert!(pr_curve(&scores, &labels, 1).unwrap().len() <= 2);
    }

    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn roc_auc_matches_hand_computed_cases() {
        // Perfect and inverted rankings.
        assert_eq!(
            roc_auc(&[0.9, 0.8, 0.1], &[true, true, false]).unwrap(),
            1.0
        );
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.9], &[true, true, false]).unwrap(),
            0.0
        );
        // sklearn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < EPS);
        // Ties count one half: all scores equal gives 0.5.
        let auc = roc_auc(&[0.5; 4], &[true, false, true, false]).unwrap();
        assert!((auc - 0.5).abs() < EPS);
        // One positive tied with one of two negatives, above the other:
        // pairs (p,n1) tie = 0.5, (p,n2) win = 1 -> 0.75.
        let auc = roc_auc(&[0.7, 0.7, 0.2], &[true, false, false]).unwrap();
        assert!((auc - 0.75).abs() < EPS);
    }

    #[test]
    fn average_precision_matches_hand_computed_cases() {
        // sklearn: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < EPS, "{ap}");
        // A tie group of one positive and one negative at the top: recall 1/1
        // reached at precision 1/2.
        let ap = average_precision(&[0.9, 0.9, 0.1], &[true, false, false]).unwrap();
        assert!((ap - 0.5).abs() < EPS, "{ap}");
        assert_eq!(
            average_precision(&[0.1, 0.2], &[false, false]).unwrap_err(),
            MetricError::SingleClass("normal")
        );
    }

    #[test]
    fn single_class_and_bad_inputs_are_errors() {
        assert_eq!(
            roc_auc(&[0.1, 0.2], &[true, true]).unwrap_err(),
            MetricError::SingleClass("anomaly")
        );
        assert_eq!(
            roc_auc(&[0.1], &[true, false]).unwrap_err(),
            MetricError::LengthMismatch {
                scores: 1,
                labels: 2
            }
        );
        assert_eq!(
            roc_auc(&[0.1, f64::NAN], &[true, false]).unwrap_err(),
            MetricError::NanScore { index: 1 }
        );
        assert_eq!(
            precision_at_k(&[0.1], &[true], 0).unwrap_err(),
            MetricError::ZeroK
        );
    }

    #[test]
    fn confusion_precision_recall_f1() {
        let scores = [0.9, 0.8, 0.6, 0.4, 0.2];
        let labels = [true, false, true, true, false];
        let c = Confusion::at_threshold(&scores, &labels, 0.5).unwrap();
        assert_eq!(
            c,
            Confusion {
                true_positives: 2,
                false_positives: 1,
                true_negatives: 1,
                false_negatives: 1
            }
        );
        assert!((c.precision() - 2.0 / 3.0).abs() < EPS);
        assert!((c.recall() - 2.0 / 3.0).abs() < EPS);
        assert!((c.f1() - 2.0 / 3.0).abs() < EPS);
        // Strictly above: a score equal to the threshold is not flagged.
        let c = Confusion::at_threshold(&[0.5], &[true], 0.5).unwrap();
        assert_eq!(c.false_negatives, 1);
        let none = Confusion::at_threshold(&scores, &labels, 1.0).unwrap();
        assert_eq!(none.precision(), 0.0);
        assert_eq!(none.f1(), 0.0);
    }

    #[test]
    fn precision_at_k_counts_top_scores() {
        let scores = [0.9, 0.8, 0.6, 0.4];
        let labels = [true, false, true, false];
        assert_eq!(precision_at_k(&scores, &labels, 1).unwrap(), 1.0);
        assert_eq!(precision_at_k(&scores, &labels, 2).unwrap(), 0.5);
        assert!((precision_at_k(&scores, &labels, 3).unwrap() - 2.0 / 3.0).abs() < EPS);
        assert_eq!(precision_at_k(&scores, &labels, 10).unwrap(), 0.5);
    }

    #[test]
    fn recall_at_precision_finds_the_deepest_qualifying_threshold() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let labels = [true, true, false, true, false, true];
        // Thresholds: 0.9 (P 1, R .25), 0.8 (1, .5), 0.7 (.67, .5), 0.6 (.75, .75), 0.5 (.6, .75), 0.4 (.67, 1).
        assert_eq!(
            recall_at_precision(&scores, &labels, 0.75).unwrap(),
            Some((0.75, 0.6))
        );
        assert_eq!(
            recall_at_precision(&scores, &labels, 1.0).unwrap(),
            Some((0.5, 0.8))
        );
        assert_eq!(
            recall_at_precision(&scores, &labels, 0.6).unwrap(),
            Some((1.0, 0.4))
        );
        assert_eq!(
            recall_at_precision(&[0.1, 0.9], &[true, false], 0.9).unwrap(),
            None
        );
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        // np.percentile([1,2,3,4], 90) == 3.7
        assert!((quantile(&v, 0.9).unwrap() - 3.7).abs() < EPS);
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&v, 1.5), None);
    }
}
