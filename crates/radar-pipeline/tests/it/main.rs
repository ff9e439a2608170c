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

/// Scorer checkpoints under `dir` for `stream`, as `radar up` keeps them.
fn checkpoints(dir: &std::path::Path, stream: &str) -> radar_pipeline::state::Checkpoints {
    radar_pipeline::state::Checkpoints::open_alone(
        dir.to_str().unwrap(),
        &[],
        stream,
        radar_pipeline::pipeline::SCORER_GROUP,
    )
    .unwrap()
}
