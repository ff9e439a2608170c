//! The log on Kafka (Apache Kafka, Redpanda, Confluent, MSK, and Azure Event
//! Hubs through its Kafka endpoint), with librdkafka.
//!
//! Record timestamps travel as Kafka timestamps (milliseconds) and, exactly,
//! in a `radar.ts_us` header that reads strip again. Keyed records use the
//! Java-compatible `murmur2_random` partitioner, so a key keeps its partition
//! whichever client produced it.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

use crate::{Consumer, EventLog, LogError, Record, Stored, check_name};

const TS_HEADER: &str = "radar.ts_us";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    Plaintext,
    SaslSsl {
        mechanism: SaslMechanism,
        username: String,
        password: Secret,
    },
}

/// How to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub security: Security,
    pub client_id: String,
    pub replication_factor: i32,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    /// How long an append waits for the cluster (librdkafka's
    /// `message.timeout.ms`): a broker restarting within it is ridden out;
    /// beyond it the append fails and its records are not acknowledged.
    pub delivery_timeout_ms: u32,
    /// Further librdkafka properties, passed as they are.
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn plaintext(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            security: Security::Plaintext,
            client_id: "radar".into(),
            replication_factor: 1,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 3_000,
            delivery_timeout_ms: 30_000,
            extra: Vec::new(),
        }
    }

    /// Azure Event Hubs' Kafka endpoint from a namespace connection string
    /// (`Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=…;
    /// SharedAccessKey=…`): bootstrap `NS.servicebus.windows.net:9093`,
    /// SASL_SSL with PLAIN, user `$ConnectionString`, the string as password.
    pub fn event_hubs(connection_string: &str) -> Result<Self, LogError> {
        let mut endpoint = None;
        let (mut key_name, mut key) = (false, false);
        for part in connection_string
            .trim()
            .split(';')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k.trim() {
                "Endpoint" => endpoint = Some(v.trim().to_owned()),
                "SharedAccessKeyName" => key_name = !v.is_empty(),
                "SharedAccessKey" => key = !v.is_empty(),
                _ => {}
            }
        }
        // Errors name what is missing, never the key.
        let endpoint = endpoint.ok_or_else(|| {
            LogError::Config("Event Hubs connection string has no `Endpoint=sb://…`".into())
        })?;
        let host = endpoint
            .strip_prefix("sb://")
            .map(|h| h.trim_end_matches('/'))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| LogError::Config(format!("Event Hubs endpoint `{endpoint}` is not `sb://NAMESPACE.servicebus.windows.net/`")))?;
        if !key_name || !key {
            return Err(LogError::Config(
                "Event Hubs connection string needs SharedAccessKeyName and SharedAccessKey".into(),
            ));
        }
        Ok(KafkaConfig {
            brokers: format!("{host}:9093"),
            security: Security::SaslSsl {
                mechanism: SaslMechanism::Plain,
                username: "$ConnectionString".into(),
                password: Secret::new(connection_string.trim()),
            },
            ..KafkaConfig::plaintext("")
        })
    }

    /// The librdkafka properties (the password among them, so never log
    /// these; log `self` instead).
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", &self.client_id);
        match &self.security {
            Security::Plaintext => {
                c.set("security.protocol", "PLAINTEXT");
            }
            Security::SaslSsl {
                mechanism,
                username,
                password,
            } => {
                c.set("security.protocol", "SASL_SSL");
                c.set("sasl.mechanism", mechanism.name());
                c.set("sasl.username", username);
                c.set("sasl.password", password.expose());
            }
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

fn kafka(e: KafkaError) -> LogError {
    LogError::Kafka(e.to_string())
}

/// The log on a Kafka cluster.
pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer,
    meta: BaseConsumer,
    reader: Mutex<BaseConsumer>,
}

