//! The streaming scorer: a consumer of the stream's topic that computes
//! features (incremental driver), scores with the `champion`, decides
//! against its threshold and raises alerts.
//!
//! Feature state is checkpointed together with the log positions it covers
//! (one file, written atomically) before the group's offsets are committed;
//! on restart records before the checkpoint's positions are skipped, so
//! feature state counts every event exactly once, while alerts of replayed
//! events are deduplicated by the alerts table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use radar_core::Matrix;
use radar_core::backoff::{Retry, Transient};
use radar_core::binary::{Envelope, Reader, Writer};
use radar_core::decode::Decoder;
use radar_core::features::FeatureEngine;
use radar_core::health::Health;
use radar_core::schema::StreamSchema;
use radar_core::time::{format_rfc3339, now_micros};
use radar_log::EventLog;
use radar_registry::{Bundle, Registry};

use crate::alerts::{Alert, Contribution, Sinks, direction_name};
use crate::metrics::Metrics;
use crate::online::OnlineModel;

/// The model being served.
pub struct Served {
    pub name: String,
    pub version: i64,
    pub bundle: Bundle,
}

/// What the scorer shares with the HTTP API.
#[derive(Clone)]
pub struct Shared {
    pub schema: StreamSchema,
    pub engine: Arc<RwLock<FeatureEngine>>,
    pub model: Arc<ArcSwapOption<Served>>,
    /// Set when the declaration names an online detector: it scores the
    /// stream instead of the champion.
    pub online: Option<Arc<Mutex<OnlineModel>>>,
    pub metrics: Arc<Metrics>,
    /// What capture, the scorer and the sinks last said about themselves.
    pub health: Arc<Health>,
}

const CHECKPOINT: Envelope = Envelope {
    magic: *b"RADARSCP",
    what: "radar scorer checkpoint",
    version: 1,
};

pub struct ScorerOptions {
    pub group: String,
    /// Where the checkpoint file lives.
    pub checkpoint: PathBuf,
    pub checkpoint_every: Duration,
    /// Top contributions attached to an alert.
    pub explain_top: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Log(#[from] radar_log::LogError),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Writing the checkpoint failed (a full disk): the next one may pass.
    #[error("checkpoint: {0}")]
    CheckpointWrite(String),
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertError),
    #[error("scoring: {0}")]
    Detect(String),
}

impl radar_core::backoff::Transient for ScorerError {
    fn is_transient(&self) -> bool {
        match self {
            ScorerError::Log(e) => e.is_transient(),
            ScorerError::CheckpointWrite(_) => true,
            ScorerError::Alerts(e) => e.is_transient(),
            ScorerError::Checkpoint(_) | ScorerError::Detect(_) => false,
        }
    }
}

/// Loads the checkpoint, if any: (engine state, next offset per partition)
/// and the online detector's state.
fn load_checkpoint(
    path: &PathBuf,
    engine: &mut FeatureEngine,
    online: Option<&Mutex<OnlineModel>>,
) -> Result<BTreeMap<u32, u64>, ScorerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(ScorerError::Checkpoint(format!(
                "reading `{}`: {e}",
                path.display()
            )));
        }
    };
    let err = |e: String| ScorerError::Checkpoint(format!("`{}`: {e}", path.display()));
    let (_, payload) = CHECKPOINT.open(&bytes).map_err(|e| err(e.to_string()))?;
    let mut r = Reader::new(payload);
    let positions: BTreeMap<u32, u64> =
        serde_json::from_slice(r.bytes().map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    engine
        .restore(r.bytes().map_err(|e| err(e.to_string()))?)
        .map_err(|e| err(e.to_string()))?;
    // Checkpoints written before online detectors end here.
    let model = if r.remaining() > 0 {
        r.bytes().map_err(|e| err(e.to_string()))?
    } else {
        &[]
    };
    match (online, model.is_empty()) {
        (Some(online), false) => online
            .lock()
            .map_err(|_| err("online model lock poisoned".into()))?
            .restore(model)
            .map_err(err)?,
        (Some(_), true) if !positions.is_empty() => {
            return Err(err(
                "it has no online detector state, but the stream now declares one; \
                 remove the checkpoint to rescore the stream from the start"
                    .into(),
            ));
        }
        _ => {}
    }
    Ok(positions)
}

