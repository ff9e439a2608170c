//! The Numenta Anomaly Benchmark's scoring, reimplemented: anomaly
//! windows, the scaled sigmoid over a detection's position, the cost
//! profiles, the single threshold that maximises a profile's score over the
//! corpus, and normalisation between the null and the perfect detector.
//!
//! Semantics (Lavin & Ahmad 2015; NAB's scorer):
//! - the first 15% of each series (at most 750 rows) is a probationary
//!   period: detections there are ignored;
//! - a row inside a window of W rows ending at row R scores, if detected,
//!   `tp_weight · σ(−(R − i + 1)/W) / σ(−1)` where σ(y) = 2/(1 + e^{5y}) − 1
//!   (NAB's own code divides by σ(−1) ≈ 0.9866, so a detection at a
//!   window's first row earns exactly `tp_weight`); only a window's best
//!   (earliest) detection counts, and an undetected window costs
//!   `fn_weight`;
//! - a detection outside windows costs `fp_weight · σ(d)` (negative), with
//!   d its distance past the previous window over that window's width − 1,
//!   or the full `fp_weight` before any window;
//! - the threshold is chosen over all series at once to maximise the raw
//!   score; 100 · (raw − null) / (perfect − null) normalises it, where the
//!   null detector detects nothing and the perfect one detects every window
//!   at its first row (`tp_weight` per window). These are NAB's
//!   conventions, so normalised scores compare with its scoreboard.

use std::collections::HashMap;

/// A cost profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

pub const STANDARD: Profile = Profile {
    name: "standard",
    tp_weight: 1.0,
    fp_weight: 0.11,
    fn_weight: 1.0,
};
pub const REWARD_LOW_FP: Profile = Profile {
    name: "reward_low_FP_rate",
    tp_weight: 1.0,
    fp_weight: 0.22,
    fn_weight: 1.0,
};
pub const REWARD_LOW_FN: Profile = Profile {
    name: "reward_low_FN_rate",
    tp_weight: 1.0,
    fp_weight: 0.11,
    fn_weight: 2.0,
};
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP, REWARD_LOW_FN];

/// NAB's scaled sigmoid.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Rows of the probationary period of a series of `n` rows.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// One series: its anomaly scores and its anomaly windows as inclusive row
/// index ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub scores: Vec<f64>,
    pub windows: Vec<(usize, usize)>,
}

/// A profile's result over a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct NabScore {
    pub profile: &'static str,
    pub raw: f64,
    pub null: f64,
    pub perfect: f64,
    pub normalized: f64,
    pub threshold: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

struct Point {
    score: f64,
    /// (series, window) the row lies in, if any.
    window: Option<(usize, usize)>,
    weighted: f64,
}

