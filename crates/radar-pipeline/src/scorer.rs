//! The streaming scorer: a consumer of the stream's topic that computes
//! features (incremental driver), scores with the `champion`, decides
//! against its threshold and raises alerts.
//!
//! Feature state is checkpointed together with the log positions it covers
//! (one file, written atomically) before the group's offsets are committed;
//! on restart records before the checkpoint's positions are skipped, so
//! feature state counts every event exactly once, while alerts of replayed
//! events are deduplicated by the alerts table.
//!
//! Labels reach `label_rate` features as the labels store records them:
//! before each batch the scorer folds in the labels recorded since the last
//! one it applied (that label's seq is checkpointed with the positions), so
//! each label counts once across restarts. Live, a label counts from when
//! it is read, which is when it became known for labels given as they are
//! made; training replays each at its `known_at`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use radar_core::Matrix;
use radar_core::backoff::Retry;
use radar_core::binary::{Envelope, Reader, Writer};
use radar_core::decode::Decoder;
use radar_core::error::{Classify, ErrorKind};
use radar_core::features::FeatureEngine;
use radar_core::health::Health;
use radar_core::schema::StreamSchema;
use radar_core::time::{format_rfc3339, now_micros};
use radar_lake::capture::DEAD_LETTER_HEADER;
use radar_log::EventLog;
use radar_registry::{Bundle, Registry};

use crate::metrics::Metrics;
use crate::online::OnlineModel;
use crate::sinks::{Alert, Contribution, Sinks, direction_name};

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
    /// The served model's drift windows.
    pub drift: Arc<Mutex<crate::drift::DriftMonitor>>,
    /// The registry's `challenger`, scored beside the champion.
    pub challenger: Arc<ArcSwapOption<Served>>,
    /// Where the challenger's rollout stands.
    pub rollout: Arc<Mutex<crate::rollout::Rollout>>,
    /// The last scored live events (features, score, alert).
    pub recent: Arc<Mutex<crate::recent::Recent>>,
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
    /// Where labels are recorded, for `label_rate` features.
    pub labels: Option<crate::labels::LabelStore>,
    /// Where rollout steps (promotion, rejection, rollback) are carried
    /// out; without it a challenger is only shadowed.
    pub registry: Option<Registry>,
    /// Events appended to the log before this time (UTC µs) build state
    /// but raise no alert (backfill). `None`: from when the scorer first
    /// started on this checkpoint — kept in it, so a restart still alerts
    /// on what was acknowledged while it was down.
    pub alerts_from: Option<i64>,
}

/// How far the scorer's state goes: the next offset of each partition,
/// and the last label folded in.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    positions: BTreeMap<u32, u64>,
    labels_seq: u64,
    /// Log append time (UTC µs) from which events may alert.
    alerts_from: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Log(#[from] radar_log::LogError),
    /// The checkpoint cannot be read back or does not fit the declaration.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Writing the checkpoint failed (a full disk): the next one may pass.
    #[error("checkpoint `{path}`: {source}")]
    CheckpointWrite {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Alerts(#[from] crate::sinks::AlertError),
    #[error("scoring: {0}")]
    Detect(#[from] radar_detect::DetectError),
    #[error(transparent)]
    Matrix(#[from] radar_core::MatrixError),
    #[error("a lock of the scorer was poisoned (a thread panicked holding it)")]
    Poisoned,
}

impl Classify for ScorerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ScorerError::Log(e) => e.kind(),
            ScorerError::CheckpointWrite { .. } => ErrorKind::Unavailable,
            ScorerError::Alerts(e) => e.kind(),
            ScorerError::Checkpoint(_) => ErrorKind::Input,
            ScorerError::Detect(_) | ScorerError::Matrix(_) | ScorerError::Poisoned => {
                ErrorKind::Internal
            }
        }
    }
}

/// Loads the checkpoint, if any: (engine state, next offset per partition)
/// and the online detector's state.
fn load_checkpoint(
    path: &PathBuf,
    engine: &mut FeatureEngine,
    online: Option<&Mutex<OnlineModel>>,
) -> Result<Option<Progress>, ScorerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
    // Checkpoints written before label features end here.
    let labels_seq = if r.remaining() > 0 {
        r.u64().map_err(|e| err(e.to_string()))?
    } else {
        0
    };
    // Checkpoints written before backfill was told apart alerted on all.
    let alerts_from = if r.remaining() > 0 {
        r.u64().map_err(|e| err(e.to_string()))? as i64
    } else {
        i64::MIN
    };
    Ok(Some(Progress {
        positions,
        labels_seq,
        alerts_from,
    }))
}

