//! `radar.toml`: the storage root, the event log, and the streams. Layered
//! as built-in defaults, then the file, then `RADAR_*` environment
//! variables, then command-line flags. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use radar_core::schema::{StreamConfig, StreamSchema};

use crate::error::{PipelineError, Result};
use radar_log::EventLog;
use radar_log::embedded::{EmbeddedLog, Options, Retention};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub metadata: MetadataConfig,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
}

/// Where the registry, alerts, labels, keys and audit trail live.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// A PostgreSQL URL (`postgres://user@host:5432/radar`), shared by
    /// every worker of a deployment; or `RADAR_METADATA_URL`. Default: SQLite
    /// files in the local directory, for one machine.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Local directory or object-store URL (`s3://…`, `az://…`, `gs://…`)
    /// holding the lake and model artifacts. Default `./radar-data`.
    #[serde(default = "default_root")]
    pub root: String,
    /// Object-store options (`aws_endpoint`, `azure_storage_account_name`…).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Local directory for the embedded log and metadata. Default: the root
    /// when it is local, else `./radar-data`.
    pub local_dir: Option<PathBuf>,
}

fn default_root() -> String {
    "./radar-data".into()
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            root: default_root(),
            options: BTreeMap::new(),
            local_dir: None,
        }
    }
}

impl StorageConfig {
    pub fn local_dir(&self) -> PathBuf {
        match &self.local_dir {
            Some(d) => d.clone(),
            None if !self.root.contains("://") => PathBuf::from(&self.root),
            None => PathBuf::from("./radar-data"),
        }
    }

    pub fn options(&self) -> Vec<(String, String)> {
        self.options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    #[default]
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub kind: LogKind,
    /// Partitions of each stream's topic. Default 4.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Embedded log: bytes per segment file. Default 128 MiB.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// Embedded log: bytes kept per partition (oldest segments go).
    pub retention_bytes: Option<u64>,
    /// Embedded log: hours of records kept.
    pub retention_hours: Option<u64>,
    #[serde(default)]
    pub kafka: KafkaSection,
}

fn default_partitions() -> u32 {
    4
}
fn default_segment_bytes() -> u64 {
    128 << 20
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            kind: LogKind::Embedded,
            partitions: default_partitions(),
            segment_bytes: default_segment_bytes(),
            retention_bytes: None,
            retention_hours: None,
            kafka: KafkaSection::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// `host:port,…`
    pub brokers: Option<String>,
    /// Azure Event Hubs namespace connection string (or the environment
    /// variable `RADAR_EVENT_HUBS_CONNECTION_STRING`); sets brokers and
    /// security.
    pub event_hubs_connection_string: Option<String>,
    /// `plaintext` (default) or `sasl_ssl`.
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    pub username: Option<String>,
    /// Better given as `RADAR_KAFKA_PASSWORD`.
    pub password: Option<String>,
    pub replication_factor: Option<i32>,
    /// How long an append waits for the cluster before it fails (and
    /// ingest answers 503). Default 30000.
    pub delivery_timeout_ms: Option<u32>,
    /// How long a silent consumer-group member keeps its partitions: a
    /// crashed worker's partitions move to the others after it. Default
    /// 10000.
    pub session_timeout_ms: Option<u32>,
    /// How often members tell the group they live; below the session
    /// time-out. Default 3000.
    pub heartbeat_interval_ms: Option<u32>,
}

// By hand: a derived Debug would print the URL's password.
impl std::fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataConfig")
            .field(
                "url",
                &self
                    .url
                    .as_ref()
                    .map(|u| radar_registry::Target::Postgres(u.clone()).describe()),
            )
            .finish()
    }
}

