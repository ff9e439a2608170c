//! A model bundle: everything a scorer needs, in one checksummed artifact —
//! the detector (any kind: its own model file, read back by
//! `radar_detect::load`), the stream and feature columns it was trained
//! on, the decision threshold, and reference distributions (for drift
//! checks). Bundles written when only Isolation Forests were bundled read
//! back unchanged: their detector slot is an Isolation Forest model file.

use radar_core::binary::{DecodeError, Envelope, Reader, Writer};
use radar_detect::Detector;
use serde::{Deserialize, Serialize};

const ENVELOPE: Envelope = Envelope {
    magic: *b"RADARBDL",
    what: "radar model bundle",
    version: 1,
};

/// Percentiles of each feature and of the score over the training rows
/// (bundles written before kept deciles; drift reads either).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reference {
    pub feature_quantiles: Vec<Vec<f64>>,
    pub score_quantiles: Vec<f64>,
}

impl Reference {
    /// Percentiles (0, 1, …, 100%) of each column of `rows` and of
    /// `scores`.
    pub fn of(rows: radar_core::MatrixView<'_>, scores: &[f64]) -> Reference {
        let q = |mut v: Vec<f64>| -> Vec<f64> {
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return Vec::new();
            }
            (0..=100)
                .map(|i| v[((v.len() - 1) as f64 * i as f64 / 100.0).round() as usize])
                .collect()
        };
        Reference {
            feature_quantiles: (0..rows.cols())
                .map(|c| q((0..rows.rows()).map(|r| rows.row(r)[c]).collect()))
                .collect(),
            score_quantiles: q(scores.to_vec()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    stream: String,
    columns: Vec<String>,
    threshold: f64,
    reference: Reference,
    trained: serde_json::Value,
    /// Whether a supervised part follows the detector (absent in bundles
    /// written before there could be one).
    #[serde(default)]
    supervised: bool,
}

/// One input's part in a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub input: String,
    pub share: f64,
    /// Above (true) or below the data, when the detector can tell.
    pub above: Option<bool>,
    pub value: f64,
}

/// The column name of the unsupervised score among a hybrid's inputs.
pub const UNSUPERVISED_SCORE: &str = "unsupervised_score";

/// A trained model ready to serve.
#[derive(Debug)]
pub struct Bundle {
    pub stream: String,
    pub columns: Vec<String>,
    pub threshold: f64,
    pub detector: Box<dyn Detector>,
    /// Trained on labelled events over the features and the detector's
    /// score; when present, the bundle's score is its probability.
    pub supervised: Option<Box<dyn Detector>>,
    pub reference: Reference,
    /// What it was trained on (snapshot, rows, parameters).
    pub trained: serde_json::Value,
}

impl Bundle {
    pub fn to_bytes(&self) -> Vec<u8> {
        let meta = Meta {
            stream: self.stream.clone(),
            columns: self.columns.clone(),
            threshold: self.threshold,
            reference: self.reference.clone(),
            trained: self.trained.clone(),
            supervised: self.supervised.is_some(),
        };
        let mut w = Writer::new();
        w.bytes(serde_json::to_string(&meta).unwrap_or_default().as_bytes());
        w.bytes(&self.detector.to_bytes());
        if let Some(s) = &self.supervised {
            w.bytes(&s.to_bytes());
        }
        ENVELOPE.seal(1, &w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, DecodeError> {
        let (_, payload) = ENVELOPE.open(bytes)?;
        let mut r = Reader::new(payload);
        let meta: Meta = serde_json::from_slice(r.bytes()?)
            .map_err(|e| DecodeError::Invalid(format!("bundle metadata: {e}")))?;
        let detector = radar_detect::load(r.bytes()?)
            .map_err(|e| DecodeError::Invalid(format!("detector: {e}")))?;
        let supervised = if meta.supervised {
            let s = radar_detect::load(r.bytes()?)
                .map_err(|e| DecodeError::Invalid(format!("supervised part: {e}")))?;
            if s.n_features() != meta.columns.len() + 1 {
                return Err(DecodeError::Invalid(format!(
                    "the supervised part takes {} inputs, expected the {} features and the score",
                    s.n_features(),
                    meta.columns.len()
                )));
            }
            Some(s)
        } else {
            None
        };
        r.finish()?;
        if detector.n_features() != meta.columns.len() {
            return Err(DecodeError::Invalid(format!(
                "the detector takes {} features, the bundle names {}",
                detector.n_features(),
                meta.columns.len()
            )));
        }
        if !meta.threshold.is_finite() {
            return Err(DecodeError::Invalid(format!(
                "the threshold {} is not a number",
                meta.threshold
            )));
        }
        Ok(Bundle {
            stream: meta.stream,
            columns: meta.columns,
            threshold: meta.threshold,
            detector,
            supervised,
            reference: meta.reference,
            trained: meta.trained,
        })
    }
}

impl Bundle {
    /// The score of one row: the supervised probability when there is a
    /// supervised part, else the detector's score.
    pub fn score_row(&self, row: &[f64]) -> Result<f64, radar_detect::DetectError> {
        let u = self.detector.score_row(row)?;
        match &self.supervised {
            None => Ok(u),
            Some(s) => {
                let mut with = Vec::with_capacity(row.len() + 1);
                with.extend_from_slice(row);
                with.push(u);
                s.score_row(&with)
            }
        }
    }

    pub fn score_batch(
        &self,
        rows: radar_core::MatrixView<'_>,
    ) -> Result<Vec<f64>, radar_detect::DetectError> {
        let u = self.detector.score_batch(rows)?;
        let Some(s) = &self.supervised else {
            return Ok(u);
        };
        let mut with = Vec::with_capacity(rows.cols() + 1);
        (0..rows.rows())
            .map(|i| {
                with.clear();
                with.extend_from_slice(rows.row(i));
                with.push(u[i]);
                s.score_row(&with)
            })
            .collect()
    }

    /// (input name, share, above?, value) of the row's score, largest
    /// share first; a hybrid's inputs are the feature columns and
    /// [`UNSUPERVISED_SCORE`].
    pub fn explain(&self, row: &[f64]) -> Result<Vec<Explained>, radar_detect::DetectError> {
        let mut inputs = row.to_vec();
        let ranked = match &self.supervised {
            None => self.detector.explain_ranked(row)?,
            Some(s) => {
                inputs.push(self.detector.score_row(row)?);
                s.explain_ranked(&inputs)?
            }
        };
        Ok(ranked
            .into_iter()
            .map(|(i, share, above)| Explained {
                input: self
                    .columns
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| UNSUPERVISED_SCORE.to_owned()),
                share,
                above,
                value: inputs[i],
            })
            .collect())
    }
}