fn save_checkpoint(
    path: &PathBuf,
    engine: &FeatureEngine,
    online: Option<&Mutex<OnlineModel>>,
    progress: &Progress,
) -> Result<(), ScorerError> {
    let mut w = Writer::new();
    w.bytes(
        serde_json::to_string(&progress.positions)
            .unwrap_or_default()
            .as_bytes(),
    );
    w.bytes(&engine.checkpoint());
    let model = match online {
        Some(m) => m.lock().map_err(|_| ScorerError::Poisoned)?.to_bytes(),
        None => Vec::new(),
    };
    w.bytes(&model);
    w.u64(progress.labels_seq);
    w.u64(progress.alerts_from as u64);
    let bytes = CHECKPOINT.seal(1, &w.into_bytes());
    let err = |source: std::io::Error| ScorerError::CheckpointWrite {
        path: path.display().to_string(),
        source,
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

/// The health component of the model watch.
pub const MODEL: &str = "model";

/// Follows `alias` of `model` in the registry, swapping in each new version
/// (checked and loaded off the scoring path) until `stop`. A version that
/// cannot be served is said once (in the log and in `/readyz`), not at
/// every look.
pub fn watch_model(
    registry: Registry,
    model: String,
    alias: String,
    shared: Shared,
    stop: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
) {
    // The champion's slot keeps serving what it has when the alias is
    // gone; the challenger's empties.
    let champion = alias == "champion";
    let slot = if champion {
        shared.model.clone()
    } else {
        shared.challenger.clone()
    };
    let mut current: Option<i64> = None;
    let mut refused: Option<i64> = None;
    while !stop.load(Ordering::Relaxed) {
        if !champion && current.is_some() && matches!(registry.alias(&model, &alias), Ok(None)) {
            slot.store(None);
            current = None;
        }
        if let Ok(Some(v)) = registry.alias(&model, &alias)
            && current != Some(v)
            && refused != Some(v)
        {
            let loaded = registry
                .version(&model, v)
                .map_err(|e| e.to_string())
                .and_then(|mv| {
                    rt.block_on(registry.artifact(&mv))
                        .map_err(|e| e.to_string())
                })
                .and_then(|bytes| Bundle::from_bytes(&bytes).map_err(|e| e.to_string()))
                .and_then(|bundle| {
                    if bundle.columns == shared.schema.columns {
                        Ok(bundle)
                    } else {
                        Err(format!(
                            "its feature columns differ from stream `{}`'s",
                            shared.schema.name
                        ))
                    }
                });
            match loaded {
                Ok(bundle) => {
                    tracing::info!(model = %model, version = v, %alias, kind = bundle.detector.kind().name(), "serving");
                    slot.store(Some(Arc::new(Served {
                        name: model.clone(),
                        version: v,
                        bundle,
                    })));
                    if champion {
                        shared.metrics.model_version.set(v);
                        shared.health.ok(MODEL);
                    }
                    current = Some(v);
                    refused = None;
                }
                Err(e) => {
                    tracing::warn!(model = %model, version = v, %alias, error = %e, "model not served");
                    if champion {
                        shared
                            .health
                            .degraded(MODEL, format!("{model} v{v} is not served: {e}"));
                    }
                    refused = Some(v);
                }
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
    let mut progress = {
        let mut engine = shared.engine.write().map_err(|_| ScorerError::Poisoned)?;
        let loaded = load_checkpoint(&options.checkpoint, &mut engine, shared.online.as_deref())?;
        let fresh = loaded.is_none();
        let mut progress = loaded.unwrap_or_else(|| Progress {
            alerts_from: now_micros(),
            ..Progress::default()
        });
        if let Some(t) = options.alerts_from {
            progress.alerts_from = t;
        }
        // The point alerts start from is kept before the first event is
        // scored: a scorer killed before its first checkpoint must not
        // move it past events acknowledged meanwhile.
        if fresh {
            save_checkpoint(
                &options.checkpoint,
                &engine,
                shared.online.as_deref(),
                &progress,
            )?;
        }
        progress
    };
    // Keyed like the feature state: which entities a canary decides for
    // cannot be chosen by crafting their keys.
    let entities = shared
        .engine
        .read()
        .map_err(|_| ScorerError::Poisoned)?
        .entity_hasher();
    let mut consumer = retry.run(|| log.consumer(&topic, &options.group))?;
    let mut decoder = Decoder::new(shared.schema.clone());
    let width = shared.schema.columns.len();
    let mut last_checkpoint = Instant::now();
    let mut last_lag: Option<Instant> = None;
    let mut last_member_check = Instant::now();
    let mut dirty = false;
    let mut scored_total = 0u64;
    // The model whose drift people were last told of: one notice per
    // episode, not one per window while a stream stays drifted.
    let mut drifting: Option<(String, i64)> = None;
    let mut row = vec![0.0; width];
    let counters = shared.metrics.component("scorer");
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // No champion yet: wait rather than consume events nobody scores.
        let Some(source) = Source::of(shared) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        // Busy or idle, a second member in the group is found and said.
        if last_member_check.elapsed() >= options.checkpoint_every {
            last_member_check = Instant::now();
            check_sole_member(log, shared, options, consumer.as_mut());
        }
        let batch = retry.run(|| consumer.poll(5000, Duration::from_millis(50)))?;
        counters.received(batch.len() as u64);
        if batch.is_empty() {
            if dirty && last_checkpoint.elapsed() >= options.checkpoint_every {
                last_checkpoint = Instant::now();
                if periodic_checkpoint(
                    &mut retry,
                    log,
                    shared,
                    options,
                    &progress,
                    consumer.as_mut(),
                )? {
                    dirty = false;
                }
                last_lag = Some(Instant::now());
            } else if last_lag.is_none_or(|t| t.elapsed() >= options.checkpoint_every) {
                // Idle with nothing to checkpoint (e.g. restarted with all
                // caught up): lag is still reported.
                update_lag(log, &topic, &progress.positions, &shared.metrics);
                last_lag = Some(Instant::now());
            }
            continue;
        }
        let mut matrix = Matrix::with_columns(width)?;
        let mut meta = Vec::with_capacity(batch.len());
        {
            let mut engine = shared.engine.write().map_err(|_| ScorerError::Poisoned)?;
            if let Some(store) = &options.labels
                && !engine.label_keyer().is_empty()
            {
                // A labels store that cannot be read now is read next time;
                // scoring does not wait for it.
                match fold_labels(store, &topic, &mut engine, progress.labels_seq) {
                    Ok(seq) => progress.labels_seq = seq,
                    Err(e) => tracing::warn!(error = %e, "reading new labels failed"),
                }
            }
            for s in &batch {
                // Already folded into the restored state.
                if progress
                    .positions
                    .get(&s.partition)
                    .is_some_and(|&next| s.offset < next)
                {
                    continue;
                }
                progress.positions.insert(s.partition, s.offset + 1);
                // Invalid events were answered at ingest and go to the
                // dead-letter table through capture (which counts them);
                // a door's refusal stands even when the bytes would decode.
                let refused = s
                    .record
                    .headers
                    .iter()
                    .any(|(h, _)| h == DEAD_LETTER_HEADER);
                let decoded = decoder.decode_json(&s.record.value, s.record.timestamp);
                let (false, Ok(record)) = (refused, decoded) else {
                    counters.dropped("invalid", 1);
                    continue;
                };
                engine.process(&record, &mut row);
                matrix.push_row(&row)?;
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
        // Backfill (appended before alerts start) builds state, raises no
        // alert, and is kept out of drift windows and rollout tallies.
        let live: Vec<bool> = meta
            .iter()
            .map(|(_, appended, ..)| *appended >= progress.alerts_from)
            .collect();
        let any_live = live.iter().any(|&l| l);
        if any_live && let Ok(mut recent) = shared.recent.lock() {
            for (i, (record, ..)) in meta.iter().enumerate().filter(|(i, _)| live[*i]) {
                recent.push(
                    record.ts,
                    record.entity.as_deref(),
                    scores[i],
                    scores[i] > threshold,
                    matrix.row(i),
                );
            }
        }
        let backfill = live.iter().filter(|&&l| !l).count() as u64;
        if backfill > 0 {
            shared.metrics.backfill_total.inc_by(backfill);
        }
        if let Scoring::Champion(served) = &scoring
            && any_live
        {
            let finished = shared
                .drift
                .lock()
                .map_err(|_| ScorerError::Poisoned)?
                .observe(
                    (&served.name, served.version),
                    &shared.schema.columns,
                    &served.bundle.reference,
                    threshold,
                    matrix.view(),
                    &scores,
                    &meta.iter().map(|(r, ..)| r.ts).collect::<Vec<i64>>(),
                );
            for w in finished {
                shared.metrics.set_drift(&w);
                // The record of drift outlives the process; losing one
                // window's record is said, scoring goes on.
                if let Err(e) = sinks.ledger.insert_drift(&w) {
                    tracing::warn!(error = %e, "storing a drift window failed");
                }
                let episode = Some((w.model.clone(), w.version));
                if !w.drift && drifting == episode {
                    drifting = None;
                }
                if w.drift && drifting != episode {
                    drifting = episode;
                    let drifted: Vec<&str> = w
                        .features
                        .iter()
                        .filter(|f| f.drifted)
                        .map(|f| f.column.as_str())
                        .collect();
                    sinks.notify(&crate::sinks::Notice::new(
                        "drift",
                        &shared.schema.name,
                        &w.model,
                        w.version,
                        format!(
                            "{:.0}% of features drifted from v{}'s reference ({}); alert rate {:.2}× the expected",
                            100.0 * w.drifted_share,
                            w.version,
                            drifted.join(", "),
                            w.alert_rate_ratio()
                        ),
                        serde_json::json!({
                            "ended_at": w.ended_at, "events": w.events,
                            "drifted_share": w.drifted_share, "drifted": drifted,
                            "alert_rate": w.alert_rate, "expected_alert_rate": w.expected_alert_rate,
                        }),
                    ));
                }
            }
        }
        let (model_name, model_version, _) = scoring.model();
        // A challenger scores beside a registry champion: in shadow it only
        // tallies and its would-be alerts are stored apart; in canary it
        // decides for its share of entities.
        let challenger = match &scoring {
            Scoring::Champion(_) => shared.challenger.load_full(),
            Scoring::Online(_) => None,
        };
        let challenger_scores = match &challenger {
            Some(c) => Some(c.bundle.score_batch(matrix.view())?),
            None => None,
        };
        let decided_by_challenger = match &scoring {
            Scoring::Champion(_) if !any_live => vec![false; meta.len()],
            Scoring::Champion(served) => {
                let budget = radar_detect::drift::share_above(
                    &served.bundle.reference.score_quantiles,
                    served.bundle.threshold,
                );
                let seen: Vec<crate::rollout::Seen> = meta
                    .iter()
                    .enumerate()
                    .map(|(i, (record, ..))| crate::rollout::Seen {
                        entity_hash: record
                            .entity
                            .as_deref()
                            .map_or(0, |e| entities.hash(e.as_bytes())),
                        champion_alert: scores[i] > threshold,
                        challenger_alert: match (&challenger, &challenger_scores) {
                            (Some(c), Some(s)) => s[i] > c.bundle.threshold,
                            _ => false,
                        },
                    })
                    .collect();
                shared
                    .rollout
                    .lock()
                    .map_err(|_| ScorerError::Poisoned)?
                    .observe(
                        model_version,
                        Some(budget),
                        challenger.as_ref().map(|c| c.version),
                        &seen,
                    )
            }
            Scoring::Online(_) => vec![false; meta.len()],
        };
        let decided = now_micros();
        let mut alerts = Vec::new();
        let mut shadow = Vec::new();
        for (i, ((record, ingest, partition, offset), &score)) in
            meta.iter().zip(&scores).enumerate()
        {
            let latency = (decided - ingest).max(0) as u64;
            shared.metrics.decision_latency.observe_micros(latency);
            let values = matrix.row(i);
            // Rows here are the engine's finite features; an explanation
            // cannot fail on them, and an alert is worth more than its
            // explanation.
            let contributions = |explained: Vec<radar_registry::Explained>| -> Vec<Contribution> {
                explained
                    .into_iter()
                    .take(options.explain_top)
                    .map(|e| Contribution {
                        feature: e.input,
                        share: e.share,
                        value: e.value,
                        direction: direction_name(e.above),
                    })
                    .collect()
            };
            let alert = |score: f64, threshold: f64, model: &str, version: i64, c| Alert {
                event_id: crate::labels::event_id(&topic, record, *partition, *offset),
                position: format!("{topic}/{partition}/{offset}"),
                stream: topic.clone(),
                entity: record.entity.as_deref().map(str::to_owned),
                score,
                threshold,
                model: model.to_owned(),
                model_version: version,
                event_time: format_rfc3339(record.ts),
                event_time_us: record.ts,
                decided_at_us: decided,
                latency_ms: latency as f64 / 1000.0,
                contributions: c,
            };
            if !live[i] {
                continue;
            }
            if let (Some(c), Some(cs)) = (&challenger, &challenger_scores)
                && cs[i] > c.bundle.threshold
            {
                let a = alert(
                    cs[i],
                    c.bundle.threshold,
                    &c.name,
                    c.version,
                    contributions(c.bundle.explain(values).unwrap_or_default()),
                );
                if decided_by_challenger[i] {
                    alerts.push(a);
                } else {
                    shadow.push(a);
                }
            }
            if decided_by_challenger[i] || score <= threshold {
                continue;
            }
            let explained = scoring
                .explain(&shared.schema.columns, values)
                .unwrap_or_default();
            alerts.push(alert(
                score,
                threshold,
                &model_name,
                model_version,
                contributions(explained),
            ));
        }
        drop(scoring);
        // The alerts table must hold them before the scorer moves on: a full
        // disk or a busy database is waited out, not skipped.
        retry.run(|| sinks.emit(&alerts))?;
        if !shadow.is_empty() {
            retry.run(|| sinks.ledger.insert_shadow(&shadow))?;
        }
        // Every step this batch made (a stage may begin and end in one).
        loop {
            let action = shared
                .rollout
                .lock()
                .map_err(|_| ScorerError::Poisoned)?
                .decide();
            let Some(action) = action else { break };
            if let Some(notice) = rollout_notice(&shared.schema.name, &model_name, &action) {
                sinks.notify(&notice);
            }
            if let Some(registry) = &options.registry {
                apply_rollout(registry, &model_name, action);
            }
        }
        scored_total += meta.len() as u64;
        shared.metrics.add_scored(meta.len() as u64);
        counters.sent(meta.len() as u64);
        if last_checkpoint.elapsed() >= options.checkpoint_every {
            last_checkpoint = Instant::now();
            if periodic_checkpoint(
                &mut retry,
                log,
                shared,
                options,
                &progress,
                consumer.as_mut(),
            )? {
                dirty = false;
            }
            last_lag = Some(Instant::now());
        }
    }
    if dirty {
        retry.run(|| checkpoint(shared, options, &progress, consumer.as_mut()))?;
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
            Source::Online(online) => {
                Scoring::Online(online.lock().map_err(|_| ScorerError::Poisoned)?)
            }
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
        Ok(match self {
            Scoring::Champion(served) => served.bundle.score_batch(matrix.view())?,
            Scoring::Online(model) => (0..matrix.rows())
                .map(|i| model.observe(matrix.row(i)))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The score of one row, learning nothing.
    pub fn peek(&self, row: &[f64]) -> Result<f64, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => served.bundle.score_row(row),
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

    /// (input, share, above the data?) largest share first; the inputs
    /// are the feature columns (and a hybrid's unsupervised score).
    pub fn explain(
        &self,
        columns: &[String],
        row: &[f64],
    ) -> Result<Vec<radar_registry::Explained>, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => served.bundle.explain(row),
            Scoring::Online(model) => Ok(model
                .explain(row)?
                .into_iter()
                .map(|(i, share, above)| radar_registry::Explained {
                    input: columns[i].clone(),
                    share,
                    above,
                    value: row[i],
                })
                .collect()),
        }
    }
}

/// What a person must hear of a rollout step: a rejection or a rollback.
fn rollout_notice(
    stream: &str,
    model: &str,
    action: &crate::rollout::Action,
) -> Option<crate::sinks::Notice> {
    use crate::rollout::Action;
    match action {
        Action::Reject {
            version,
            reason,
            figures,
        } => Some(crate::sinks::Notice::new(
            "rejected",
            stream,
            model,
            *version,
            format!("challenger v{version} rejected: {reason}"),
            figures.clone(),
        )),
        Action::RollBack {
            from,
            to,
            reason,
            figures,
        } => Some(crate::sinks::Notice::new(
            "rolled_back",
            stream,
            model,
            *from,
            format!("champion rolled back from v{from} to v{to}: {reason}"),
            figures.clone(),
        )),
        Action::Stage { .. } | Action::Promote { .. } => None,
    }
}

/// Carries out what the rollout decided in the registry, with its reason
/// and figures in the audit trail; the model watchers then serve it. A
/// registry that refuses is said in the log; the rollout tries again at
/// its next decision.
fn apply_rollout(registry: &Registry, model: &str, action: crate::rollout::Action) {
    use crate::rollout::Action;
    let done = match &action {
        Action::Stage {
            version,
            stage,
            figures,
        } => {
            let (event, reason) = match stage {
                crate::rollout::Stage::Shadow => {
                    ("shadow", "scores beside the champion, deciding nothing")
                }
                crate::rollout::Stage::Canary => (
                    "canary",
                    "its alert rate held in shadow; it decides for a share of entities",
                ),
            };
            registry.record_event(model, *version, event, reason, figures)
        }
        Action::Promote { version, figures } => registry
            .set_alias(
                model,
                "champion",
                *version,
                "promoted after shadow and canary",
            )
            .and_then(|()| registry.remove_alias(model, "challenger"))
            .and_then(|()| {
                registry.record_event(
                    model,
                    *version,
                    "promoted",
                    "its alert rate held through shadow and canary",
                    figures,
                )
            }),
        Action::Reject {
            version,
            reason,
            figures,
        } => registry
            .remove_alias(model, "challenger")
            .and_then(|()| registry.record_event(model, *version, "rejected", reason, figures)),
        Action::RollBack {
            from,
            to,
            reason,
            figures,
        } => registry
            .set_alias(model, "champion", *to, &format!("rolled back: {reason}"))
            .and_then(|()| registry.record_event(model, *from, "rolled_back", reason, figures)),
    };
    match done {
        Ok(()) => tracing::info!(model, ?action, "rollout step"),
        Err(e) => {
            tracing::warn!(model, error = %e, ?action, "a rollout step could not be recorded")
        }
    }
}

/// Folds the labels recorded after label `after` into `engine`; returns
/// the last label read.
fn fold_labels(
    store: &crate::labels::LabelStore,
    stream: &str,
    engine: &mut FeatureEngine,
    after: u64,
) -> crate::error::Result<u64> {
    let (last, moves) = store.moves_since(stream, after, 10_000)?;
    for m in moves {
        engine.apply_label(&m.keys, m.at, m.change);
    }
    Ok(last)
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
    metrics.set_lag(&lag);
}

/// State and positions durable first, then the group's commit (which only
/// serves lag reporting and a fallback).
/// The scorer's regular checkpoint, then the lag it leaves. A failed
/// checkpoint (a full disk) is tried again at the next one (the events it
/// would cover are replayed at worst): Ok(false). Ok(true) once written.
fn periodic_checkpoint(
    retry: &mut Retry<'_>,
    log: &dyn EventLog,
    shared: &Shared,
    options: &ScorerOptions,
    progress: &Progress,
    consumer: &mut dyn radar_log::Consumer,
) -> Result<bool, ScorerError> {
    let written = match retry.attempt(|| checkpoint(shared, options, progress, &mut *consumer)) {
        Ok(()) => true,
        Err(e) if e.is_transient() => false,
        Err(e) => return Err(e),
    };
    update_lag(
        log,
        &shared.schema.name,
        &progress.positions,
        &shared.metrics,
    );
    Ok(written)
}

/// The health component that says the scorer's group has another member.
pub const SHARED_GROUP: &str = "scorer_group";

/// The scorer's state is one checkpoint for every partition: a second
/// scorer in its group (another `radar up` on the stream) would split the
/// partitions and score each entity with half its history. That is said,
/// loudly and in `/readyz`, rather than left to skew the scores.
fn check_sole_member(
    log: &dyn EventLog,
    shared: &Shared,
    options: &ScorerOptions,
    consumer: &mut dyn radar_log::Consumer,
) {
    let (Ok(held), Ok(all)) = (consumer.assignment(), log.partitions(&shared.schema.name)) else {
        return;
    };
    let shared_group = !held.is_empty() && (held.len() as u32) < all;
    let said = shared
        .health
        .snapshot()
        .get(SHARED_GROUP)
        .is_some_and(|s| s.state != radar_core::health::State::Ok);
    if shared_group {
        let reason = format!(
            "this scorer holds partitions {held:?} of {all}: another scorer is in group `{}`; \
             feature state is not split by partition yet, so run one scorer per stream",
            options.group
        );
        if !said {
            tracing::error!(group = %options.group, ?held, all, "{reason}");
        }
        shared.health.degraded(SHARED_GROUP, reason);
    } else if said {
        shared.health.ok(SHARED_GROUP);
    }
}

fn checkpoint(
    shared: &Shared,
    options: &ScorerOptions,
    progress: &Progress,
    consumer: &mut dyn radar_log::Consumer,
) -> Result<(), ScorerError> {
    {
        let engine = shared.engine.read().map_err(|_| ScorerError::Poisoned)?;
        save_checkpoint(
            &options.checkpoint,
            &engine,
            shared.online.as_deref(),
            progress,
        )?;
    }
    let commits: Vec<(u32, u64)> = progress.positions.iter().map(|(&p, &o)| (p, o)).collect();
    match consumer.commit(&commits) {
        // The checkpoint holds the positions; records the group hands out
        // again after a rebalance are skipped by them.
        Ok(()) | Err(radar_log::LogError::Rebalanced(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
