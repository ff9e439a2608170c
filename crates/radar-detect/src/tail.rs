//! Joint-tail detectors: ECOD (Li et al., 2022) and COPOD (Li et al.,
//! 2020). Each feature's empirical distribution says how far into a tail a
//! value lies, −ln of the share of training values at or beyond it; the
//! row's score is the sum over features. Parameter-free, fitted in one
//! pass (a sort per column), explainable per feature by construction: a
//! feature's term is its share of the score.
//!
//! Per feature, with `l` = −ln P(X ≤ x) and `r` = −ln P(X ≥ x) and the
//! tail the training skewness points to (`l` for negative skew, `r` for
//! positive, `l + r` for none):
//! - ECOD scores max(l, r, skew tail), as PyOD computes it;
//! - COPOD scores max(skew tail, (l + r) / 2).
//!
//! Invariants: each column keeps at most `max_knots` sorted training
//! values (all of them when there are fewer; evenly spaced order
//! statistics otherwise, so shares are exact up to 1 / `max_knots`); every
//! knot is finite. A value beyond all knots counts as half a knot, so its
//! term is finite (ln(2 · knots)).

use radar_core::MatrixView;
use rayon::prelude::*;

use crate::codec::{self, DecodeError, ModelKind, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};

/// How the two tails of a feature combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailRule {
    #[default]
    Ecod,
    Copod,
}

impl TailRule {
    pub fn name(self) -> &'static str {
        match self {
            TailRule::Ecod => "ecod",
            TailRule::Copod => "copod",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JointTailParams {
    pub rule: TailRule,
    /// Sorted values kept per feature.
    pub max_knots: usize,
}

impl Default for JointTailParams {
    fn default() -> Self {
        JointTailParams {
            rule: TailRule::Ecod,
            max_knots: 65_536,
        }
    }
}

/// A fitted joint-tail detector.
#[derive(Debug, Clone, PartialEq)]
pub struct JointTail {
    params: JointTailParams,
    /// Sorted knots of each feature.
    knots: Vec<Vec<f64>>,
    /// Sign of each feature's training skewness: −1, 0 or 1.
    skew: Vec<i8>,
}

/// ln 2: the term of a value at a feature's median, what every feature
/// adds when nothing is odd; explanations count only what is above it.
const MEDIAN_TERM: f64 = std::f64::consts::LN_2;

impl JointTail {
    /// An unfitted detector of `n_features` columns (scores nothing until
    /// fitted).
    pub fn new(params: JointTailParams, n_features: usize) -> Result<Self, DetectError> {
        if params.max_knots < 2 {
            return Err(invalid(
                "max_knots",
                format!("must be at least 2, got {}", params.max_knots),
            ));
        }
        if n_features == 0 {
            return Err(invalid("n_features", "must be at least 1"));
        }
        Ok(JointTail {
            params,
            knots: vec![Vec::new(); n_features],
            skew: vec![0; n_features],
        })
    }

    /// Fits on `data` (finite by construction of a matrix): one sort per
    /// column.
    pub fn fit(params: &JointTailParams, data: MatrixView<'_>) -> Result<Self, DetectError> {
        let mut d = JointTail::new(params.clone(), data.cols())?;
        d.refit(data)?;
        Ok(d)
    }

    fn refit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        let (n, d) = (data.rows(), data.cols());
        if n == 0 {
            return Err(DetectError::Empty);
        }
        if d != self.knots.len() {
            return Err(DetectError::FeatureCount {
                expected: self.knots.len(),
                got: d,
            });
        }
        let max_knots = self.params.max_knots;
        let fitted: Vec<(Vec<f64>, i8)> = (0..d)
            .into_par_iter()
            .map(|j| {
                let mut col: Vec<f64> = (0..n).map(|i| data.row(i)[j]).collect();
                let skew = skew_sign(&col);
                col.sort_unstable_by(f64::total_cmp);
                (thin(col, max_knots), skew)
            })
            .collect();
        (self.knots, self.skew) = fitted.into_iter().unzip();
        Ok(())
    }

    pub fn params(&self) -> &JointTailParams {
        &self.params
    }

    pub fn n_features(&self) -> usize {
        self.knots.len()
    }

    fn is_fitted(&self) -> bool {
        self.knots.first().is_some_and(|k| !k.is_empty())
    }

    /// (left, right) tail terms of value `x` of feature `j`.
    #[inline]
    fn tails(&self, j: usize, x: f64) -> (f64, f64) {
        let k = &self.knots[j];
        let n = k.len() as f64;
        let at_or_below = k.partition_point(|&v| v <= x) as f64;
        let at_or_above = n - k.partition_point(|&v| v < x) as f64;
        (
            -(at_or_below.max(0.5) / n).ln(),
            -(at_or_above.max(0.5) / n).ln(),
        )
    }

    /// The term of feature `j` and whether the value lies in its upper tail.
    #[inline]
    fn term(&self, j: usize, x: f64) -> (f64, bool) {
        let (l, r) = self.tails(j, x);
        let skewed = match self.skew[j] {
            s if s < 0 => l,
            0 => l + r,
            _ => r,
        };
        let t = match self.params.rule {
            TailRule::Ecod => l.max(r).max(skewed),
            TailRule::Copod => skewed.max((l + r) / 2.0),
        };
        (t, r > l)
    }

    fn check(&self, row: &[f64]) -> Result<(), DetectError> {
        check_row(row, self.n_features())?;
        if !self.is_fitted() {
            return Err(invalid("model", "the joint-tail detector is not fitted"));
        }
        Ok(())
    }

    pub fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.check(row)?;
        Ok(row
            .iter()
            .enumerate()
            .map(|(j, &x)| self.term(j, x).0)
            .sum())
    }