impl Config {
    /// Reads `path` (or defaults when None), then applies `RADAR_*`
    /// environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(PipelineError::io(format!(
                    "cannot read config `{}`",
                    p.display()
                )))?;
                toml::from_str(&text)
                    .map_err(|e| PipelineError::input(format!("in `{}`: {e}", p.display())))?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("RADAR_DATA_DIR") {
            config.storage.root = v;
        }
        if let Ok(v) = std::env::var("RADAR_STORAGE_ROOT") {
            config.storage.root = v;
        }
        if let Ok(v) = std::env::var("RADAR_METADATA_URL") {
            config.metadata.url = Some(v);
        }
        if let Ok(v) = std::env::var("RADAR_KAFKA_BROKERS") {
            config.log.kafka.brokers = Some(v);
        }
        if let Ok(v) = std::env::var("RADAR_EVENT_HUBS_CONNECTION_STRING") {
            config.log.kafka.event_hubs_connection_string = Some(v);
        }
        if let Ok(v) = std::env::var("RADAR_KAFKA_PASSWORD") {
            config.log.kafka.password = Some(v);
        }
        if let Ok(v) = std::env::var("RADAR_LOG") {
            config.log.kind = match v.as_str() {
                "embedded" => LogKind::Embedded,
                "kafka" => LogKind::Kafka,
                other => {
                    return Err(PipelineError::input(format!(
                        "RADAR_LOG must be `embedded` or `kafka`, not `{other}`"
                    )));
                }
            };
        }
        Ok(config)
    }

    /// The validated declaration of `name` (or of the only stream).
    pub fn stream(&self, name: Option<&str>) -> Result<StreamSchema> {
        let (name, c) = match name {
            Some(n) => match self.streams.get(n) {
                Some(c) => (n.to_owned(), c.clone()),
                None if self.streams.is_empty() => {
                    return Err(PipelineError::input(format!(
                        "no streams are declared; pass --config with a [streams.{n}] table"
                    )));
                }
                None => {
                    return Err(PipelineError::NotFound(format!(
                        "stream `{n}` is not declared (declared: {})",
                        self.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            },
            None if self.streams.len() == 1 => {
                let (n, c) = self
                    .streams
                    .iter()
                    .next()
                    .ok_or_else(|| PipelineError::Internal("one stream".into()))?;
                (n.clone(), c.clone())
            }
            None if self.streams.is_empty() => {
                return Err(PipelineError::input(
                    "no streams are declared; pass --config with a [streams.NAME] table",
                ));
            }
            None => {
                return Err(PipelineError::input(
                    "several streams are declared; name one with --stream",
                ));
            }
        };
        Ok(c.build(&name)?)
    }

    /// Opens the configured event log.
    pub fn open_log(&self) -> Result<Arc<dyn EventLog>> {
        match self.log.kind {
            LogKind::Embedded => {
                let dir = self.storage.local_dir().join("log");
                let options = Options {
                    segment_bytes: self.log.segment_bytes,
                    retention: Retention {
                        max_bytes: self.log.retention_bytes,
                        max_age: self
                            .log
                            .retention_hours
                            .map(|h| std::time::Duration::from_secs(h * 3600)),
                    },
                };
                Ok(Arc::new(EmbeddedLog::open(&dir, options)?))
            }
            LogKind::Kafka => self.open_kafka(),
        }
    }

    #[cfg(feature = "kafka")]
    fn open_kafka(&self) -> Result<Arc<dyn EventLog>> {
        use radar_log::kafka::{KafkaConfig, KafkaLog, SaslMechanism, Secret, Security};
        let k = &self.log.kafka;
        let mut config = match (&k.event_hubs_connection_string, &k.brokers) {
            (Some(cs), _) => KafkaConfig::event_hubs(cs)?,
            (None, Some(b)) => KafkaConfig::plaintext(b.clone()),
            (None, None) => {
                return Err(PipelineError::input(
                    "log.kind = \"kafka\" needs log.kafka.brokers or an Event Hubs connection string",
                ));
            }
        };
        if k.security_protocol
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("sasl_ssl"))
        {
            let mechanism = match k
                .sasl_mechanism
                .as_deref()
                .unwrap_or("PLAIN")
                .to_ascii_uppercase()
                .as_str()
            {
                "PLAIN" => SaslMechanism::Plain,
                "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                other => {
                    return Err(PipelineError::input(format!(
                        "log.kafka.sasl_mechanism `{other}` is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    )));
                }
            };
            config.security = Security::SaslSsl {
                mechanism,
                username: k.username.clone().ok_or_else(|| {
                    PipelineError::input("log.kafka.username is needed for sasl_ssl")
                })?,
                password: Secret::new(k.password.clone().ok_or_else(|| {
                    PipelineError::input(
                        "log.kafka.password (or RADAR_KAFKA_PASSWORD) is needed for sasl_ssl",
                    )
                })?),
            };
        }
        if let Some(r) = k.replication_factor {
            config.replication_factor = r;
        }
        if let Some(t) = k.delivery_timeout_ms {
            config.delivery_timeout_ms = t;
        }
        if let Some(t) = k.session_timeout_ms {
            config.session_timeout_ms = t;
        }
        if let Some(t) = k.heartbeat_interval_ms {
            config.heartbeat_interval_ms = t;
        }
        if config.heartbeat_interval_ms >= config.session_timeout_ms {
            return Err(PipelineError::input(format!(
                "log.kafka.heartbeat_interval_ms ({}) must be below log.kafka.session_timeout_ms ({})",
                config.heartbeat_interval_ms, config.session_timeout_ms
            )));
        }
        Ok(Arc::new(KafkaLog::connect(config)?))
    }

    #[cfg(not(feature = "kafka"))]
    fn open_kafka(&self) -> Result<Arc<dyn EventLog>> {
        Err(PipelineError::input(
            "this radar was built without Kafka support; rebuild with `--features kafka`",
        ))
    }

    /// Where a metadata component lives: the configured PostgreSQL, else
    /// its SQLite `file` in the local directory.
    pub fn metadata_target(&self, file: &str) -> radar_registry::Target {
        match &self.metadata.url {
            Some(url) => radar_registry::Target::Postgres(url.clone()),
            None => radar_registry::Target::Sqlite(self.storage.local_dir().join(file)),
        }
    }

    /// The registry: its metadata in the metadata store, artifacts under
    /// the storage root.
    pub fn open_registry(&self) -> Result<radar_registry::Registry> {
        Ok(radar_registry::Registry::open(
            self.metadata_target("radar.db"),
            &self.storage.root,
            &self.storage.options(),
        )?)
    }

    /// The labels table and the index of captured event ids.
    pub fn open_labels(&self) -> Result<crate::labels::LabelStore> {
        crate::labels::LabelStore::open(self.metadata_target("labels.db"))
    }

    /// The API keys.
    pub fn open_keys(&self) -> Result<crate::access::KeyStore> {
        crate::access::KeyStore::open(self.metadata_target("keys.db"))
    }

    /// The hasher that places entities' feature state, keyed with the
    /// deployment's secret ([`crate::access::entity_hasher`]).
    pub fn entity_hasher(&self) -> Result<radar_core::hash::EntityHasher> {
        crate::access::entity_hasher(&self.storage.local_dir().join("entity.secret"))
    }

    /// The alerts table.
    pub fn open_alerts(&self) -> Result<crate::sinks::AlertStore> {
        Ok(crate::sinks::AlertStore::open(
            self.metadata_target("alerts.db"),
        )?)
    }

    pub fn open_lake(&self) -> Result<radar_lake::Lake> {
        Ok(radar_lake::Lake::open(
            &self.storage.root,
            &self.storage.options(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.storage.root, "./radar-data");
        assert_eq!(c.log.kind, LogKind::Embedded);
        assert_eq!(c.log.partitions, 4);
        let err = toml::from_str::<Config>("[log]\nparitions = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `paritions`"), "{err}");
        let err = toml::from_str::<Config>("[storage]\nroot = \"x\"\n[server]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `server`"), "{err}");
        let c: Config = toml::from_str("[storage]\nroot = \"s3://bucket/radar\"\n").unwrap();
        assert_eq!(c.storage.local_dir(), PathBuf::from("./radar-data"));
    }

    #[test]
    fn shipped_examples_load() {
        for name in [
            "transactions.toml",
            "transactions-raw.toml",
            "metrics.toml",
            "tabular.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(name);
            let c = Config::load(Some(&path)).unwrap();
            c.stream(None).unwrap();
        }
    }
}
