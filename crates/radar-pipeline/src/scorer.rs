//! The streaming scorer: a consumer of the stream's topic that computes
//! features (incremental driver), scores with the `champion`, decides
//! against its threshold and raises alerts.
//!
//! State is kept per partition ([`crate::state`]): each part is
//! checkpointed with the offset it covers to the storage root before the
//! group's offsets are committed, so the partitions of one stream can be
//! split among workers of one consumer group and move between them. A
//! worker restores a partition's part when it is assigned one and saves it
//! when the group takes it away; records before a part's offset are
//! skipped, so feature state counts every event exactly once, while alerts
//! of replayed events are deduplicated by the alerts table.
//!
//! Labels reach `label_rate` features as the labels store records them:
//! before each batch the scorer folds each label recorded since the last
//! one a part applied into the part of its event's partition (the seq is
//! checkpointed with the part), so each label counts once across restarts
//! and moves. Live, a label counts from when
//! it is read, which is when it became known for labels given as they are
//! made; training replays each at its `known_at`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLockReadGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use radar_core::Matrix;
use radar_core::backoff::Retry;
use radar_core::binary::{Envelope, Reader};
use radar_core::decode::Decoder;
use radar_core::error::{Classify, ErrorKind};
use radar_core::health::Health;
use radar_core::schema::StreamSchema;
use radar_core::time::{format_rfc3339, now_micros};
use radar_lake::capture::DEAD_LETTER_HEADER;
use radar_log::EventLog;
use radar_registry::{Bundle, Registry};
use rayon::prelude::*;

use crate::metrics::Metrics;
use crate::online::OnlineModel;
use crate::sinks::{Alert, Contribution, Sinks, direction_name};
use crate::state::{Checkpoints, Part, SharedState, StreamState, Tag};

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
    /// Feature (and online detector) state of the partitions held.
    pub state: SharedState,
    pub model: Arc<ArcSwapOption<Served>>,
    /// Set when the declaration names an online detector: it scores the
    /// stream instead of the champion (one per partition, in `state`; this
    /// one never learns, and scores events of partitions not held here).
    pub online: Option<Arc<OnlineModel>>,
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

impl Shared {
    /// Nothing served, no partition held yet; the stream's topic has
    /// `partitions` partitions and its entity keys hash with `entities`.
    pub fn new(
        schema: StreamSchema,
        entities: radar_core::hash::EntityHasher,
        partitions: u32,
        metrics: Arc<Metrics>,
    ) -> crate::error::Result<Shared> {
        Ok(Shared {
            online: OnlineModel::from_schema(&schema)?.map(Arc::new),
            state: Arc::new(std::sync::RwLock::new(StreamState::new(
                schema.clone(),
                entities,
                partitions,
            ))),
            model: Arc::new(ArcSwapOption::empty()),
            metrics,
            health: Arc::new(Health::default()),
            drift: Arc::new(Mutex::new(crate::drift::DriftMonitor::new(
                schema.drift.clone(),
            ))),
            challenger: Arc::new(ArcSwapOption::empty()),
            rollout: Arc::new(Mutex::new(crate::rollout::Rollout::new(
                schema.rollout.clone(),
            ))),
            recent: Default::default(),
            schema,
        })
    }
}

pub struct ScorerOptions {
    pub group: String,
    /// Where the partitions' state is checkpointed.
    pub checkpoints: Checkpoints,
    /// The single checkpoint of scorers before state was kept per
    /// partition: where alerts started is carried over from it (the state
    /// itself is rebuilt from the log).
    pub legacy_checkpoint: Option<PathBuf>,
    pub checkpoint_every: Duration,
    /// Top contributions attached to an alert.
    pub explain_top: usize,
    /// Where labels are recorded, for `label_rate` features.
    pub labels: Option<crate::labels::LabelStore>,
    /// Where rollout steps (promotion, rejection, rollback) are carried
    /// out; without it a challenger is only shadowed.
    pub registry: Option<Registry>,
    /// Events appended to the log before this time (UTC µs) build state
    /// but raise no alert (backfill). `None`: from when a partition's
    /// state was first made — kept in its checkpoint, so a restart still
    /// alerts on what was acknowledged while it was down.
    pub alerts_from: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Log(#[from] radar_log::LogError),
    /// The checkpoint cannot be read back or does not fit the declaration.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Reading or writing a checkpoint failed (a full disk, a store
    /// down): the next try may pass.
    #[error("checkpoint `{path}`: {source}")]
    CheckpointStore {
        path: String,
        #[source]
        source: radar_lake::LakeError,
    },
    #[error(transparent)]
    Pipeline(#[from] Box<crate::error::PipelineError>),
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
            ScorerError::CheckpointStore { source, .. } => source.kind(),
            ScorerError::Pipeline(e) => e.kind(),
            ScorerError::Alerts(e) => e.kind(),
            ScorerError::Checkpoint(_) => ErrorKind::Input,
            ScorerError::Detect(_) | ScorerError::Matrix(_) | ScorerError::Poisoned => {
                ErrorKind::Internal
            }
        }
    }
}

