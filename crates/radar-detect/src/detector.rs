//! One interface over batch-fitted and online detectors, so the scorer, the
//! evaluation and the registry treat them alike.

use radar_core::MatrixView;

use crate::codec::{self, ModelKind, Reader, Writer};
use crate::error::DetectError;
use crate::gbdt::Gbdt;
use crate::hst::HalfSpaceTrees;
use crate::iforest::IsolationForest;
use crate::rcf::RandomCutForest;
use crate::tail::JointTail;

/// Which scored rows an online detector learns from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LearnPolicy {
    #[default]
    All,
    /// Only rows it did not flag — scoring at or under the threshold, the
    /// rule that raises alerts above it — so a burst of anomalies does not
    /// teach the detector that anomalies are normal.
    Unflagged {
        threshold: f64,
    },
    Never,
}

impl LearnPolicy {
    pub fn learns(self, score: f64) -> bool {
        match self {
            LearnPolicy::All => true,
            LearnPolicy::Unflagged { threshold } => score <= threshold,
            LearnPolicy::Never => false,
        }
    }
}

/// A detector: higher scores are more anomalous.
pub trait Detector: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ModelKind;
    /// Values per row.
    fn n_features(&self) -> usize;
    /// Whether [`update`](Self::update) learns (false for batch detectors,
    /// which change only by refitting).
    fn is_online(&self) -> bool;
    /// Batch detectors fit on `data` (replacing what they knew); online
    /// detectors learn its rows in order.
    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError>;
    /// The score of one row; does not learn.
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError>;
    fn score_batch(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        (0..data.rows())
            .map(|i| self.score_row(data.row(i)))
            .collect()
    }
    /// The decision threshold the detector fitted for itself, if it does
    /// (an Isolation Forest's contamination quantile); others leave it to
    /// their caller.
    fn fitted_threshold(&self) -> Option<f64> {
        None
    }
    /// Learns one row (a no-op for batch detectors).
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError>;
    /// Per-feature shares of the row's anomaly (sum to 1, or all 0 when the
    /// detector has nothing to say yet).
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError>;
    /// [`explain_row`](Self::explain_row) and, for detectors that can
    /// tell, whether each feature lies above (true) or below (false) the
    /// data.
    fn explain_directed(&self, row: &[f64]) -> Result<(Vec<f64>, Option<Vec<bool>>), DetectError> {
        Ok((self.explain_row(row)?, None))
    }
    /// (feature, share, above?) largest share first (ties by feature):
    /// what alerts and the API show.
    fn explain_ranked(&self, row: &[f64]) -> Result<Vec<(usize, f64, Option<bool>)>, DetectError> {
        let (shares, directions) = self.explain_directed(row)?;
        let mut ranked: Vec<(usize, f64, Option<bool>)> = shares
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i, s, directions.as_ref().and_then(|d| d.get(i).copied())))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(ranked)
    }
    /// The model file: versioned and checksummed; read back with [`load`].
    fn to_bytes(&self) -> Vec<u8>;

    /// Scores `row`, then learns it if `policy` allows. The stream path.
    fn observe(&mut self, row: &[f64], policy: LearnPolicy) -> Result<f64, DetectError> {
        let score = self.score_row(row)?;
        if self.is_online() && policy.learns(score) {
            self.update(row)?;
        }
        Ok(score)
    }
}

/// Reads any model file written by a detector.
pub fn load(bytes: &[u8]) -> Result<Box<dyn Detector>, DetectError> {
    let (kind, payload) = codec::open(bytes)?;
    Ok(match kind {
        ModelKind::IsolationForest => Box::new(IsolationForest::from_bytes(bytes)?),
        ModelKind::HalfSpaceTrees => {
            let mut r = Reader::new(payload);
            let d = HalfSpaceTrees::read(&mut r)?;
            r.finish()?;
            Box::new(d)
        }
        ModelKind::RandomCutForest => {
            let mut r = Reader::new(payload);
            let d = RandomCutForest::read(&mut r)?;
            r.finish()?;
            Box::new(d)
        }
        ModelKind::Gbdt => Box::new(Gbdt::from_bytes(bytes)?),
        ModelKind::JointTail => Box::new(JointTail::from_bytes(bytes)?),
        ModelKind::ExtendedIsolationForest => {
            Box::new(crate::eif::ExtendedIsolationForest::from_bytes(bytes)?)
        }
        ModelKind::Ensemble => Box::new(crate::ensemble::RankEnsemble::from_bytes(bytes)?),
    })
}

fn normalised(mut v: Vec<f64>) -> Vec<f64> {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.iter_mut().for_each(|x| *x /= total);
    }
    v
}

