//! radar-log's integration tests, one binary: crash safety, faults (a full
//! disk), and the conformance suite on a real Kafka-protocol broker.

mod crash;
mod disk_full;
#[cfg(feature = "kafka")]
mod kafka;