/// Where alerts started, from a scorer checkpoint written before state
/// was kept per partition (`None` when there is none or it does not
/// read).
fn legacy_alerts_from(path: Option<&std::path::Path>) -> Option<i64> {
    const LEGACY: Envelope = Envelope {
        magic: *b"RADARSCP",
        what: "radar scorer checkpoint",
        version: 1,
    };
    let bytes = std::fs::read(path?).ok()?;
    let (_, payload) = LEGACY.open(&bytes).ok()?;
    let mut r = Reader::new(payload);
    // positions, engine, online model, labels seq, then alerts-from.
    for _ in 0..3 {
        r.bytes().ok()?;
    }
    r.u64().ok()?;
    let from = r.u64().ok()? as i64;
    tracing::warn!(
        checkpoint = %path?.display(),
        "a scorer checkpoint from before state was kept per partition: the state is rebuilt from the log, alerts start where it said"
    );
    Some(from)
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
    // Where a part that starts fresh begins alerting by default: when this
    // scorer started, not when a partition first reached it (which may
    // be seconds later, with events acknowledged meanwhile).
    let started = now_micros();

    // Keyed like the feature state: which entities a canary decides for
    // cannot be chosen by crafting their keys.
    let entities = read(&shared.state)?.entity_hasher();
    let mut consumer = retry.run(|| log.consumer(&topic, &options.group))?;
    {
        let (state, checkpoints) = (shared.state.clone(), options.checkpoints.clone());
        consumer.on_revoke(Box::new(move |revoked| {
            hand_over(&state, &checkpoints, revoked)
        }));
    }
    let mut saved: BTreeMap<u32, Saved> = BTreeMap::new();
    let mut generation: Option<u64> = None;
    let decoder = Decoder::new(shared.schema.clone());
    let width = shared.schema.columns.len();
    let mut last_checkpoint = Instant::now();
    let mut last_lag: Option<Instant> = None;
    let mut scored_total = 0u64;
    // The model whose drift people were last told of: one notice per
    // episode, not one per window while a stream stays drifted.
    let mut drifting: Option<(String, i64)> = None;
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
        let batch = retry.run(|| consumer.poll(5000, Duration::from_millis(50)))?;
        // Partitions handed out anew (also inside that poll): the parts no
        // longer held go, the new ones are restored before their records.
        let now_generation = retry.run(|| consumer.generation())?;
        if generation != Some(now_generation) {
            let held = retry.run(|| consumer.assignment())?;
            retry.run(|| take_assignment(shared, options, started, &held, &mut saved))?;
            generation = Some(now_generation);
            last_lag = None;
        }
        counters.received(batch.len() as u64);
        if batch.is_empty() {
            let dirty = read(&shared.state)?
                .parts()
                .any(|(p, part)| saved.get(&p).is_none_or(|s| !s.covers(part)));
            if dirty && last_checkpoint.elapsed() >= options.checkpoint_every {
                last_checkpoint = Instant::now();
                periodic_checkpoint(
                    &mut retry,
                    log,
                    shared,
                    options,
                    &mut saved,
                    consumer.as_mut(),
                )?;
                last_lag = Some(Instant::now());
            } else if last_lag.is_none_or(|t| t.elapsed() >= options.checkpoint_every) {
                // Idle with nothing to checkpoint (e.g. restarted with all
                // caught up): lag is still reported.
                update_lag(log, &topic, &*read(&shared.state)?, &shared.metrics);
                last_lag = Some(Instant::now());
            }
            continue;
        }
        let mut matrix = Matrix::with_columns(width)?;
        let mut meta: Vec<Meta> = Vec::with_capacity(batch.len());
        let mut online_scores = Vec::new();
        {
            let mut state = shared.state.write().map_err(|_| ScorerError::Poisoned)?;
            if let Some(store) = &options.labels
                && !state.label_keyer().is_empty()
            {
                // A labels store that cannot be read now is read next time;
                // scoring does not wait for it.
                if let Err(e) = fold_labels(store, &topic, &mut state) {
                    tracing::warn!(error = %e, "reading new labels failed");
                }
            }
            // Each held partition's records, in offset order; parts are
            // independent, so each is fed on a thread of its own.
            let mut by_partition: BTreeMap<u32, Vec<&radar_log::Stored>> = BTreeMap::new();
            for s in &batch {
                by_partition.entry(s.partition).or_default().push(s);
            }
            // A partition taken away during the poll has no part: its
            // records are its new holder's.
            let work: Vec<(u32, &mut Part, Vec<&radar_log::Stored>)> = state
                .parts_mut()
                .filter_map(|(p, part)| by_partition.remove(&p).map(|r| (p, part, r)))
                .collect();
            let fed: Vec<Result<Fed, ScorerError>> = work
                .into_par_iter()
                .map(|(p, part, records)| feed(part, p, &records, decoder.clone(), width))
                .collect();
            for f in fed {
                let f = f?;
                if f.invalid > 0 {
                    counters.dropped("invalid", f.invalid);
                }
                for i in 0..f.meta.len() {
                    matrix.push_row(&f.rows[i * width..(i + 1) * width])?;
                }
                meta.extend(f.meta);
                online_scores.extend(f.online);
            }
        }
        if meta.is_empty() {
            continue;
        }
        let scoring = source.lock()?;
        let scores = match &scoring {
            Scoring::Champion(served) => served.bundle.score_batch(matrix.view())?,
            Scoring::Online { .. } => online_scores,
        };
        let threshold = scoring.threshold();
        // Backfill (appended before alerts start) builds state, raises no
        // alert, and is kept out of drift windows and rollout tallies.
        let live: Vec<bool> = meta.iter().map(|m| m.4).collect();
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
            Scoring::Online { .. } => None,
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
            Scoring::Online { .. } => vec![false; meta.len()],
        };
        let decided = now_micros();
        // The champion's alerts (live events it decides for, over its
        // threshold) are explained on the pool's threads: one walk of every
        // tree per alert, the scorer thread's largest cost when many events
        // alert. `Some` marks exactly the events the champion alerts for.
        let mut explained: Vec<Option<Vec<radar_registry::Explained>>> = (0..meta.len())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                (live[i] && !decided_by_challenger[i] && scores[i] > threshold).then(|| {
                    scoring
                        .explain(&shared.schema.columns, matrix.row(i), Some(meta[i].2))
                        .unwrap_or_default()
                })
            })
            .collect();
        let mut alerts = Vec::new();
        let mut shadow = Vec::new();
        for (i, ((record, ingest, partition, offset, _), &score)) in
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
            // Explained above exactly when the champion alerts for it.
            let Some(explained) = explained[i].take() else {
                continue;
            };
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
            periodic_checkpoint(
                &mut retry,
                log,
                shared,
                options,
                &mut saved,
                consumer.as_mut(),
            )?;
            last_lag = Some(Instant::now());
        }
    }
    retry.run(|| checkpoint(shared, options, &mut saved, consumer.as_mut()))?;
    Ok(scored_total)
}

