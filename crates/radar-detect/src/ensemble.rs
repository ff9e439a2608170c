//! Rank-averaging ensembles: several batch detectors as one. Each member's
//! score is replaced by its rank among the member's own scores of the
//! training rows (a share in [0, 1]), and the ensemble's score is the
//! mean rank — detectors whose scores live on different scales (an
//! isolation forest's 0.3–0.8, a joint tail's sums of logs) then weigh
//! alike, and a row must look odd to most of them to rank high.
//!
//! Invariants: at least one member, all over the same number of features,
//! none online (a member that learned after calibration would drift away
//! from its ranks) and none itself an ensemble; each member's reference
//! holds 1..=`MAX_REFERENCE` sorted finite training scores once fitted.

use radar_core::MatrixView;

use crate::codec::{self, DecodeError, ModelKind, Reader, Writer};
use crate::error::{DetectError, check_row, invalid};
use crate::{Detector, load};

/// Training scores kept per member (evenly spaced order statistics beyond
/// that), so ranks are exact to 1/4096.
const MAX_REFERENCE: usize = 4096;

#[derive(Debug)]
pub struct RankEnsemble {
    members: Vec<Box<dyn Detector>>,
    /// Each member's sorted training scores; empty before fitting.
    references: Vec<Vec<f64>>,
}

impl RankEnsemble {
    /// An ensemble of `members` (fitted or not); [`Detector::fit`] fits
    /// them all, [`RankEnsemble::calibrate`] only takes their ranks.
    pub fn new(members: Vec<Box<dyn Detector>>) -> Result<Self, DetectError> {
        let Some(first) = members.first() else {
            return Err(invalid("members", "an ensemble needs at least one member"));
        };
        let d = first.n_features();
        for m in &members {
            if m.n_features() != d {
                return Err(invalid(
                    "members",
                    format!(
                        "members must take the same features: {} takes {}, the first {d}",
                        m.kind().name(),
                        m.n_features()
                    ),
                ));
            }
            if m.is_online() || m.kind() == ModelKind::Ensemble {
                return Err(invalid(
                    "members",
                    format!(
                        "members are batch detectors, not ensembles; got {}",
                        m.kind().name()
                    ),
                ));
            }
        }
        let references = vec![Vec::new(); members.len()];
        Ok(RankEnsemble {
            members,
            references,
        })
    }

    /// Takes each (already fitted) member's ranks on `data`.
    pub fn calibrate(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        if data.rows() == 0 {
            return Err(DetectError::Empty);
        }
        for (m, r) in self.members.iter().zip(&mut self.references) {
            let mut s = m.score_batch(data)?;
            s.sort_unstable_by(f64::total_cmp);
            let n = s.len();
            *r = if n <= MAX_REFERENCE {
                s
            } else {
                (0..MAX_REFERENCE)
                    .map(|i| s[i * (n - 1) / (MAX_REFERENCE - 1)])
                    .collect()
            };
        }
        Ok(())
    }

    pub fn members(&self) -> &[Box<dyn Detector>] {
        &self.members
    }

    fn is_fitted(&self) -> bool {
        self.references.iter().all(|r| !r.is_empty())
    }

    /// Mid-rank of `score` in a sorted reference: ties count half.
    fn rank(reference: &[f64], score: f64) -> f64 {
        let below = reference.partition_point(|&v| v < score);
        let at_or_below = reference.partition_point(|&v| v <= score);
        (below + at_or_below) as f64 / (2 * reference.len()) as f64
    }
}

impl Detector for RankEnsemble {
    fn kind(&self) -> ModelKind {
        ModelKind::Ensemble
    }

    fn n_features(&self) -> usize {
        self.members[0].n_features()
    }

    fn is_online(&self) -> bool {
        false
    }

    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        for m in &mut self.members {
            m.fit(data)?;
        }
        self.calibrate(data)
    }

    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        check_row(row, self.n_features())?;
        if !self.is_fitted() {
            return Ok(0.0);
        }
        let mut sum = 0.0;
        for (m, r) in self.members.iter().zip(&self.references) {
            sum += RankEnsemble::rank(r, m.score_row(row)?);
        }
        Ok(sum / self.members.len() as f64)
    }

    fn score_batch(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        if !self.is_fitted() {
            return Ok(vec![0.0; data.rows()]);
        }
        let mut sum = vec![0.0; data.rows()];
        for (m, r) in self.members.iter().zip(&self.references) {
            for (s, x) in sum.iter_mut().zip(m.score_batch(data)?) {
                *s += RankEnsemble::rank(r, x);
            }
        }
        let k = self.members.len() as f64;
        Ok(sum.into_iter().map(|s| s / k).collect())
    }

    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        check_row(row, self.n_features())
    }

    /// Each member's shares weighted by its rank of the row: the members
    /// that find the row odd say why.
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        check_row(row, self.n_features())?;
        let mut out = vec![0.0; self.n_features()];
        if !self.is_fitted() {
            return Ok(out);
        }
        for (m, r) in self.members.iter().zip(&self.references) {
            let weight = RankEnsemble::rank(r, m.score_row(row)?);
            for (o, s) in out.iter_mut().zip(m.explain_row(row)?) {
                *o += weight * s;
            }
        }
        let total: f64 = out.iter().sum();
        if total > 0.0 {
            out.iter_mut().for_each(|o| *o /= total);
        }
        Ok(out)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.members.len() as u64);
        for (m, r) in self.members.iter().zip(&self.references) {
            w.bytes(&m.to_bytes());
            w.f64s(r);
        }
        codec::seal(ModelKind::Ensemble, &w.into_bytes())
    }
}

