//! A stream scored by a detector that learns as events flow (the stream
//! declaration's `[detector]` names Half-Space Trees or Random Cut Forest)
//! instead of a champion from the registry. Its state is part of the
//! scorer's checkpoint, so a restart resumes where it stopped.

use radar_core::binary::{Reader, Writer};
use radar_core::schema::{Serve, StreamSchema};
use radar_detect::normal::ScoreNormaliser;
use radar_detect::{Detector, LearnPolicy};

use crate::error::{PipelineError, Result};

const DEFAULT_THRESHOLD: f64 = 0.9;
const DEFAULT_WARMUP: u64 = 500;
/// Memory of the score statistics: about 1/α events.
const NORMALISER_ALPHA: f64 = 0.002;

pub struct OnlineModel {
    /// `online:<kind>`, as alerts and the API name it.
    name: String,
    pub threshold: f64,
    learn: LearnPolicy,
    detector: Box<dyn Detector>,
    normaliser: ScoreNormaliser,
}

impl std::fmt::Debug for OnlineModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineModel")
            .field("name", &self.name)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl OnlineModel {
    /// The stream's online detector, or `None` when the registry's champion
    /// scores it. Errors name the stream and the offending option.
    pub fn from_schema(schema: &StreamSchema) -> Result<Option<OnlineModel>> {
        let c = &schema.detector;
        if c.serve() != Serve::Online {
            return Ok(None);
        }
        let detector = crate::detectors::build(c, &schema.columns).map_err(|e| {
            PipelineError::input(format!("stream `{}`: detector: {e}", schema.name))
        })?;
        let threshold = c.threshold.unwrap_or(DEFAULT_THRESHOLD);
        let learn = match c.learn.unwrap_or_default() {
            radar_core::schema::LearnMode::All => LearnPolicy::All,
            radar_core::schema::LearnMode::Unflagged => LearnPolicy::Unflagged { threshold },
            radar_core::schema::LearnMode::Never => LearnPolicy::Never,
        };
        Ok(Some(OnlineModel {
            name: format!("online:{}", c.kind.name()),
            threshold,
            learn,
            detector,
            normaliser: ScoreNormaliser::new(c.warmup.unwrap_or(DEFAULT_WARMUP), NORMALISER_ALPHA),
        }))
    }

    /// How alerts and the API name the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Scores `row` (standardised, in [0, 1)), then learns it as the
    /// declaration says.
    pub fn observe(&mut self, row: &[f64]) -> std::result::Result<f64, radar_detect::DetectError> {
        let raw = self.detector.score_row(row)?;
        let score = self.normaliser.next(raw);
        if self.learn.learns(score) {
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
    pub fn peek(&self, row: &[f64]) -> std::result::Result<f64, radar_detect::DetectError> {
        Ok(self.normaliser.peek(self.detector.score_row(row)?))
    }

    /// (column, share, above the data?) of the row's anomaly, largest
    /// share first; the direction when the detector can tell.
    pub fn explain(
        &self,
        row: &[f64],
    ) -> std::result::Result<Vec<(usize, f64, Option<bool>)>, radar_detect::DetectError> {
        self.detector.explain_ranked(row)
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
    pub fn restore(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
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
