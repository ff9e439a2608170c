//! The `radar` command: parse → call a library → print. The loop lives in
//! `radar-pipeline`, the HTTP API in `radar-server`.

pub mod cli;
pub mod cmd;

/// `radar.toml`, re-exported for the end-to-end tests.
pub use radar_pipeline::config;