impl KafkaLog {
    pub fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        let mut p = config.client_config();
        p.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .set("compression.type", "zstd");
        let producer: FutureProducer = p.create().map_err(kafka)?;
        let meta: BaseConsumer = config.client_config().create().map_err(kafka)?;
        let mut r = config.client_config();
        r.set("group.id", "radar-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let reader: BaseConsumer = r.create().map_err(kafka)?;
        Ok(KafkaLog {
            config,
            producer,
            meta,
            reader: Mutex::new(reader),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }
}

fn to_stored(m: &rdkafka::message::BorrowedMessage<'_>) -> Stored {
    let mut timestamp = m.timestamp().to_millis().unwrap_or(0) * 1000;
    let mut headers = Vec::new();
    if let Some(hs) = m.headers() {
        for h in hs.iter() {
            let value = h.value.unwrap_or_default();
            if h.key == TS_HEADER && value.len() == 8 {
                let mut a = [0u8; 8];
                a.copy_from_slice(value);
                timestamp = i64::from_le_bytes(a);
            } else {
                headers.push((h.key.to_owned(), value.to_vec()));
            }
        }
    }
    Stored {
        partition: m.partition() as u32,
        offset: m.offset() as u64,
        record: Record {
            key: m.key().map(bytes::Bytes::copy_from_slice),
            value: bytes::Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            timestamp,
            headers,
        },
    }
}

impl EventLog for KafkaLog {
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        check_name(topic)?;
        let admin: AdminClient<DefaultClientContext> =
            self.config.client_config().create().map_err(kafka)?;
        let new = NewTopic::new(
            topic,
            partitions as i32,
            TopicReplication::Fixed(self.config.replication_factor),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Timeout::After(TIMEOUT)));
        let results =
            futures::executor::block_on(admin.create_topics([&new], &opts)).map_err(kafka)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(LogError::Kafka(format!("creating topic `{name}`: {code}")));
                }
            }
        }
        // Wait until the topic's partitions are visible.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.partitions(topic) {
                Ok(n) if n == partitions => return Ok(()),
                Ok(n) if n > 0 => {
                    return Err(LogError::PartitionMismatch {
                        topic: topic.to_owned(),
                        existing: n,
                        requested: partitions,
                    });
                }
                _ if Instant::now() > deadline => {
                    return Err(LogError::Kafka(format!("topic `{topic}` did not appear")));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        let md = self
            .meta
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(kafka)?;
        let t = md.topics().iter().find(|t| t.name() == topic);
        match t {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().len() as u32)
            }
            _ => Err(LogError::NoTopic(topic.to_owned())),
        }
    }

    fn append(&self, topic: &str, records: &[Record]) -> Result<Vec<(u32, u64)>, LogError> {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let ts = r.timestamp.to_le_bytes();
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len() + 1).insert(Header {
                key: TS_HEADER,
                value: Some(&ts[..]),
            });
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(&v[..]),
                });
            }
            let mut rec = FutureRecord::to(topic)
                .payload(&r.value[..])
                .timestamp(r.timestamp.div_euclid(1000))
                .headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(&k[..]);
            }
            // A full local queue: let deliveries drain, then retry.
            loop {
                match self.producer.send_result(rec) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(kafka(e)),
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for f in pending {
            match futures::executor::block_on(f) {
                Ok(Ok(d)) => out.push((d.partition as u32, d.offset as u64)),
                Ok(Err((e, _))) => return Err(kafka(e)),
                Err(_) => return Err(LogError::Kafka("the producer dropped a delivery".into())),
            }
        }
        Ok(out)
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<Stored>, LogError> {
        let reader = self
            .reader
            .lock()
            .map_err(|_| LogError::Kafka("reader lock poisoned".into()))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(offset as i64))
            .map_err(kafka)?;
        reader.assign(&tpl).map_err(kafka)?;
        let mut out = Vec::new();
        // Until `max`, or the partition stays quiet (the high watermark is
        // not trusted: some Kafka-protocol brokers report it wrong).
        let mut wait = Duration::from_secs(2);
        while out.len() < max {
            match reader.poll(wait) {
                Some(Ok(m)) => {
                    out.push(to_stored(&m));
                    wait = Duration::from_millis(300);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(e)) => return Err(kafka(e)),
                None => break,
            }
        }
        Ok(out)
    }

    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError> {
        let (lo, hi) = self
            .meta
            .fetch_watermarks(topic, partition as i32, TIMEOUT)
            .map_err(kafka)?;
        Ok((lo.max(0) as u64, hi.max(0) as u64))
    }

    fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError> {
        check_name(group)?;
        let mut c = self.config.client_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.config.session_timeout_ms.to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                self.config.heartbeat_interval_ms.to_string(),
            );
        let consumer: BaseConsumer<Generations> = c
            .create_with_context(Generations {
                generation: AtomicU64::new(0),
                group: group.to_owned(),
                topic: topic.to_owned(),
                revoke: std::sync::Mutex::new(None),
            })
            .map_err(kafka)?;
        consumer.subscribe(&[topic]).map_err(kafka)?;
        Ok(Box::new(KafkaConsumer {
            consumer,
            topic: topic.to_owned(),
        }))
    }

    fn committed(&self, topic: &str, group: &str, partition: u32) -> Result<Option<u64>, LogError> {
        let mut c = self.config.client_config();
        c.set("group.id", group).set("enable.auto.commit", "false");
        let consumer: BaseConsumer = c.create().map_err(kafka)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition as i32);
        let got = consumer.committed_offsets(tpl, TIMEOUT).map_err(kafka)?;
        Ok(got
            .find_partition(topic, partition as i32)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as u64),
                _ => None,
            }))
    }
}

/// An error the client cannot recover from by itself (librdkafka's fatal
/// errors, e.g. a fenced idempotent producer); the others pass.
fn is_fatal(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
}

/// Counts the assignments a group consumer receives (rebalance callbacks
/// run inside `poll`), and says each move.
struct Generations {
    generation: AtomicU64,
    group: String,
    topic: String,
    revoke: std::sync::Mutex<Option<crate::RevokeHook>>,
}

impl ClientContext for Generations {}

