//! radar's HTTP API, in front of a running [`radar_pipeline::pipeline::Pipeline`]:
//! ingest, scoring, alerts, the registry, health and metrics. Handlers are
//! a few lines each: parse, call the pipeline, answer; [`error`] maps every
//! failure to its status in one place.

pub mod api;
pub mod dashboard;
pub mod door;
pub mod error;
pub mod http;

pub use radar_core::time::now_micros;
