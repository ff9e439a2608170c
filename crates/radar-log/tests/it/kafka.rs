//! The conformance suite on a real Kafka-protocol broker on 127.0.0.1
//! (started by `scripts/test`, found through RADAR_KAFKA_BROKERS).
//! librdkafka's mock cluster was tried first: its admin API times out on
//! CreateTopics, which the suite needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use radar_log::EventLog;
use radar_log::conformance::{self, Harness};
use radar_log::kafka::{KafkaConfig, KafkaLog};

struct Kafka {
    brokers: String,
    prefix: String,
    names: AtomicU32,
}

impl Kafka {
    fn new(brokers: String) -> Kafka {
        Kafka {
            brokers,
            prefix: format!(
                "t{}-{}",
                std::process::id(),
                radar_core::hash::hash64(format!("{:?}", std::time::SystemTime::now()).as_bytes())
                    % 100_000
            ),
            names: AtomicU32::new(0),
        }
    }

    fn connect(&self) -> Arc<dyn EventLog> {
        let config = KafkaConfig {
            // Consumers join a group after about half the session timeout.
            session_timeout_ms: 6_000,
            heartbeat_interval_ms: 1_000,
            ..KafkaConfig::plaintext(self.brokers.clone())
        };
        Arc::new(KafkaLog::connect(config).unwrap())
    }
}

impl Harness for Kafka {
    fn log(&self) -> Arc<dyn EventLog> {
        self.connect()
    }
    fn reopen(&self) -> Arc<dyn EventLog> {
        self.connect()
    }
    fn unique(&self, base: &str) -> String {
        format!(
            "{}-{base}-{}",
            self.prefix,
            self.names.fetch_add(1, Ordering::Relaxed)
        )
    }
    fn settle(&self) -> Duration {
        Duration::from_secs(40)
    }
    fn uses_partition_for(&self) -> bool {
        false
    }
}

#[test]
fn conformance_on_a_kafka_protocol_broker() {
    let Ok(brokers) = std::env::var("RADAR_KAFKA_BROKERS") else {
        if std::env::var_os("RADAR_SKIP_KAFKA_BROKER").is_some() {
            eprintln!(
                "no broker: the Kafka conformance run was NOT checked (RADAR_SKIP_KAFKA_BROKER set)"
            );
            return;
        }
        panic!(
            "set RADAR_KAFKA_BROKERS to a Kafka-protocol broker (scripts/test starts one), or RADAR_SKIP_KAFKA_BROKER=1"
        );
    };
    conformance::run_all(&Kafka::new(brokers));
}