impl ConsumerContext for Generations {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Partitions taken in a rebalance (not lost with the membership,
        // when another member may hold them already): the caller saves
        // them and their offsets are committed before they move.
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        if consumer.assignment_lost() {
            return;
        }
        let Ok(mut hook) = self.revoke.lock() else {
            return;
        };
        let Some(hook) = hook.as_mut() else { return };
        let revoked: Vec<u32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect();
        if revoked.is_empty() {
            return;
        }
        let positions = hook(&revoked);
        if positions.is_empty() {
            return;
        }
        let mut commit = TopicPartitionList::new();
        for (p, o) in positions {
            if let Err(e) =
                commit.add_partition_offset(&self.topic, p as i32, Offset::Offset(o as i64))
            {
                tracing::warn!(group = %self.group, error = %e, "committing revoked partitions");
                return;
            }
        }
        if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
            // Their checkpoints hold the offsets: the next holder skips
            // what they cover.
            tracing::warn!(group = %self.group, error = %e, "committing revoked partitions failed");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Said in the log: how long a crashed worker's partitions took to
        // move is read from these lines.
        let partitions = |tpl: &TopicPartitionList| -> Vec<i32> {
            tpl.elements().iter().map(|e| e.partition()).collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.generation.fetch_add(1, Ordering::Relaxed);
                tracing::info!(group = %self.group, partitions = ?partitions(tpl), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(group = %self.group, partitions = ?partitions(tpl), "partitions revoked");
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "rebalance failed");
            }
        }
    }
}

/// A commit refused because the member is no longer in the group's
/// current generation.
fn commit_error(e: KafkaError) -> LogError {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::UnknownMemberId | C::IllegalGeneration | C::RebalanceInProgress) => {
            LogError::Rebalanced(e.to_string())
        }
        _ => kafka(e),
    }
}

struct KafkaConsumer {
    consumer: BaseConsumer<Generations>,
    topic: String,
}

impl Consumer for KafkaConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Stored>, LogError> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        // librdkafka reports a lost broker as an error event per attempt
        // and reconnects by itself. Returning at the first one would leave
        // the rest queued, one drained per retry of the caller: the
        // consumer would report a broker down long after it came back
        // (the regression test `kafka_broker_restart_loses_and_doubles_nothing`).
        // So errors are drained within the call, and reported only when
        // nothing else came.
        let mut error = None;
        while out.len() < max {
            // After the first record, only take what is already here.
            let wait = if out.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                Some(Ok(m)) => out.push(to_stored(&m)),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if is_fatal(&e) => return Err(kafka(e)),
                Some(Err(e)) => error = Some(e),
                None => break,
            }
            if out.is_empty() && Instant::now() >= deadline {
                break;
            }
        }
        match error {
            Some(e) if out.is_empty() => Err(kafka(e)),
            _ => Ok(out),
        }
    }

    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<(), LogError> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in positions {
            tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(o as i64))
                .map_err(kafka)?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(commit_error)
    }

    fn assignment(&mut self) -> Result<Vec<u32>, LogError> {
        let tpl = self.consumer.assignment().map_err(kafka)?;
        let mut parts: Vec<u32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect();
        parts.sort();
        Ok(parts)
    }

    fn generation(&mut self) -> Result<u64, LogError> {
        Ok(self.consumer.context().generation.load(Ordering::Relaxed))
    }

    fn on_revoke(&mut self, hook: crate::RevokeHook) {
        if let Ok(mut slot) = self.consumer.context().revoke.lock() {
            *slot = Some(hook);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: &str = "Endpoint=sb://radar-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleQ==";

    #[test]
    fn event_hubs_connection_strings_map_to_sasl_ssl() {
        let c = KafkaConfig::event_hubs(CS).unwrap();
        assert_eq!(c.brokers, "radar-ns.servicebus.windows.net:9093");
        let Security::SaslSsl {
            mechanism,
            username,
            password,
        } = &c.security
        else {
            panic!("expected SASL_SSL")
        };
        assert_eq!(*mechanism, SaslMechanism::Plain);
        assert_eq!(username, "$ConnectionString");
        assert_eq!(password.expose(), CS);
        let props = c.client_config();
        assert_eq!(props.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(props.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(props.get("sasl.username"), Some("$ConnectionString"));
        assert_eq!(
            props.get("bootstrap.servers"),
            Some("radar-ns.servicebus.windows.net:9093")
        );
    }

    #[test]
    fn the_key_never_shows() {
        let c = KafkaConfig::event_hubs(CS).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("c2VjcmV0LWtleQ"), "{shown}");
        assert!(shown.contains("Secret(***)"));
        let err = KafkaConfig::event_hubs(
            "Endpoint=https://x/;SharedAccessKeyName=n;SharedAccessKey=c2VjcmV0LWtleQ==",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0LWtleQ"), "{err}");
        let err = KafkaConfig::event_hubs(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("SharedAccessKey"), "{err}");
        assert!(KafkaConfig::event_hubs("nothing").is_err());
    }

    #[test]
    fn scram_is_configurable() {
        let c = KafkaConfig {
            security: Security::SaslSsl {
                mechanism: SaslMechanism::ScramSha512,
                username: "u".into(),
                password: Secret::new("p"),
            },
            ..KafkaConfig::plaintext("b:9092")
        };
        assert_eq!(
            c.client_config().get("sasl.mechanism"),
            Some("SCRAM-SHA-512")
        );
    }
}