/// What a part's last checkpoint written here covered, and the version of
/// it that was written.
struct Saved {
    next: u64,
    labels_seq: u64,
    tag: Tag,
}

impl Saved {
    fn covers(&self, part: &Part) -> bool {
        (self.next, self.labels_seq) == (part.next, part.labels_seq)
    }
}

/// A scored-to-be event: (record, appended at, partition, offset, may
/// alert).
type Meta = (radar_core::decode::Record, i64, u32, u64, bool);

/// What feeding a part its records of a batch gave.
struct Fed {
    /// `width` features per event of `meta`.
    rows: Vec<f64>,
    meta: Vec<Meta>,
    /// The partition's online detector's scores (empty without one).
    online: Vec<f64>,
    /// Records that did not decode, or that a door refused.
    invalid: u64,
}

/// Feeds partition `partition`'s `records` (in offset order) to its part:
/// features, and the online detector's scores (it learns them).
fn feed(
    part: &mut Part,
    partition: u32,
    records: &[&radar_log::Stored],
    mut decoder: Decoder,
    width: usize,
) -> Result<Fed, ScorerError> {
    let mut fed = Fed {
        rows: Vec::with_capacity(records.len() * width),
        meta: Vec::with_capacity(records.len()),
        online: Vec::new(),
        invalid: 0,
    };
    for s in records {
        // Already folded into the restored state.
        if s.offset < part.next {
            continue;
        }
        part.next = s.offset + 1;
        // Invalid events were answered at ingest and go to the dead-letter
        // table through capture (which counts them); a door's refusal
        // stands even when the bytes would decode.
        let refused = s
            .record
            .headers
            .iter()
            .any(|(h, _)| h == DEAD_LETTER_HEADER);
        let decoded = decoder.decode_json(&s.record.value, s.record.timestamp);
        let (false, Ok(record)) = (refused, decoded) else {
            fed.invalid += 1;
            continue;
        };
        let at = fed.rows.len();
        fed.rows.resize(at + width, 0.0);
        let row = &mut fed.rows[at..];
        part.engine.process(&record, row);
        if let Some(model) = &mut part.online {
            fed.online.push(model.observe(row)?);
        }
        let live = s.record.timestamp >= part.alerts_from;
        fed.meta
            .push((record, s.record.timestamp, partition, s.offset, live));
    }
    Ok(fed)
}

