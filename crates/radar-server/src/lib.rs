//! Serving: the streaming scorer, alert sinks, metrics and the HTTP API.

pub mod alerts;
pub mod http;
pub mod metrics;
pub mod online;
pub mod scorer;

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
