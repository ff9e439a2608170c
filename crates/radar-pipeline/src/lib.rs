//! radar's loop as a library, between the registry and the server: what
//! `radar up`, `radar demo`, the tests and the benchmarks all call.
//!
//! - [`config`]: `radar.toml` (storage, log, streams), layered defaults →
//!   file → environment, validated before anything opens;
//! - [`events`]: the one reader of event files (JSON lines, CSV, gzip);
//! - [`ingest`]: files into the log, resumable, never doubling a record;
//! - [`train`]: lake → the one feature engine → split → fit → evaluate →
//!   register → promote, behind a [`train::TrainSpec`] checked before I/O;
//!   [`retrain`]: a candidate trained and gated against the champion;
//!   [`rollout`]: the challenger shadowed, canaried, promoted or rolled
//!   back;
//! - [`evaluate`]: what every evaluation shares (seed loops, time splits,
//!   recall by kind, summaries);
//! - [`scorer`]: the streaming scorer (features, detector, decision,
//!   alerts, checkpoints); [`online`]: detectors learning in the scorer;
//! - [`sinks`]: where alerts go, one trait, one folder per sink;
//! - [`mlflow`]: the registry exported to an MLflow tracking server;
//! - [`metrics`]: the counters every component keeps; [`drift`]: the
//!   served model's live windows against its reference profile;
//! - [`access`]: API keys and roles, stored hashed;
//! - [`pipeline`]: [`pipeline::Pipeline::start`] wires capture, the scorer,
//!   the model watch and the sinks for one stream.
//!
//! Nothing here speaks HTTP (that is `radar-server`) or parses a command
//! line (that is `radar`).

pub mod access;
pub mod capture;
pub mod config;
pub mod data;
pub mod demo;
pub mod detectors;
pub mod drift;
pub mod error;
pub mod evaluate;
pub mod events;
pub mod history;
pub mod hybrid;
pub mod ingest;
pub mod labels;
pub mod metrics;
pub mod mlflow;
pub mod nab;
pub mod online;
pub mod params;
pub mod pipeline;
pub mod recent;
pub mod retrain;
pub mod rollout;
pub mod scorer;
pub mod sinks;
pub mod state;
pub mod train;

pub use config::Config;
pub use error::{ErrorKind, PipelineError};