fn read(state: &SharedState) -> Result<RwLockReadGuard<'_, StreamState>, ScorerError> {
    state.read().map_err(|_| ScorerError::Poisoned)
}

/// Takes the partitions `held` as this worker's: the parts of others go
/// (saved when the group took them, see [`hand_over`]); each new one is
/// restored from its checkpoint, or starts fresh (and is checkpointed at
/// once, so where its alerts start is kept from the first event on:
/// `options.alerts_from`, else `started`).
fn take_assignment(
    shared: &Shared,
    options: &ScorerOptions,
    started: i64,
    held: &[u32],
    saved: &mut BTreeMap<u32, Saved>,
) -> Result<(), ScorerError> {
    let gone: Vec<u32> = read(&shared.state)?
        .held()
        .into_iter()
        .filter(|p| !held.contains(p))
        .collect();
    if !gone.is_empty() {
        let mut state = shared.state.write().map_err(|_| ScorerError::Poisoned)?;
        for p in &gone {
            state.remove(*p);
            saved.remove(p);
        }
        tracing::info!(partitions = ?gone, "scorer state of partitions dropped: another worker holds them");
    }
    let new: Vec<u32> = {
        let state = read(&shared.state)?;
        held.iter()
            .copied()
            .filter(|&p| state.part(p).is_none())
            .collect()
    };
    for p in new {
        // Loaded outside the state's lock: `/score` goes on meanwhile.
        let store_err = |source| ScorerError::CheckpointStore {
            path: options.checkpoints.describe(p),
            source,
        };
        let loaded = options.checkpoints.load(p).map_err(store_err)?;
        let state = read(&shared.state)?;
        let (mut part, tag) = match loaded {
            Some((bytes, tag)) => (
                state.decode(p, &bytes).map_err(|e| {
                    ScorerError::Checkpoint(format!("`{}`: {e}", options.checkpoints.describe(p)))
                })?,
                Some(tag),
            ),
            None => (
                state
                    .fresh(
                        // Read only when a part starts: the old checkpoint
                        // is consulted (and said) once per new part.
                        options
                            .alerts_from
                            .or_else(|| legacy_alerts_from(options.legacy_checkpoint.as_deref()))
                            .unwrap_or(started),
                    )
                    .map_err(|e| ScorerError::Pipeline(Box::new(e)))?,
                None,
            ),
        };
        if let Some(t) = options.alerts_from {
            part.alerts_from = t;
        }
        let tag = match tag {
            Some(tag) => {
                tracing::info!(
                    partition = p,
                    next = part.next,
                    entities = part.engine.entities(),
                    "scorer state of partition restored"
                );
                tag
            }
            None => {
                let tag = options
                    .checkpoints
                    .save(p, state.encode(p, &part))
                    .map_err(store_err)?;
                tracing::info!(partition = p, "scorer state of partition started fresh");
                tag
            }
        };
        saved.insert(
            p,
            Saved {
                next: part.next,
                labels_seq: part.labels_seq,
                tag,
            },
        );
        drop(state);
        shared
            .state
            .write()
            .map_err(|_| ScorerError::Poisoned)?
            .insert(p, part);
    }
    Ok(())
}

