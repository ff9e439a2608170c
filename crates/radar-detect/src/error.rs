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

/// An invalid-parameter error naming the parameter.
pub(crate) fn invalid(name: &'static str, message: impl Into<String>) -> DetectError {
    DetectError::InvalidParam {
        name,
        message: message.into(),
    }
}

/// A row to score or learn: `expected` values, all finite.
pub(crate) fn check_row(row: &[f64], expected: usize) -> Result<(), DetectError> {
    if row.len() != expected {
        return Err(DetectError::FeatureCount {
            expected,
            got: row.len(),
        });
    }
    if let Some(column) = row.iter().position(|v| !v.is_finite()) {
        return Err(DetectError::NonFinite {
            row: 0,
            column,
            value: row[column],
        });
    }
    Ok(())
}
