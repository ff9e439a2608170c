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

/// Deciles of each feature and of the score over the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reference {
    pub feature_quantiles: Vec<Vec<f64>>,
    pub score_quantiles: Vec<f64>,
}

impl Reference {
    /// Deciles (0, 10, …, 100%) of each column of `rows` and of `scores`.
    pub fn of(rows: radar_core::MatrixView<'_>, scores: &[f64]) -> Reference {
        let q = |mut v: Vec<f64>| -> Vec<f64> {
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return Vec::new();
            }
            (0..=10)
                .map(|i| v[((v.len() - 1) as f64 * i as f64 / 10.0).round() as usize])
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
}

/// A trained model ready to serve.
#[derive(Debug)]
pub struct Bundle {
    pub stream: String,
    pub columns: Vec<String>,
    pub threshold: f64,
    pub detector: Box<dyn Detector>,
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
        };
        let mut w = Writer::new();
        w.bytes(serde_json::to_string(&meta).unwrap_or_default().as_bytes());
        w.bytes(&self.detector.to_bytes());
        ENVELOPE.seal(1, &w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, DecodeError> {
        let (_, payload) = ENVELOPE.open(bytes)?;
        let mut r = Reader::new(payload);
        let meta: Meta = serde_json::from_slice(r.bytes()?)
            .map_err(|e| DecodeError::Invalid(format!("bundle metadata: {e}")))?;
        let detector = radar_detect::load(r.bytes()?)
            .map_err(|e| DecodeError::Invalid(format!("detector: {e}")))?;
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
            reference: meta.reference,
            trained: meta.trained,
        })
    }
}
