//! radar-pipeline's integration tests, one binary: the scorer over real
//! logs with online detectors and champions, and the alert sinks against
//! real services.

mod labels;
mod metadata;
mod mlflow;
mod online;
mod retrain;
mod rollout;
mod sinks;