fn save_checkpoint(
    path: &PathBuf,
    engine: &FeatureEngine,
    online: Option<&Mutex<OnlineModel>>,
    positions: &BTreeMap<u32, u64>,
) -> Result<(), ScorerError> {
    let mut w = Writer::new();
    w.bytes(
        serde_json::to_string(positions)
            .unwrap_or_default()
            .as_bytes(),
    );
    w.bytes(&engine.checkpoint());
    let model = match online {
        Some(m) => m
            .lock()
            .map_err(|_| ScorerError::Checkpoint("online model lock poisoned".into()))?
            .to_bytes(),
        None => Vec::new(),
    };
    w.bytes(&model);
    let bytes = CHECKPOINT.seal(1, &w.into_bytes());
    let err = |e: std::io::Error| {
        ScorerError::CheckpointWrite(format!("writing `{}`: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

/// Follows `alias` of `model` in the registry, swapping in each new version
/// (checked and loaded off the scoring path) until `stop`.
pub fn watch_model(
    registry: Registry,
    model: String,
    alias: String,
    shared: Shared,
    stop: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
) {
    let mut current: Option<i64> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(Some(v)) = registry.alias(&model, &alias)
            && current != Some(v)
        {
            let loaded = registry
                .version(&model, v)
                .map_err(|e| e.to_string())
                .and_then(|mv| {
                    rt.block_on(registry.artifact(&mv))
                        .map_err(|e| e.to_string())
                })
                .and_then(|bytes| Bundle::from_bytes(&bytes).map_err(|e| e.to_string()));
            match loaded {
                Ok(bundle) if bundle.columns == shared.schema.columns => {
                    shared.model.store(Some(Arc::new(Served {
                        name: model.clone(),
                        version: v,
                        bundle,
                    })));
                    shared
                        .metrics
                        .model_version
                        .store(v as u64, Ordering::Relaxed);
                    current = Some(v);
                }
                Ok(_) => {
                    eprintln!(
                        "model {model} v{v}: its feature columns differ from stream `{}`; not served",
                        shared.schema.name
                    );
                    current = Some(v);
                }
                Err(e) => eprintln!("model {model} v{v} could not be loaded: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Scores the stream until `stop`, then checkpoints and returns.
pub fn run(
    log: &dyn EventLog,
    shared: &Shared,
    sinks: &Sinks,
    options: &ScorerOptions,
    stop: &AtomicBool,
) -> Result<u64, ScorerError> {
    let topic = shared.schema.name.clone();
    let mut retry = Retry::new("scorer", &shared.health, stop);
    let mut positions = {
        let mut engine = shared
            .engine
            .write()
            .map_err(|_| ScorerError::Checkpoint("engine lock poisoned".into()))?;
        load_checkpoint(&options.checkpoint, &mut engine, shared.online.as_deref())?
    };
    let mut consumer = retry.run(|| log.consumer(&topic, &options.group))?;
    let mut decoder = Decoder::new(shared.schema.clone());
    let width = shared.schema.columns.len();
    let mut last_checkpoint = Instant::now();
    let mut last_lag: Option<Instant> = None;
    let mut dirty = false;
    let mut scored_total = 0u64;
    let mut row = vec![0.0; width];
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // No champion yet: wait rather than consume events nobody scores.
        let Some(source) = Source::of(shared) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let batch = retry.run(|| consumer.poll(5000, Duration::from_millis(50)))?;
        if batch.is_empty() {
            if dirty && last_checkpoint.elapsed() >= options.checkpoint_every {
                last_checkpoint = Instant::now();
                // A failed checkpoint (a full disk) is tried again at the
                // next one; the events it would cover are replayed at worst.
                match retry.attempt(|| checkpoint(shared, options, &positions, consumer.as_mut())) {
                    Ok(()) => dirty = false,
                    Err(e) if e.is_transient() => {}
                    Err(e) => return Err(e),
                }
                update_lag(log, &topic, &positions, &shared.metrics);
                last_lag = Some(Instant::now());
            } else if last_lag.is_none_or(|t| t.elapsed() >= options.checkpoint_every) {
                // Idle with nothing to checkpoint (e.g. restarted with all
                // caught up): lag is still reported.
                update_lag(log, &topic, &positions, &shared.metrics);
                last_lag = Some(Instant::now());
            }
            continue;
        }
        let mut matrix =
            Matrix::with_columns(width).map_err(|e| ScorerError::Detect(e.to_string()))?;
        let mut meta = Vec::with_capacity(batch.len());
        {
            let mut engine = shared
                .engine
                .write()
                .map_err(|_| ScorerError::Checkpoint("engine lock poisoned".into()))?;
            for s in &batch {
                // Already folded into the restored state.
                if positions
                    .get(&s.partition)
                    .is_some_and(|&next| s.offset < next)
                {
                    continue;
                }
                positions.insert(s.partition, s.offset + 1);
                // Invalid events were answered at ingest and go to the
                // dead-letter table through capture.
                let Ok(record) = decoder.decode_json(&s.record.value, s.record.timestamp) else {
                    continue;
                };
                engine.process(&record, &mut row);
                matrix
                    .push_row(&row)
                    .map_err(|e| ScorerError::Detect(e.to_string()))?;
                meta.push((record, s.record.timestamp, s.partition, s.offset));
            }
        }
        dirty = true;
        if meta.is_empty() {
            continue;
        }
        let mut scoring = source.lock()?;
        let scores = scoring.score(&matrix)?;
        let threshold = scoring.threshold();
        let (model_name, model_version, _) = scoring.model();
        let decided = now_micros();
        let mut alerts = Vec::new();
        for (i, ((record, ingest, partition, offset), &score)) in
            meta.iter().zip(&scores).enumerate()
        {
            let latency = (decided - ingest).max(0) as u64;
            shared.metrics.decision_latency.observe_micros(latency);
            if score <= threshold {
                continue;
            }
            let values = matrix.row(i);
            // Rows here are the engine's finite features; an explanation
            // cannot fail on them, and an alert is worth more than its
            // explanation.
            let contributions = scoring
                .explain(values)
                .unwrap_or_default()
                .into_iter()
                .take(options.explain_top)
                .map(|(f, share, above)| Contribution {
                    feature: shared.schema.columns[f].clone(),
                    share,
                    value: values[f],
                    direction: direction_name(above),
                })
                .collect();
            alerts.push(Alert {
                event_id: record
                    .id
                    .as_deref()
                    .map_or_else(|| format!("{topic}-{partition}-{offset}"), str::to_owned),
                stream: topic.clone(),
                entity: record.entity.as_deref().map(str::to_owned),
                score,
                threshold,
                model: model_name.clone(),
                model_version,
                event_time: format_rfc3339(record.ts),
                event_time_us: record.ts,
                decided_at_us: decided,
                latency_ms: latency as f64 / 1000.0,
                contributions,
            });
        }
        drop(scoring);
        // The alerts table must hold them before the scorer moves on: a full
        // disk or a busy database is waited out, not skipped.
        retry.run(|| sinks.emit(alerts.clone()))?;
        scored_total += meta.len() as u64;
        shared
            .metrics
            .scored
            .fetch_add(meta.len() as u64, Ordering::Relaxed);
        if last_checkpoint.elapsed() >= options.checkpoint_every {
            last_checkpoint = Instant::now();
            match retry.attempt(|| checkpoint(shared, options, &positions, consumer.as_mut())) {
                Ok(()) => dirty = false,
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            update_lag(log, &topic, &positions, &shared.metrics);
            last_lag = Some(Instant::now());
        }
    }
    if dirty {
        retry.run(|| checkpoint(shared, options, &positions, consumer.as_mut()))?;
    }
    Ok(scored_total)
}

/// What scores the stream: the declared online detector, else the served
/// champion.
pub enum Source<'a> {
    Online(&'a Mutex<OnlineModel>),
    Champion(Arc<Served>),
}

impl<'a> Source<'a> {
    /// `None` while no champion is loaded (and no online detector declared).
    pub fn of(shared: &'a Shared) -> Option<Source<'a>> {
        match (&shared.online, shared.model.load_full()) {
            (Some(online), _) => Some(Source::Online(online)),
            (None, Some(served)) => Some(Source::Champion(served)),
            (None, None) => None,
        }
    }

    /// Ready to score: an online detector is locked for as long as the
    /// result lives, so readers see whole batches.
    pub fn lock(&self) -> Result<Scoring<'_>, ScorerError> {
        Ok(match self {
            Source::Online(online) => Scoring::Online(
                online
                    .lock()
                    .map_err(|_| ScorerError::Checkpoint("online model lock poisoned".into()))?,
            ),
            Source::Champion(served) => Scoring::Champion(served),
        })
    }
}

/// A model ready to score (see [`Source::lock`]).
pub enum Scoring<'a> {
    Champion(&'a Served),
    Online(std::sync::MutexGuard<'a, OnlineModel>),
}

impl Scoring<'_> {
    /// Scores a batch; an online detector learns it.
    fn score(&mut self, matrix: &Matrix) -> Result<Vec<f64>, ScorerError> {
        let detect = |e: radar_detect::DetectError| ScorerError::Detect(e.to_string());
        match self {
            Scoring::Champion(served) => served.bundle.forest.score(matrix.view()).map_err(detect),
            Scoring::Online(model) => (0..matrix.rows())
                .map(|i| model.observe(matrix.row(i)).map_err(detect))
                .collect(),
        }
    }

    /// The score of one row, learning nothing.
    pub fn peek(&self, row: &[f64]) -> Result<f64, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => served.bundle.forest.score_row(row),
            Scoring::Online(model) => model.peek(row),
        }
    }

    pub fn threshold(&self) -> f64 {
        match self {
            Scoring::Champion(served) => served.bundle.threshold,
            Scoring::Online(model) => model.threshold,
        }
    }

    /// (name, version, still warming up).
    pub fn model(&self) -> (String, i64, bool) {
        match self {
            Scoring::Champion(served) => (served.name.clone(), served.version, false),
            Scoring::Online(model) => (model.name().to_owned(), 0, model.warming_up()),
        }
    }

    /// (column, share, above the data?) largest share first.
    pub fn explain(
        &self,
        row: &[f64],
    ) -> Result<Vec<(usize, f64, Option<bool>)>, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => Ok(served
                .bundle
                .forest
                .explain_row(row)?
                .ranked()
                .into_iter()
                .map(|(f, s)| (f, s, None))
                .collect()),
            Scoring::Online(model) => model.explain(row),
        }
    }
}

fn update_lag(log: &dyn EventLog, topic: &str, positions: &BTreeMap<u32, u64>, metrics: &Metrics) {
    let partitions = log.partitions(topic).unwrap_or(0);
    let lag: Vec<(u32, u64)> = (0..partitions)
        .map(|p| {
            let (earliest, end) = log.offsets(topic, p).unwrap_or((0, 0));
            let next = positions.get(&p).copied().unwrap_or(earliest);
            (p, end.saturating_sub(next))
        })
        .collect();
    if let Ok(mut l) = metrics.lag.lock() {
        *l = lag;
    }
}

/// State and positions durable first, then the group's commit (which only
/// serves lag reporting and a fallback).
fn checkpoint(
    shared: &Shared,
    options: &ScorerOptions,
    positions: &BTreeMap<u32, u64>,
    consumer: &mut dyn radar_log::Consumer,
) -> Result<(), ScorerError> {
    {
        let engine = shared
            .engine
            .read()
            .map_err(|_| ScorerError::Checkpoint("engine lock poisoned".into()))?;
        save_checkpoint(
            &options.checkpoint,
            &engine,
            shared.online.as_deref(),
            positions,
        )?;
    }
    let commits: Vec<(u32, u64)> = positions.iter().map(|(&p, &o)| (p, o)).collect();
    match consumer.commit(&commits) {
        // The checkpoint holds the positions; records the group hands out
        // again after a rebalance are skipped by them.
        Ok(()) | Err(radar_log::LogError::Rebalanced(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
