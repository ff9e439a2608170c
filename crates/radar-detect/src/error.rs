use thiserror::Error;

use crate::codec::DecodeError;

/// Errors of fitting and scoring. Each says what was expected and what came.
#[derive(Debug, Error, PartialEq)]
pub enum DetectError {
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParam { name: &'static str, message: String },
    #[error(
        "row {row}, column {column}: value {value} is not finite (NaN and infinity cannot be scored)"
    )]
    NonFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("expected {expected} features per row, got {got}")]
    FeatureCount { expected: usize, got: usize },
    #[error("cannot fit on an empty data set")]
    Empty,
    #[error(transparent)]
    Decode(#[from] DecodeError),
}
