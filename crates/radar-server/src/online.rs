//! A stream scored by a detector that learns as events flow (the stream
//! declaration's `[detector]` names Half-Space Trees or Random Cut Forest)
//! instead of a champion from the registry. Its state is part of the
//! scorer's checkpoint, so a restart resumes where it stopped.

use radar_core::binary::{Reader, Writer};
use radar_core::schema::{DetectorConfig, DetectorKind, LearnMode, StreamSchema};
use radar_detect::normal::ScoreNormaliser;
use radar_detect::{Detector, HalfSpaceTrees, HstParams, RandomCutForest, RcfParams};

const DEFAULT_THRESHOLD: f64 = 0.9;
const DEFAULT_WARMUP: u64 = 500;
/// Memory of the score statistics: about 1/α events.
const NORMALISER_ALPHA: f64 = 0.002;

pub struct OnlineModel {
    pub kind: DetectorKind,
    pub threshold: f64,
    learn: LearnMode,
    detector: Box<dyn Detector>,
    normaliser: ScoreNormaliser,
}

impl std::fmt::Debug for OnlineModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineModel")
            .field("kind", &self.kind)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl OnlineModel {
    /// The stream's online detector, or `None` when a champion scores it.
    /// Errors name the stream and the offending option.
    pub fn from_schema(schema: &StreamSchema) -> Result<Option<OnlineModel>, String> {
        let c: &DetectorConfig = &schema.detector;
        let d = schema.columns.len();
        let err = |e: radar_detect::DetectError| format!("stream `{}`: detector: {e}", schema.name);
        let seed = c.seed.unwrap_or(0);
        let detector: Box<dyn Detector> = match c.kind {
            DetectorKind::Champion => return Ok(None),
            DetectorKind::HalfSpaceTrees => {
                let defaults = HstParams::default();
                let limits = c.limits.as_ref().map(|l| {
                    schema
                        .columns
                        .iter()
                        .map(|col| l.get(col).map_or((0.0, 1.0), |[a, b]| (*a, *b)))
                        .collect()
                });
                Box::new(
                    HalfSpaceTrees::new(
                        HstParams {
                            n_trees: c.n_trees.unwrap_or(defaults.n_trees),
                            height: c.height.unwrap_or(defaults.height),
                            window_size: c.window_size.unwrap_or(defaults.window_size),
                            limits,
                            seed,
                        },
                        d,
                    )
                    .map_err(err)?,
                )
            }
            DetectorKind::RandomCutForest => {
                let defaults = RcfParams::default();
                Box::new(
                    RandomCutForest::new(RcfParams {
                        dimensions: d,
                        // Declared features usually carry history already
                        // (lags); raise this for a raw series.
                        shingle_size: c.shingle_size.unwrap_or(1),
                        num_trees: c.num_trees.unwrap_or(defaults.num_trees),
                        sample_size: c.sample_size.unwrap_or(defaults.sample_size),
                        time_decay: c.time_decay,
                        output_after: c.sample_size.unwrap_or(defaults.sample_size),
                        random_seed: seed,
                    })
                    .map_err(err)?,
                )
            }
        };
        Ok(Some(OnlineModel {
            kind: c.kind,
            threshold: c.threshold.unwrap_or(DEFAULT_THRESHOLD),
            learn: c.learn.unwrap_or_default(),
            detector,
            normaliser: ScoreNormaliser::new(c.warmup.unwrap_or(DEFAULT_WARMUP), NORMALISER_ALPHA),
        }))
    }

    /// How alerts and the API name the model.
    pub fn name(&self) -> &'static str {
        match self.kind {
            DetectorKind::HalfSpaceTrees => "online:half_space_trees",
            DetectorKind::RandomCutForest => "online:random_cut_forest",
            DetectorKind::Champion => "champion",
        }
    }

    /// Scores `row` (standardised, in [0, 1)), then learns it as the
    /// declaration says.
    pub fn observe(&mut self, row: &[f64]) -> Result<f64, radar_detect::DetectError> {
        let raw = self.detector.score_row(row)?;
        let score = self.normaliser.next(raw);
        let learn = match self.learn {
            LearnMode::All => true,
            LearnMode::Unflagged => score <= self.threshold,
            LearnMode::Never => false,
        };
        if learn {
            self.detector.update(row)?;
        }
        Ok(score)
    }

    /// True until the score history's warm-up is over: scores are 0 and
    /// nothing alerts yet (said, not silent: the API reports it).
    pub fn warming_up(&self) -> bool {
        !self.normaliser.is_warm()
    }

    /// The score `observe` would give, learning nothing.
    pub fn peek(&self, row: &[f64]) -> Result<f64, radar_detect::DetectError> {
        Ok(self.normaliser.peek(self.detector.score_row(row)?))
    }

    /// (column, share, above the data?) of the row's anomaly, largest
    /// share first; the direction when the detector can tell.
    pub fn explain(
        &self,
        row: &[f64],
    ) -> Result<Vec<(usize, f64, Option<bool>)>, radar_detect::DetectError> {
        let (shares, directions) = self.detector.explain_directed(row)?;
        let mut shares: Vec<(usize, f64, Option<bool>)> = shares
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i, s, directions.as_ref().and_then(|d| d.get(i).copied())))
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(shares)
    }

    /// The detector and the score statistics, for the checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.detector.to_bytes());
        self.normaliser.write(&mut w);
        w.into_bytes()
    }

    /// Restores what [`to_bytes`](Self::to_bytes) wrote, if it is the same
    /// kind of detector over as many columns.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(bytes);
        let detector =
            radar_detect::load(r.bytes().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let normaliser = ScoreNormaliser::read(&mut r).map_err(|e| e.to_string())?;
        r.finish().map_err(|e| e.to_string())?;
        if detector.kind() != self.detector.kind()
            || detector.n_features() != self.detector.n_features()
        {
            return Err(format!(
                "the checkpoint holds a {} over {} columns; the declaration asks for a {} over {}",
                detector.kind().name(),
                detector.n_features(),
                self.detector.kind().name(),
                self.detector.n_features()
            ));
        }
        self.detector = detector;
        self.normaliser = normaliser;
        Ok(())
    }
}