impl RankEnsemble {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DetectError> {
        let (kind, payload) = codec::open(bytes)?;
        if kind != ModelKind::Ensemble {
            return Err(DecodeError::Invalid(format!(
                "expected an ensemble, found {}",
                kind.name()
            ))
            .into());
        }
        let bad = |m: &str| DetectError::from(DecodeError::Invalid(m.to_owned()));
        let mut r = Reader::new(payload);
        let n = r.u64()?;
        if n == 0 || n > 64 {
            return Err(bad("an ensemble holds 1 to 64 members"));
        }
        let (mut members, mut references) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let member = r.bytes()?;
            // Nested ensembles are refused before they are read: no
            // recursion on untrusted input.
            if codec::open(member)?.0 == ModelKind::Ensemble {
                return Err(bad("an ensemble inside an ensemble"));
            }
            members.push(load(member)?);
            let reference = r.f64s()?;
            let sorted = reference.windows(2).all(|w| w[0] <= w[1]);
            if reference.len() > MAX_REFERENCE
                || !sorted
                || reference.iter().any(|v| !v.is_finite())
            {
                return Err(bad("a member's reference is not sorted finite scores"));
            }
            references.push(reference);
        }
        r.finish()?;
        let mut out = RankEnsemble::new(members)?;
        if references.iter().any(Vec::is_empty) && !references.iter().all(Vec::is_empty) {
            return Err(bad("some members are calibrated, some not"));
        }
        out.references = references;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use radar_core::{Matrix, Rng};

    use super::*;
    use crate::{EifParams, ExtendedIsolationForest, JointTail, JointTailParams};

    fn data(n: usize, seed: u64) -> Matrix {
        let mut rng = Rng::seed_from_u64(seed);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.normal(), 10.0 * rng.normal(), rng.next_f64()])
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    fn ensemble() -> RankEnsemble {
        let members: Vec<Box<dyn Detector>> = vec![
            Box::new(ExtendedIsolationForest::new(EifParams::default(), 3).unwrap()),
            Box::new(JointTail::new(JointTailParams::default(), 3).unwrap()),
        ];
        RankEnsemble::new(members).unwrap()
    }

    #[test]
    fn scores_are_mean_ranks_and_outliers_rank_top() {
        let train = data(2000, 1);
        let mut e = ensemble();
        assert_eq!(e.score_row(&[0.0, 0.0, 0.5]).unwrap(), 0.0, "unfitted");
        e.fit(train.view()).unwrap();
        let scores = e.score_batch(train.view()).unwrap();
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        // Ranks of the training rows themselves average one half.
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let far = e.score_row(&[8.0, 0.0, 0.5]).unwrap();
        assert!(far > 0.95, "{far}");
        let ex = e.explain_row(&[8.0, 0.0, 0.5]).unwrap();
        assert!((ex.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(ex[0] > 0.5, "feature 0 is what is odd: {ex:?}");
        for (i, &s) in scores.iter().enumerate().take(20) {
            assert_eq!(s, e.score_row(train.row(i)).unwrap());
        }
    }

    #[test]
    fn members_must_agree_and_be_batch_detectors() {
        assert!(RankEnsemble::new(Vec::new()).is_err());
        let mixed: Vec<Box<dyn Detector>> = vec![
            Box::new(JointTail::new(JointTailParams::default(), 3).unwrap()),
            Box::new(JointTail::new(JointTailParams::default(), 2).unwrap()),
        ];
        assert!(RankEnsemble::new(mixed).is_err());
        let online: Vec<Box<dyn Detector>> = vec![Box::new(
            crate::HalfSpaceTrees::new(crate::HstParams::default(), 3).unwrap(),
        )];
        assert!(RankEnsemble::new(online).is_err());
    }

    #[test]
    fn nested_ensembles_are_refused_when_read() {
        let train = data(300, 2);
        let mut inner = ensemble();
        inner.fit(train.view()).unwrap();
        let mut w = Writer::new();
        w.u64(1);
        w.bytes(&inner.to_bytes());
        w.f64s(&[0.5]);
        let nested = codec::seal(ModelKind::Ensemble, &w.into_bytes());
        assert!(RankEnsemble::from_bytes(&nested).is_err());
        assert!(RankEnsemble::from_bytes(&inner.to_bytes()).is_ok());
    }
}
