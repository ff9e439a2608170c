//! Drift of a live window against a model's reference profile: the
//! population stability index (PSI) and the Wasserstein distance normed
//! by the reference's deviation, per feature and for the score.
//!
//! A reference is a column's quantiles at evenly spaced levels (0, 1/k, …,
//! 1; a model bundle keeps deciles), read as the distribution that is
//! uniform between consecutive quantiles. So:
//! - PSI bins are the reference's deciles, each expected to hold a tenth
//!   of the values (bins whose edges coincide merge, with their shares); values beyond the reference's extremes fall in the end bins;
//!   shares are floored at [`PSI_FLOOR`] so an empty bin costs a bounded
//!   amount. PSI = Σ (observed − expected) · ln(observed / expected).
//! - Wasserstein-1 is ∫₀¹ |F⁻¹_ref(u) − F⁻¹_window(u)| du, taken at the
//!   reference's inner levels, divided by the reference's standard
//!   deviation (as Evidently's `wasserstein` test: 0.1 means a tenth of a
//!   deviation). A reference with no spread uses the distance alone. The
//!   finer the reference (a bundle keeps percentiles), the closer.
//!
//! Thresholds people use: PSI 0.1 (moderate) / 0.25 (major); normed
//! Wasserstein 0.1 (Evidently's default).

/// The smallest share a PSI bin counts with.
pub const PSI_FLOOR: f64 = 1e-4;
/// Levels the reference's share above a value is read on.
const GRID: usize = 1000;
/// PSI's bins.
const PSI_BINS: usize = 10;

/// A column's drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    pub psi: f64,
    pub wasserstein: f64,
}

/// The value of the reference's quantile function at level `u` in [0, 1].
fn reference_quantile(q: &[f64], u: f64) -> f64 {
    let k = q.len() - 1;
    let x = u.clamp(0.0, 1.0) * k as f64;
    let i = (x.floor() as usize).min(k.saturating_sub(1));
    let t = x - i as f64;
    q[i] + (q[(i + 1).min(k)] - q[i]) * t
}

/// The sorted window's quantile at level `u` (linear between order
/// statistics, as the reference's were taken).
fn window_quantile(sorted: &[f64], u: f64) -> f64 {
    let x = u.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = x.floor() as usize;
    let t = x - i as f64;
    sorted[i] + (sorted[(i + 1).min(sorted.len() - 1)] - sorted[i]) * t
}

/// Drift of `window` (any order) against `reference` quantiles (sorted,
/// at least two, at even levels). `None` when either is empty or the
/// reference has fewer than two quantiles.
pub fn drift(reference: &[f64], window: &[f64]) -> Option<Drift> {
    if reference.len() < 2 || window.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = window.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(f64::total_cmp);
    Some(Drift {
        psi: psi(reference, &sorted),
        wasserstein: wasserstein(reference, &sorted),
    })
}

/// The share of the reference distribution above `x` (0 for fewer than
/// two quantiles).
pub fn share_above(q: &[f64], x: f64) -> f64 {
    if q.len() < 2 {
        return 0.0;
    }
    let below = (0..GRID)
        .filter(|&i| reference_quantile(q, (i as f64 + 0.5) / GRID as f64) <= x)
        .count();
    1.0 - below as f64 / GRID as f64
}

/// PSI over the reference's deciles (finer bins would make a window of a
/// thousand events look drifted by sampling noise alone).
fn psi(q: &[f64], sorted: &[f64]) -> f64 {
    let share = 1.0 / PSI_BINS as f64;
    // Merge bins whose upper edges coincide: (upper edge, expected share).
    let mut bins: Vec<(f64, f64)> = Vec::with_capacity(PSI_BINS);
    for j in 1..=PSI_BINS {
        let edge = reference_quantile(q, j as f64 / PSI_BINS as f64);
        match bins.last_mut() {
            Some(last) if last.0 == edge => last.1 += share,
            _ => bins.push((edge, share)),
        }
    }
    // The first bin also takes everything below the reference's minimum,
    // the last everything above its edge.
    let n = sorted.len() as f64;
    let mut below = 0usize;
    let mut total = 0.0;
    for (b, &(edge, expected)) in bins.iter().enumerate() {
        let upto = if b + 1 == bins.len() {
            sorted.len()
        } else {
            sorted.partition_point(|&v| v <= edge)
        };
        let observed = ((upto - below) as f64 / n).max(PSI_FLOOR);
        let expected = expected.max(PSI_FLOOR);
        total += (observed - expected) * (observed / expected).ln();
        below = upto;
    }
    total
}

/// Mean |reference quantile − window quantile| over the reference's
/// inner levels (its extremes, a sample's minimum and maximum, are left
/// out: they swing with sample size), over the reference's deviation.
fn wasserstein(q: &[f64], sorted: &[f64]) -> f64 {
    let k = q.len() - 1;
    let levels: Vec<usize> = if k >= 2 { (1..k).collect() } else { vec![0, 1] };
    let distance = levels
        .iter()
        .map(|&i| (q[i] - window_quantile(sorted, i as f64 / k as f64)).abs())
        .sum::<f64>()
        / levels.len() as f64;
    let mean = q.iter().sum::<f64>() / q.len() as f64;
    let sd = (q.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / q.len() as f64).sqrt();
    if sd > f64::EPSILON * mean.abs().max(1.0) {
        distance / sd
    } else {
        distance
    }
}

#[cfg(test)]
mod tests {
    use radar_core::Rng;

    use super::*;

    fn percentiles(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        (0..=100)
            .map(|i| v[((v.len() - 1) as f64 * i as f64 / 100.0).round() as usize])
            .collect()
    }

    fn normal(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = Rng::seed_from_u64(seed);
        (0..n).map(|_| mean + sd * rng.normal()).collect()
    }

    #[test]
    fn the_same_distribution_does_not_drift_and_a_shift_does() {
        let reference = percentiles(normal(50_000, 10.0, 2.0, 1));
        let same = drift(&reference, &normal(5_000, 10.0, 2.0, 2)).unwrap();
        assert!(same.psi < 0.02, "{same:?}");
        assert!(same.wasserstein < 0.05, "{same:?}");
        let shifted = drift(&reference, &normal(5_000, 11.0, 2.0, 3)).unwrap();
        // Half a deviation: Wasserstein ≈ 0.5 of a deviation.
        assert!((shifted.wasserstein - 0.5).abs() < 0.1, "{shifted:?}");
        assert!(shifted.psi > 0.1, "{shifted:?}");
        let wider = drift(&reference, &normal(5_000, 10.0, 4.0, 4)).unwrap();
        assert!(wider.psi > 0.1 && wider.wasserstein > 0.2, "{wider:?}");
    }

    #[test]
    fn ties_and_degenerate_inputs_are_safe() {
        // A mostly-zero feature: deciles repeat.
        let mut v = vec![0.0; 900];
        v.extend((0..100).map(|i| i as f64));
        let reference = percentiles(v.clone());
        let same = drift(&reference, &v).unwrap();
        assert!(same.psi.abs() < 1e-3, "{same:?}");
        let all_ones = drift(&reference, &[1.0; 100]).unwrap();
        assert!(all_ones.psi > 1.0 && all_ones.wasserstein.is_finite());
        assert!(drift(&reference, &[]).is_none());
        assert!(drift(&[1.0], &[1.0]).is_none());
        let constant = drift(&[2.0; 11], &[2.0, 2.0]).unwrap();
        assert_eq!(constant.wasserstein, 0.0);
        assert!(drift(&[2.0; 11], &[f64::NAN]).is_none());
    }
}
