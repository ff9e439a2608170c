//! Detectors, explanations and evaluation metrics. Pure computation: no I/O,
//! no async; parallelism through rayon.

pub mod codec;
mod error;
pub mod iforest;
pub mod metrics;
pub mod hst;
pub mod nab;
pub mod rcf;

pub use error::DetectError;
pub use iforest::{Contamination, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples};