impl Detector for IsolationForest {
    fn kind(&self) -> ModelKind {
        ModelKind::IsolationForest
    }
    fn n_features(&self) -> usize {
        IsolationForest::n_features(self)
    }
    fn is_online(&self) -> bool {
        false
    }
    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        let mut params = self.params().clone();
        // Refits are reproducible from the model's own seed.
        params.random_state = Some(self.seed());
        *self = IsolationForest::fit(&params, data)?;
        Ok(())
    }
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        IsolationForest::score_row(self, row)
    }
    fn score_batch(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        self.score(data)
    }
    fn fitted_threshold(&self) -> Option<f64> {
        Some(self.threshold())
    }
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        // Frozen, but the row is still checked like everywhere else.
        IsolationForest::score_row(self, row).map(|_| ())
    }
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        Ok(IsolationForest::explain_row(self, row)?.contributions)
    }
    fn to_bytes(&self) -> Vec<u8> {
        IsolationForest::to_bytes(self)
    }
}

impl Detector for HalfSpaceTrees {
    fn kind(&self) -> ModelKind {
        ModelKind::HalfSpaceTrees
    }
    fn n_features(&self) -> usize {
        HalfSpaceTrees::n_features(self)
    }
    fn is_online(&self) -> bool {
        true
    }
    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        for i in 0..data.rows() {
            HalfSpaceTrees::update(self, data.row(i))?;
        }
        Ok(())
    }
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.score(row)
    }
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        HalfSpaceTrees::update(self, row)
    }
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        self.explain(row)
    }
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        codec::seal(ModelKind::HalfSpaceTrees, &w.into_bytes())
    }
}

impl Detector for RandomCutForest {
    fn kind(&self) -> ModelKind {
        ModelKind::RandomCutForest
    }
    fn n_features(&self) -> usize {
        self.params().dimensions
    }
    fn is_online(&self) -> bool {
        true
    }
    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        for i in 0..data.rows() {
            RandomCutForest::update(self, data.row(i))?;
        }
        Ok(())
    }
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.score(row)
    }
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        RandomCutForest::update(self, row)
    }
    /// Both directions and every shingle position of an input feature add
    /// up to its share.
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        Ok(self.explain_directed(row)?.0)
    }
    /// Above when the high side of a feature's attribution (summed over
    /// shingle positions) outweighs its low side.
    fn explain_directed(&self, row: &[f64]) -> Result<(Vec<f64>, Option<Vec<bool>>), DetectError> {
        let attr = self.attribution(row)?;
        let d = self.params().dimensions;
        let (mut share, mut balance) = (vec![0.0; d], vec![0.0; d]);
        for (i, pair) in attr.chunks_exact(2).enumerate() {
            share[i % d] += pair[0] + pair[1];
            balance[i % d] += pair[1] - pair[0];
        }
        let above = balance.into_iter().map(|b| b > 0.0).collect();
        Ok((normalised(share), Some(above)))
    }
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        codec::seal(ModelKind::RandomCutForest, &w.into_bytes())
    }
}

/// Gradient-boosted trees score a row with the calibrated probability
/// that it is positive; they are fitted with labels ([`Gbdt::fit`]), so
/// [`Detector::fit`] refuses.
impl Detector for Gbdt {
    fn kind(&self) -> ModelKind {
        ModelKind::Gbdt
    }
    fn n_features(&self) -> usize {
        Gbdt::n_features(self)
    }
    fn is_online(&self) -> bool {
        false
    }
    fn fit(&mut self, _: MatrixView<'_>) -> Result<(), DetectError> {
        Err(crate::error::invalid(
            "labels",
            "gradient-boosted trees learn from labels: use Gbdt::fit",
        ))
    }
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        self.predict_proba(row)
    }
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        self.margin(row).map(|_| ())
    }
    /// Shares of the absolute path contributions.
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        Ok(normalised(
            self.contributions(row)?.iter().map(|c| c.abs()).collect(),
        ))
    }
    fn to_bytes(&self) -> Vec<u8> {
        Gbdt::to_bytes(self)
    }
}

/// The joint-tail detector: fitted in one pass, frozen between fits.
impl Detector for JointTail {
    fn kind(&self) -> ModelKind {
        ModelKind::JointTail
    }
    fn n_features(&self) -> usize {
        JointTail::n_features(self)
    }
    fn is_online(&self) -> bool {
        false
    }
    fn fit(&mut self, data: MatrixView<'_>) -> Result<(), DetectError> {
        *self = JointTail::fit(self.params(), data)?;
        Ok(())
    }
    fn score_row(&self, row: &[f64]) -> Result<f64, DetectError> {
        JointTail::score_row(self, row)
    }
    fn score_batch(&self, data: MatrixView<'_>) -> Result<Vec<f64>, DetectError> {
        self.score(data)
    }
    fn update(&mut self, row: &[f64]) -> Result<(), DetectError> {
        JointTail::score_row(self, row).map(|_| ())
    }
    fn explain_row(&self, row: &[f64]) -> Result<Vec<f64>, DetectError> {
        Ok(self.explain(row)?.0)
    }
    fn explain_directed(&self, row: &[f64]) -> Result<(Vec<f64>, Option<Vec<bool>>), DetectError> {
        let (shares, above) = self.explain(row)?;
        Ok((shares, Some(above)))
    }
    fn to_bytes(&self) -> Vec<u8> {
        JointTail::to_bytes(self)
    }
}

#[cfg(test)]
mod tests;
