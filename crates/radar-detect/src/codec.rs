//! Model files: radar's checksummed container ([`radar_core::binary`]) with
//! the `RADARMDL` magic and a kind per detector.

use radar_core::binary::Envelope;
pub use radar_core::binary::{DecodeError, Reader, Writer};

pub const FORMAT_VERSION: u16 = 1;

const ENVELOPE: Envelope = Envelope {
    magic: *b"RADARMDL",
    what: "radar model",
    version: FORMAT_VERSION,
};

/// What a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ModelKind {
    IsolationForest = 1,
    HalfSpaceTrees = 2,
    RandomCutForest = 3,
    Gbdt = 4,
    JointTail = 5,
    ExtendedIsolationForest = 6,
    Ensemble = 7,
}

impl ModelKind {
    fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(ModelKind::IsolationForest),
            2 => Some(ModelKind::HalfSpaceTrees),
            3 => Some(ModelKind::RandomCutForest),
            4 => Some(ModelKind::Gbdt),
            5 => Some(ModelKind::JointTail),
            6 => Some(ModelKind::ExtendedIsolationForest),
            7 => Some(ModelKind::Ensemble),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::IsolationForest => "isolation_forest",
            ModelKind::HalfSpaceTrees => "half_space_trees",
            ModelKind::RandomCutForest => "random_cut_forest",
            ModelKind::Gbdt => "gradient_boosted_trees",
            ModelKind::JointTail => "joint_tail",
            ModelKind::ExtendedIsolationForest => "extended_isolation_forest",
            ModelKind::Ensemble => "rank_ensemble",
        }
    }
}

/// Wraps a payload into a model file.
pub fn seal(kind: ModelKind, payload: &[u8]) -> Vec<u8> {
    ENVELOPE.seal(kind as u16, payload)
}

/// Checks a model file and returns its kind and payload.
pub fn open(bytes: &[u8]) -> Result<(ModelKind, &[u8]), DecodeError> {
    let (kind, payload) = ENVELOPE.open(bytes)?;
    let kind = ModelKind::from_u16(kind).ok_or(DecodeError::UnknownKind(kind))?;
    Ok((kind, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_returns_the_payload() {
        let file = seal(ModelKind::IsolationForest, b"hello");
        let (kind, payload) = open(&file).unwrap();
        assert_eq!(kind, ModelKind::IsolationForest);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn foreign_files_and_unknown_kinds_are_errors() {
        assert_eq!(
            open(b"PK\x03\x04zipfile").unwrap_err().to_string(),
            "not a radar model file (its first bytes are not `RADARMDL`)"
        );
        let unknown = ENVELOPE.seal(77, b"x");
        assert_eq!(open(&unknown).unwrap_err(), DecodeError::UnknownKind(77));
    }
}