    pub fn score(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        if data.cols() != self.n_features() {
            return Err(DetectError::FeatureCount {
                expected: self.n_features(),
                got: data.cols(),
            });
        }
        (0..data.rows())
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| {
                self.score_row(data.row(i)).map_err(|e| match e {
                    DetectError::NonFinite { column, value, .. } => DetectError::NonFinite {
                        row: i,
                        column,
                        value,
                    },
                    e => e,
                })
            })
            .collect()
    }

    /// Each feature's share of what the row scores above a typical row
    /// (terms over ln 2), and whether it lies in the upper tail.
    pub fn explain(&self, row: &[f64]) -> Result<(Vec<f64>, Vec<bool>), DetectError> {
        self.check(row)?;
        let (mut excess, above): (Vec<f64>, Vec<bool>) = row
            .iter()
            .enumerate()
            .map(|(j, &x)| {
                let (t, up) = self.term(j, x);
                ((t - MEDIAN_TERM).max(0.0), up)
            })
            .unzip();
        let total: f64 = excess.iter().sum();
        if total > 0.0 {
            excess.iter_mut().for_each(|e| *e /= total);
        }
        Ok((excess, above))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(match self.params.rule {
            TailRule::Ecod => 0,
            TailRule::Copod => 1,
        });
        w.u64(self.params.max_knots as u64);
        w.u64(self.knots.len() as u64);
        for (k, &s) in self.knots.iter().zip(&self.skew) {
            w.u8(s as u8);
            w.f64s(k);
        }
        codec::seal(ModelKind::JointTail, &w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DetectError> {
        let (kind, payload) = codec::open(bytes)?;
        if kind != ModelKind::JointTail {
            return Err(DecodeError::Invalid(format!(
                "expected a joint-tail model, found {}",
                kind.name()
            ))
            .into());
        }
        let bad = |m: &str| DetectError::from(DecodeError::Invalid(m.to_owned()));
        let mut r = Reader::new(payload);
        let rule = match r.u8()? {
            0 => TailRule::Ecod,
            1 => TailRule::Copod,
            v => return Err(bad(&format!("unknown tail rule {v}"))),
        };
        let max_knots = r.u64()? as usize;
        let d = r.u64()? as usize;
        if d == 0 || d > r.remaining() {
            return Err(bad("feature count out of range"));
        }
        let mut out = JointTail::new(JointTailParams { rule, max_knots }, d)?;
        for j in 0..d {
            out.skew[j] = match r.u8()? as i8 {
                s @ -1..=1 => s,
                s => return Err(bad(&format!("skew sign {s} is not −1, 0 or 1"))),
            };
            let k = r.f64s()?;
            let sorted = k.windows(2).all(|w| w[0] <= w[1]);
            if k.is_empty() || k.len() > max_knots || !sorted || k.iter().any(|v| !v.is_finite()) {
                return Err(bad(
                    "feature knots must be 1..=max_knots sorted finite values",
                ));
            }
            out.knots[j] = k;
        }
        r.finish()?;
        Ok(out)
    }
}

/// Keeps at most `max` evenly spaced order statistics of a sorted column
/// (its minimum and maximum always among them).
fn thin(sorted: Vec<f64>, max: usize) -> Vec<f64> {
    let n = sorted.len();
    if n <= max {
        return sorted;
    }
    (0..max).map(|i| sorted[i * (n - 1) / (max - 1)]).collect()
}

/// Sign of the sample skewness (third standardised moment); 0 for a
/// constant column.
fn skew_sign(col: &[f64]) -> i8 {
    let n = col.len() as f64;
    let mean = col.iter().sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for &x in col {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    if m2 <= f64::EPSILON * mean.abs().max(1.0) * n || m3 == 0.0 {
        0
    } else if m3 > 0.0 {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests;
