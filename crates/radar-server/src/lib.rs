//! Serving: the streaming scorer, alert sinks, metrics and the HTTP API.

pub mod alerts;
pub mod http;
pub mod metrics;
pub mod online;
pub mod scorer;

pub use radar_core::time::now_micros;
