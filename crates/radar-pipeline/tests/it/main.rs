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

/// A scorer's options over a log written before it starts (all of it
/// alerts), checkpointing under `dir` every `every`.
fn scorer_options(
    dir: &std::path::Path,
    stream: &str,
    every: std::time::Duration,
) -> radar_pipeline::scorer::ScorerOptions {
    radar_pipeline::scorer::ScorerOptions {
        group: "scorer".into(),
        checkpoints: checkpoints(dir, stream),
        legacy_checkpoint: None,
        checkpoint_every: every,
        explain_top: 3,
        labels: None,
        registry: None,
        alerts_from: Some(i64::MIN),
    }
}