/// The consumer's revoke hook: the parts of `revoked` are checkpointed and
/// dropped; their offsets are returned for the consumer to commit before
/// the partitions move. A part that cannot be saved is only dropped (its
/// next holder replays from its last checkpoint).
fn hand_over(state: &SharedState, checkpoints: &Checkpoints, revoked: &[u32]) -> Vec<(u32, u64)> {
    let Ok(mut state) = state.write() else {
        return Vec::new();
    };
    let mut commit = Vec::new();
    for &p in revoked {
        let Some(part) = state.remove(p) else {
            continue;
        };
        match checkpoints.save(p, state.encode(p, &part)) {
            Ok(_) => {
                tracing::info!(
                    partition = p,
                    next = part.next,
                    "scorer state of partition handed over"
                );
                commit.push((p, part.next));
            }
            Err(e) => tracing::warn!(
                partition = p,
                error = %e,
                "saving a revoked partition's scorer state failed: its next holder replays from the last checkpoint"
            ),
        }
    }
    commit
}

/// What scores the stream: the declared online detector, else the served
/// champion.
pub enum Source<'a> {
    Online(&'a Shared, &'a OnlineModel),
    Champion(Arc<Served>),
}

impl<'a> Source<'a> {
    /// `None` while no champion is loaded (and no online detector declared).
    pub fn of(shared: &'a Shared) -> Option<Source<'a>> {
        match (&shared.online, shared.model.load_full()) {
            (Some(online), _) => Some(Source::Online(shared, online)),
            (None, Some(served)) => Some(Source::Champion(served)),
            (None, None) => None,
        }
    }

    /// Ready to score: the online detectors' state is read-locked for as
    /// long as the result lives, so readers see whole batches.
    pub fn lock(&self) -> Result<Scoring<'_>, ScorerError> {
        Ok(match self {
            Source::Online(shared, template) => Scoring::Online {
                state: read(&shared.state)?,
                template,
            },
            Source::Champion(served) => Scoring::Champion(served),
        })
    }

    /// [`Source::lock`] without waiting: `None` while the scorer holds the
    /// online detectors' state.
    pub fn try_lock(&self) -> Result<Option<Scoring<'_>>, ScorerError> {
        Ok(Some(match self {
            Source::Online(shared, template) => match shared.state.try_read() {
                Ok(state) => Scoring::Online { state, template },
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(ScorerError::Poisoned),
            },
            Source::Champion(served) => Scoring::Champion(served),
        }))
    }
}

/// A model ready to score (see [`Source::lock`]).
pub enum Scoring<'a> {
    Champion(&'a Served),
    /// Each partition's online detector; `template` (which never learns)
    /// for events of partitions not held here.
    Online {
        state: RwLockReadGuard<'a, StreamState>,
        template: &'a OnlineModel,
    },
}