/// Scores a corpus under `profile` at the threshold that maximises it.
pub fn score(corpus: &[Series], profile: &Profile) -> NabScore {
    let mut points = Vec::new();
    let mut windows_total = 0usize;
    for (s, series) in corpus.iter().enumerate() {
        let mut windows = series.windows.clone();
        windows.sort();
        windows_total += windows.len();
        let start = probation(series.scores.len());
        let mut w = 0; // next window not yet passed
        for (i, &sc) in series.scores.iter().enumerate() {
            while w < windows.len() && windows[w].1 < i {
                w += 1;
            }
            let inside = w < windows.len() && windows[w].0 <= i && i <= windows[w].1;
            if i < start {
                continue;
            }
            let weighted = if inside {
                let (l, r) = windows[w];
                let width = (r - l + 1) as f64;
                profile.tp_weight * scaled_sigmoid(-((r - i + 1) as f64) / width)
                    / scaled_sigmoid(-1.0)
            } else if w == 0 {
                -profile.fp_weight
            } else {
                let (l, r) = windows[w - 1];
                let width = (r - l) as f64;
                let past = if width > 0.0 {
                    (i - r) as f64 / width
                } else {
                    f64::INFINITY
                };
                profile.fp_weight * scaled_sigmoid(past)
            };
            points.push(Point {
                score: sc,
                window: inside.then_some((s, w)),
                weighted,
            });
        }
    }
    let null = -profile.fn_weight * windows_total as f64;
    let perfect = profile.tp_weight * windows_total as f64;
    // Sweep thresholds from the highest score down; ties enter together.
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best_window: HashMap<(usize, usize), f64> = HashMap::new();
    let (mut raw, mut tp, mut fp) = (null, 0usize, 0usize);
    let mut best = (null, f64::INFINITY, 0usize, 0usize);
    let mut i = 0;
    while i < points.len() {
        let t = points[i].score;
        while i < points.len() && points[i].score == t {
            let p = &points[i];
            match p.window {
                None => {
                    raw += p.weighted;
                    fp += 1;
                }
                Some(key) => {
                    let current = best_window.get(&key).copied().unwrap_or(-profile.fn_weight);
                    if !best_window.contains_key(&key) {
                        tp += 1;
                    }
                    let better = current.max(p.weighted);
                    raw += better - current;
                    best_window.insert(key, better);
                }
            }
            i += 1;
        }
        if raw > best.0 {
            best = (raw, t, tp, fp);
        }
    }
    let (raw, threshold, tp, fp) = best;
    NabScore {
        profile: profile.name,
        raw,
        null,
        perfect,
        normalized: if perfect > null {
            100.0 * (raw - null) / (perfect - null)
        } else {
            0.0
        },
        threshold,
        true_positives: tp,
        false_positives: fp,
        false_negatives: windows_total - tp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, detections: &[usize], windows: &[(usize, usize)]) -> Series {
        let mut scores = vec![0.0; n];
        for &d in detections {
            scores[d] = 1.0;
        }
        Series {
            scores,
            windows: windows.to_vec(),
        }
    }

    const EPS: f64 = 1e-9;

    #[test]
    fn sigmoid_values() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_5).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probation(100), 15);
        assert_eq!(probation(10_000), 750);
    }

    #[test]
    fn detecting_at_the_window_start_is_perfect() {
        let s = series(100, &[40], &[(40, 49)]);
        let r = score(&[s], &STANDARD);
        assert!((r.normalized - 100.0).abs() < EPS);
        assert_eq!(
            (r.true_positives, r.false_positives, r.false_negatives),
            (1, 0, 0)
        );
    }

    #[test]
    fn a_late_detection_earns_less() {
        // At the window's last row: σ(−1/10) = 2/(1 + e^{−0.5}) − 1, over
        // σ(−1) as NAB credits it; the perfect score is 1 per window.
        let s = series(100, &[49], &[(40, 49)]);
        let r = score(&[s], &STANDARD);
        let tp = (2.0 / (1.0 + (-0.5f64).exp()) - 1.0) / scaled_sigmoid(-1.0);
        let expected = 100.0 * (tp + 1.0) / 2.0;
        assert!(
            (r.normalized - expected).abs() < EPS,
            "{} vs {expected}",
            r.normalized
        );
    }

    #[test]
    fn false_positives_cost_by_profile_and_distance() {
        // A detection before any window (row 20): −fp_weight; and one
        // 10 rows past the window (width 10): fp_weight · σ(10/9).
        let s = series(100, &[20, 40, 59], &[(40, 49)]);
        let r = score(std::slice::from_ref(&s), &STANDARD);
        let fp_after = 0.11 * scaled_sigmoid(10.0 / 9.0);
        let raw = 1.0 - 0.11 + fp_after;
        // Not detecting at all scores the null −1; detecting gives `raw` > −1.
        assert!((r.raw - raw).abs() < EPS, "{} vs {raw}", r.raw);
        assert_eq!(r.false_positives, 2);
        let low_fp = score(&[s], &REWARD_LOW_FP);
        assert!((low_fp.raw - (1.0 - 0.22 + 2.0 * fp_after)).abs() < EPS);
    }

    #[test]
    fn missed_windows_and_probation() {
        // The detection at row 5 is in the probationary period (15 rows):
        // ignored. The window is missed: the null score.
        let s = series(100, &[5], &[(40, 49)]);
        let r = score(std::slice::from_ref(&s), &REWARD_LOW_FN);
        assert_eq!(r.raw, -2.0);
        assert_eq!(r.normalized, 0.0);
        assert_eq!(r.false_negatives, 1);
    }

    #[test]
    fn the_threshold_is_chosen_over_the_corpus() {
        // Graded scores: the best threshold keeps the high true detection
        // and drops the medium false one.
        let mut a = series(100, &[], &[(40, 49)]);
        a.scores[42] = 0.9;
        a.scores[70] = 0.5;
        let mut b = series(100, &[], &[(60, 69)]);
        b.scores[60] = 0.8;
        let r = score(&[a, b], &STANDARD);
        assert_eq!(r.threshold, 0.8);
        assert_eq!((r.true_positives, r.false_positives), (2, 0));
        let tp_a = scaled_sigmoid(-8.0 / 10.0) / scaled_sigmoid(-1.0);
        let expected_raw = tp_a + 1.0;
        assert!((r.raw - expected_raw).abs() < EPS);
    }
}