impl Scoring<'_> {
    /// The score of one row of `partition`'s events, learning nothing.
    pub fn peek(
        &self,
        row: &[f64],
        partition: Option<u32>,
    ) -> Result<f64, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => served.bundle.score_row(row),
            Scoring::Online { state, template } => online_of(state, template, partition).peek(row),
        }
    }

    pub fn threshold(&self) -> f64 {
        match self {
            Scoring::Champion(served) => served.bundle.threshold,
            Scoring::Online { template, .. } => template.threshold,
        }
    }

    /// (name, version, still warming up: some partition held here is).
    pub fn model(&self) -> (String, i64, bool) {
        match self {
            Scoring::Champion(served) => (served.name.clone(), served.version, false),
            Scoring::Online { state, template } => {
                let mut models = state
                    .parts()
                    .filter_map(|(_, part)| part.online.as_ref())
                    .peekable();
                let warming = models.peek().is_none() || models.any(OnlineModel::warming_up);
                (template.name().to_owned(), 0, warming)
            }
        }
    }

    /// (input, share, above the data?) largest share first; the inputs
    /// are the feature columns (and a hybrid's unsupervised score).
    pub fn explain(
        &self,
        columns: &[String],
        row: &[f64],
        partition: Option<u32>,
    ) -> Result<Vec<radar_registry::Explained>, radar_detect::DetectError> {
        match self {
            Scoring::Champion(served) => served.bundle.explain(row),
            Scoring::Online { state, template } => Ok(online_of(state, template, partition)
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

/// The online detector of `partition` (the untrained `template` when the
/// partition is not held here).
fn online_of<'a>(
    state: &'a StreamState,
    template: &'a OnlineModel,
    partition: Option<u32>,
) -> &'a OnlineModel {
    partition
        .and_then(|p| state.part(p))
        .and_then(|part| part.online.as_ref())
        .unwrap_or(template)
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

/// Folds the labels recorded since the parts' last into the part of each
/// label's event partition (labels of events indexed before partitions
/// were kept go to every part).
fn fold_labels(
    store: &crate::labels::LabelStore,
    stream: &str,
    state: &mut StreamState,
) -> crate::error::Result<()> {
    let Some(after) = state.parts().map(|(_, part)| part.labels_seq).min() else {
        return Ok(());
    };
    let (last, moves) = store.moves_since(stream, after, 10_000)?;
    for (p, part) in state.parts_mut() {
        for m in &moves {
            if m.seq > part.labels_seq && m.partition.is_none_or(|mp| mp == p) {
                part.engine.apply_label(&m.keys, m.at, m.change);
            }
        }
        part.labels_seq = part.labels_seq.max(last);
    }
    Ok(())
}

/// Lag of the partitions held here (other workers report theirs).
fn update_lag(log: &dyn EventLog, topic: &str, state: &StreamState, metrics: &Metrics) {
    let lag: Vec<(u32, u64)> = state
        .parts()
        .map(|(p, part)| {
            let (earliest, end) = log.offsets(topic, p).unwrap_or((0, 0));
            (p, end.saturating_sub(part.next.max(earliest)))
        })
        .collect();
    metrics.set_lag(&lag);
}

/// The scorer's regular checkpoint, then the lag it leaves. A failed
/// checkpoint (a full disk, a store down) is tried again at the next one
/// (the events it would cover are replayed at worst).
fn periodic_checkpoint(
    retry: &mut Retry<'_>,
    log: &dyn EventLog,
    shared: &Shared,
    options: &ScorerOptions,
    saved: &mut BTreeMap<u32, Saved>,
    consumer: &mut dyn radar_log::Consumer,
) -> Result<(), ScorerError> {
    match retry.attempt(|| checkpoint(shared, options, saved, &mut *consumer)) {
        Ok(()) => {}
        Err(e) if e.is_transient() => {}
        Err(e) => return Err(e),
    }
    update_lag(
        log,
        &shared.schema.name,
        &*read(&shared.state)?,
        &shared.metrics,
    );
    Ok(())
}

/// Each part that moved since its last checkpoint is written (state and
/// offset durable first), then the group's offsets are committed (they
/// serve lag reporting and where the next holder starts reading; the
/// checkpoint's offset says what it skips). Only partitions this member
/// still holds are written, and never over a checkpoint further along: a
/// worker that lost its partitions without a rebalance (a session that
/// timed out) must not undo its successor's progress.
fn checkpoint(
    shared: &Shared,
    options: &ScorerOptions,
    saved: &mut BTreeMap<u32, Saved>,
    consumer: &mut dyn radar_log::Consumer,
) -> Result<(), ScorerError> {
    let held = consumer.assignment()?;
    let due: Vec<(u32, u64, u64, Vec<u8>)> = {
        let state = read(&shared.state)?;
        state
            .parts()
            .filter(|(p, part)| held.contains(p) && saved.get(p).is_none_or(|s| !s.covers(part)))
            .map(|(p, part)| (p, part.next, part.labels_seq, state.encode(p, part)))
            .collect()
    };
    let mut commits = Vec::with_capacity(due.len());
    for (p, next, labels_seq, bytes) in due {
        let store_err = |source| ScorerError::CheckpointStore {
            path: options.checkpoints.describe(p),
            source,
        };
        let stored = options.checkpoints.tag(p).map_err(store_err)?;
        if let Some(ours) = saved.get(&p)
            && stored.as_ref() != Some(&ours.tag)
        {
            tracing::warn!(
                partition = p,
                "another worker checkpointed this partition since this one did: its state here is dropped"
            );
            shared
                .state
                .write()
                .map_err(|_| ScorerError::Poisoned)?
                .remove(p);
            saved.remove(&p);
            continue;
        }
        let tag = options.checkpoints.save(p, bytes).map_err(store_err)?;
        saved.insert(
            p,
            Saved {
                next,
                labels_seq,
                tag,
            },
        );
        commits.push((p, next));
    }
    match consumer.commit(&commits) {
        // The checkpoints hold the offsets: records the group hands out
        // again after a rebalance are skipped by them.
        Ok(()) | Err(radar_log::LogError::Rebalanced(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
