//! The routes. Each handler parses its request, calls the pipeline (off
//! the async threads when it may block: SQLite, the scorer's locks, the
//! log's fsync) and answers; errors go through [`crate::error`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use radar_core::decode::Decoder;
use radar_lake::capture::dead_letter_record;
use radar_log::{EventLog, Record};
use radar_pipeline::pipeline::Pipeline;
use radar_pipeline::scorer::{Shared, Source};
use radar_pipeline::sinks::{AlertQuery, AlertStore, Contribution, direction_name};
use radar_registry::ModelVersion;
use radar_registry::Registry;
use serde_json::{Value, json};

use crate::api::{
    AlertsList, DriftAnswer, ErrorBody, Healthy, IngestAnswer, IngestItem, IngestOrError,
    LabelItem, LabelsAnswer, LabelsList, LabelsOrError, ModelAnswer, ModelsList, Readiness,
    RunsList, ScoreAnswer, ScoreItem, StoredLabel,
};
use crate::door::Door;
use crate::error::ApiError;

/// One stream the server serves: its pipeline's shared state and the
/// last hour of its figures.
#[derive(Clone)]
pub struct StreamApi {
    /// Shared so a request takes it for the price of a count (the schema
    /// inside is deep).
    pub shared: Arc<Shared>,
    /// Cloned per request (cheaply: it shares the schema).
    decoder: Decoder,
    /// Sampled by [`sample_history`].
    pub history: Arc<std::sync::Mutex<radar_pipeline::history::History>>,
}

impl StreamApi {
    pub fn new(shared: Shared) -> StreamApi {
        StreamApi {
            decoder: Decoder::new(shared.schema.clone()),
            shared: Arc::new(shared),
            history: Default::default(),
        }
    }

    fn name(&self) -> &str {
        &self.shared.schema.name
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Events one request to `/events` or `/score` may carry.
    pub max_events_per_request: usize,
    pub log: Arc<dyn EventLog>,
    /// The streams served, in the config's order (at least one).
    pub streams: Arc<Vec<StreamApi>>,
    pub alerts: AlertStore,
    pub labels: radar_pipeline::labels::LabelStore,
    pub registry: Registry,
    /// Dead letters each key may have kept per minute.
    pub dead_letters: Arc<DeadLetterBudget>,
}

/// Dead letters kept per key (on an open server, for everyone together)
/// in a minute unless `radar up` says otherwise.
pub const DEAD_LETTERS_PER_KEY_PER_MINUTE: u64 = 10_000;

/// How many refused events each key may have kept as dead letters in the
/// current minute: with the per-request bound, what keeps a key sending
/// garbage from filling the disk. Past it, refused events are answered and
/// counted, not stored.
#[derive(Debug)]
pub struct DeadLetterBudget {
    per_minute: u64,
    /// Per key: the minute (since the epoch) and what was spent in it.
    spent: std::sync::Mutex<std::collections::HashMap<String, (i64, u64)>>,
}

impl Default for DeadLetterBudget {
    fn default() -> Self {
        DeadLetterBudget::new(DEAD_LETTERS_PER_KEY_PER_MINUTE)
    }
}

impl DeadLetterBudget {
    pub fn new(per_minute: u64) -> DeadLetterBudget {
        DeadLetterBudget {
            per_minute,
            spent: Default::default(),
        }
    }

    /// Takes one dead letter from `key`'s budget at `now_us`; false when
    /// the minute's budget is spent.
    pub fn take(&self, key: &str, now_us: i64) -> bool {
        let minute = now_us.div_euclid(60_000_000);
        let Ok(mut spent) = self.spent.lock() else {
            return false;
        };
        if spent.len() > 10_000 {
            spent.retain(|_, (m, _)| *m == minute);
        }
        let entry = spent.entry(key.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

impl AppState {
    /// The API of `pipelines`' streams (which share their stores); None
    /// without a pipeline.
    pub fn of(pipelines: &[Pipeline]) -> Option<AppState> {
        let p = pipelines.first()?;
        Some(AppState {
            max_events_per_request: DEFAULT_MAX_EVENTS,
            log: p.log.clone(),
            streams: Arc::new(
                pipelines
                    .iter()
                    .map(|p| StreamApi::new(p.shared.clone()))
                    .collect(),
            ),
            alerts: p.alerts.clone(),
            labels: p.labels.clone(),
            registry: p.registry.clone(),
            dead_letters: Default::default(),
        })
    }

    /// The stream `name`, or a 404 naming those served.
    fn stream(&self, name: &str) -> Result<&StreamApi, ApiError> {
        self.streams
            .iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "stream `{name}` is not served here (serving {})",
                    self.stream_names()
                ))
            })
    }

    /// The one stream served, for the routes that do not name one; a 400
    /// when there are several.
    fn sole_stream(&self) -> Result<&StreamApi, ApiError> {
        match self.streams.as_slice() {
            [one] => Ok(one),
            _ => Err(ApiError::bad_field(
                "stream",
                format!(
                    "several streams are served here ({}): name one in the path, /v1/streams/{{stream}}/labels",
                    self.stream_names()
                ),
            )),
        }
    }

    fn stream_names(&self) -> String {
        self.streams
            .iter()
            .map(|s| format!("`{}`", s.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Samples each stream's metrics into its history every few seconds, on
/// `rt`, while the state lives.
pub fn sample_history(state: &AppState, rt: &tokio::runtime::Handle) {
    let streams: Vec<_> = state
        .streams
        .iter()
        .map(|s| (Arc::downgrade(&s.history), s.shared.metrics.clone()))
        .collect();
    rt.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(
            radar_pipeline::history::INTERVAL_SECONDS,
        ));
        loop {
            every.tick().await;
            for (history, metrics) in &streams {
                let Some(h) = history.upgrade() else { return };
                if let Ok(mut h) = h.lock() {
                    h.sample(metrics, crate::now_micros());
                }
            }
        }
    });
}

/// Invalid events of one request kept as dead letters; the rest are
/// answered and counted, not stored.
pub const MAX_DEAD_LETTERS_PER_REQUEST: usize = 100;

/// The furthest a page of alerts may start (SQLite's OFFSET is an i64;
/// beyond this, paging is not what the caller wants).
pub const MAX_OFFSET: usize = 1_000_000_000;

/// Events one request may carry unless `radar up` says otherwise.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// The health component of the event log, as ingest sees it.
pub const LOG: &str = "log";

/// The API; behind `door` when given (keys and roles), and always with
/// POST bodies declared as JSON or NDJSON.
pub fn router(state: AppState, max_body_bytes: usize, door: Option<Arc<Door>>) -> Router {
    // The body check sits on each POST handler, not on the router: a
    // method a path does not take must be a 405, not a 415.
    let routes = Router::new()
        .route(
            "/v1/streams/{stream}/events",
            post(ingest.layer(axum::middleware::from_fn(crate::door::declared_body))),
        )
        .route(
            "/v1/streams/{stream}/score",
            post(score.layer(axum::middleware::from_fn(crate::door::declared_body))),
        )
        .route("/v1/streams/{stream}/drift", get(drift))
        .route("/v1/streams/{stream}/recent", get(recent))
        .route("/v1/streams/{stream}/rollout", get(rollout))
        .route("/v1/streams/{stream}/history", get(history))
        .route(
            "/v1/streams/{stream}/labels",
            post(post_stream_labels.layer(axum::middleware::from_fn(crate::door::declared_body)))
                .get(get_stream_labels),
        )
        .route("/v1/alerts", get(alerts))
        .route(
            "/v1/labels",
            post(post_labels.layer(axum::middleware::from_fn(crate::door::declared_body)))
                .get(get_labels),
        )
        .route("/v1/models", get(models))
        .route("/v1/models/{name}", get(model))
        .route("/v1/models/{name}/versions/{version}", get(model_version))
        .route(
            "/v1/models/{name}/aliases/{alias}",
            post(set_alias.layer(axum::middleware::from_fn(crate::door::declared_body))),
        )
        .route(
            "/v1/models/{name}/aliases/{alias}/rollback",
            post(rollback_alias.layer(axum::middleware::from_fn(crate::door::declared_body))),
        )
        .route("/v1/runs", get(runs))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/", get(crate::dashboard::index))
        .route("/ui/app.js", get(crate::dashboard::app_js))
        .route("/ui/app.css", get(crate::dashboard::app_css));
    let routes = match door {
        Some(door) => routes.route_layer(axum::middleware::from_fn_with_state(
            door,
            crate::door::authorize,
        )),
        None => routes,
    };
    routes
        .fallback(|| async {
            ApiError::not_found(
                "no such endpoint; see /v1/streams/{stream}/events, /v1/alerts, /v1/models, /v1/runs, /healthz, /readyz, /metrics",
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .with_state(state)
}

/// Runs `f` off the async threads: SQLite, the locks the scorer holds
/// for a batch, the log's fsync.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

/// One JSON object, an array of them, or NDJSON (one per line).
fn split_events(body: &[u8], max: usize) -> Result<Vec<Vec<u8>>, ApiError> {
    let text = body.trim_ascii();
    if text.is_empty() {
        return Err(ApiError::bad(
            "the body is empty: send a JSON object, an array of objects, or NDJSON",
        ));
    }
    let too_many = |n: usize| {
        ApiError::bad(format!(
            "{n} events in one request; at most {max} (split the batch)"
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE, "too_many_events")
    };
    if text[0] == b'[' {
        // Each element's own bytes, as sent: the decoder checks each for
        // duplicate keys, and the log stores what came, not a rewrite.
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(text)
            .map_err(|e| ApiError::bad(format!("the body is not a JSON array: {e}")))?;
        if items.is_empty() {
            return Err(ApiError::bad("the array holds no events"));
        }
        if items.len() > max {
            return Err(too_many(items.len()));
        }
        return Ok(items.iter().map(|v| v.get().as_bytes().to_vec()).collect());
    }
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > max {
        return Err(too_many(lines.len()));
    }
    Ok(lines.into_iter().map(<[u8]>::to_vec).collect())
}

/// Events to append to the stream's log: one JSON object, an array of
/// them, or NDJSON. Each is validated on its own; refused ones are kept
/// as dead letters with their reason (up to 100 per request).
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/events",
    tag = "events",
    params(("stream" = String, Path, description = "The stream's name")),
    request_body(
        description = "One event (a JSON object), an array of events, or NDJSON (one object per line).",
        content(
            (serde_json::Value = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted: the accepted events are durable in the log", body = IngestAnswer),
        (status = 400, description = "No event was valid (or the body was not events at all)", body = IngestOrError),
        (status = 413, description = "More events or bytes than one request may carry", body = ErrorBody),
    ),
)]
pub(crate) async fn ingest(
    State(state): State<AppState>,
    key: Option<axum::Extension<crate::door::KeyId>>,
    Path(stream): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = key.map_or_else(String::new, |k| k.0.0);
    let served = state.stream(&stream)?;
    let (shared, mut decoder) = (served.shared.clone(), served.decoder.clone());
    let events = split_events(&body, state.max_events_per_request)?;
    let counters = shared.metrics.component("ingest");
    let now = crate::now_micros();
    let mut records = Vec::with_capacity(events.len());
    // Which result each appended record answers.
    let mut positions = Vec::with_capacity(events.len());
    let mut results = Vec::with_capacity(events.len());
    let mut rejected_by_reason: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let (mut invalid, mut unstored) = (0usize, 0u64);
    for (index, raw) in events.into_iter().enumerate() {
        let mut result = IngestItem {
            index,
            partition: None,
            offset: None,
            error: None,
            reason: None,
            field: None,
        };
        match decoder.decode_json(&raw, now) {
            Ok(r) => {
                records.push(Record::new(
                    r.entity.as_deref().map(str::as_bytes),
                    raw,
                    now,
                ));
                positions.push(index);
            }
            Err(dl) => {
                // Kept in the log with its reason (capture files it as a
                // dead letter), up to a bound per request: refused input
                // must not fill the disk. Past it, the answer still says
                // why, briefly.
                *rejected_by_reason.entry(dl.reason.code()).or_insert(0u64) += 1;
                invalid += 1;
                result.reason = Some(dl.reason.code());
                if invalid <= MAX_DEAD_LETTERS_PER_REQUEST && state.dead_letters.take(&key, now) {
                    records.push(dead_letter_record(&dl, now));
                    positions.push(index);
                    result.error = Some(dl.reason.to_string());
                    result.field = dl.reason.field().map(str::to_owned);
                } else {
                    unstored += 1;
                    result.error = Some(
                        "invalid (not kept: too many dead letters in this request or from this key this minute)"
                            .into(),
                    );
                }
            }
        }
        results.push(result);
    }
    let valid = results.iter().filter(|r| r.error.is_none()).count();
    counters.received(results.len() as u64);
    counters.dropped("invalid", (results.len() - valid) as u64);
    if unstored > 0 {
        counters.dropped("dead_letter_cap", unstored);
    }
    shared.metrics.events_in.inc_by(results.len() as u64);
    let log = state.log.clone();
    let appended = blocking(move || log.append(&stream, &records)).await?;
    let acks = match appended {
        Ok(acks) => {
            shared.health.ok(LOG);
            acks
        }
        Err(e) => {
            counters.errors(1);
            shared.health.degraded(LOG, e.to_string());
            // Nothing of the request was acknowledged; the same request can
            // be sent again.
            let message = if e.is_storage_full() {
                "the event log is out of disk space; nothing was stored, retry later".to_owned()
            } else {
                format!(
                    "the event log refused the append ({e}); nothing was acknowledged, send the request again later"
                )
            };
            return Err(ApiError::unavailable(message));
        }
    };
    counters.sent(valid as u64);
    for (&i, (p, o)) in positions.iter().zip(acks) {
        let r = &mut results[i];
        if r.error.is_none() {
            r.partition = Some(p);
            r.offset = Some(o);
        }
    }
    let body = IngestAnswer {
        accepted: valid,
        rejected: results.len() - valid,
        rejected_by_reason,
        results,
    };
    Ok(if valid == 0 {
        (StatusCode::BAD_REQUEST, Json(IngestOrError::Answer(body))).into_response()
    } else {
        (StatusCode::ACCEPTED, Json(body)).into_response()
    })
}

/// Scores events against the served model without storing them: each
/// event's score, the threshold, the decision, and the features behind
/// it. Needs the `score` role.
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/score",
    tag = "events",
    params(("stream" = String, Path, description = "The stream's name")),
    request_body(
        description = "One event, an array of events, or NDJSON.",
        content(
            (serde_json::Value = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 200, description = "Each event's score, or why it could not be scored", body = ScoreAnswer),
        (status = 400, description = "No event in the body is valid", body = ErrorBody),
        (status = 503, description = "No model is loaded yet", body = ErrorBody),
    ),
)]
pub(crate) async fn score(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Bytes,
) -> Result<Json<ScoreAnswer>, ApiError> {
    let served = state.stream(&stream)?;
    let events = split_events(&body, state.max_events_per_request)?;
    // A few events are a few tens of microseconds of work: done here when
    // the feature state is free, cheaper than a hand-off to another thread.
    if events.len() <= INLINE_SCORE_EVENTS
        && let Some(answer) =
            score_events(&served.shared, served.decoder.clone(), &events, Wait::No).transpose()
    {
        return answer;
    }
    // The scorer holds the feature state's lock for a batch: wait for it
    // off the async threads.
    let (shared, decoder) = (served.shared.clone(), served.decoder.clone());
    blocking(move || score_events(&shared, decoder, &events, Wait::Yes))
        .await??
        .ok_or_else(|| ApiError::internal("scoring that may wait gave up waiting"))
}

/// Requests of at most this many events to `/score` are scored on the
/// request's thread when no lock they need is held (see [`score`]).
const INLINE_SCORE_EVENTS: usize = 4;

/// Whether scoring may wait for the scorer's locks (on the blocking pool)
/// or gives up at once (on a request thread).
#[derive(Clone, Copy, PartialEq)]
enum Wait {
    Yes,
    No,
}

/// The served model's drift: the window being filled, the last finished
/// one per feature, and the history (oldest first).
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/drift",
    tag = "models",
    params(("stream" = String, Path, description = "The stream's name")),
    responses((status = 200, description = "The served model's drift", body = DriftAnswer)),
)]
pub(crate) async fn drift(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<DriftAnswer>, ApiError> {
    let monitor = state
        .stream(&stream)?
        .shared
        .drift
        .lock()
        .map_err(|_| ApiError::internal("the drift monitor's lock is poisoned"))?;
    let history: Vec<Value> = monitor
        .history()
        .map(|w| {
            json!({
                "ended_at": w.ended_at, "model": w.model, "version": w.version,
                "events": w.events, "drift": w.drift, "drifted_share": w.drifted_share,
                "alert_rate": w.alert_rate, "expected_alert_rate": w.expected_alert_rate,
                "score_wasserstein": w.score.as_ref().map(|s| s.wasserstein),
            })
        })
        .collect();
    Ok(Json(DriftAnswer {
        stream,
        options: json!(monitor.options()),
        pending_events: monitor.pending() as u64,
        latest: json!(monitor.latest()),
        history,
    }))
}

/// The last hour of the stream's figures, one sample every 5 seconds
/// since the server started (events, scored and alerts per second, alert
/// rate, decision p99, lag).
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/history",
    tag = "events",
    params(("stream" = String, Path, description = "The stream's name")),
    responses((status = 200, description = "The samples, oldest first", body = crate::api::HistoryAnswer)),
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<crate::api::HistoryAnswer>, ApiError> {
    let samples = state
        .stream(&stream)?
        .history
        .lock()
        .map_err(|_| ApiError::internal("the history's lock is poisoned"))?
        .samples();
    Ok(Json(crate::api::HistoryAnswer {
        interval_seconds: radar_pipeline::history::INTERVAL_SECONDS,
        samples,
    }))
}

/// Where a challenger's rollout stands (shadow, canary, none) with its
/// tallies.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/rollout",
    tag = "models",
    params(("stream" = String, Path, description = "The stream's name")),
    responses((status = 200, description = "The rollout", body = crate::api::RolloutAnswer)),
)]
pub(crate) async fn rollout(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<crate::api::RolloutAnswer>, ApiError> {
    let rollout = state
        .stream(&stream)?
        .shared
        .rollout
        .lock()
        .map_err(|_| ApiError::internal("the rollout's lock is poisoned"))?;
    Ok(Json(crate::api::RolloutAnswer {
        stage: rollout.stage().map(|s| {
            match s {
                radar_pipeline::rollout::Stage::Shadow => "shadow",
                radar_pipeline::rollout::Stage::Canary => "canary",
            }
            .to_owned()
        }),
        state: json!(*rollout),
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentQuery {
    limit: Option<usize>,
    entity: Option<String>,
}

/// The last scored live events (feature rows, scores, alerts) beside the
/// served model's reference profile: what the dashboard's Explore page
/// draws. Kept in memory, the last 5,000.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/recent",
    tag = "events",
    params(
        ("stream" = String, Path, description = "The stream's name"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 5000, description = "At most this many, newest (default 2000)"),
        ("entity" = Option<String>, Query, description = "Only this entity's events"),
    ),
    responses((status = 200, description = "The recent events", body = crate::api::RecentAnswer)),
)]
pub(crate) async fn recent(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    q: Result<Query<RecentQuery>, QueryRejection>,
) -> Result<Json<crate::api::RecentAnswer>, ApiError> {
    let shared = &state.stream(&stream)?.shared;
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(2000);
    if limit == 0 || limit > radar_pipeline::recent::DEFAULT_CAPACITY {
        return Err(ApiError::bad_field(
            "limit",
            format!(
                "`limit` must be between 1 and {}",
                radar_pipeline::recent::DEFAULT_CAPACITY
            ),
        ));
    }
    let events = shared
        .recent
        .lock()
        .map_err(|_| ApiError::internal("the recent events' lock is poisoned"))?
        .last(limit, q.entity.as_deref());
    let served = shared.model.load_full();
    Ok(Json(crate::api::RecentAnswer {
        columns: shared.schema.columns.clone(),
        model: served.as_ref().map(|s| s.name.clone()),
        model_version: served.as_ref().map(|s| s.version),
        threshold: served.as_ref().map(|s| s.bundle.threshold),
        reference_features: served
            .as_ref()
            .map(|s| s.bundle.reference.feature_quantiles.clone())
            .unwrap_or_default(),
        reference_scores: served
            .as_ref()
            .map(|s| s.bundle.reference.score_quantiles.clone())
            .unwrap_or_default(),
        events,
    }))
}

/// `None` when `wait` is [`Wait::No`] and a lock was held.
fn score_events(
    shared: &Shared,
    mut decoder: Decoder,
    events: &[Vec<u8>],
    wait: Wait,
) -> Result<Option<Json<ScoreAnswer>>, ApiError> {
    let Some(source) = Source::of(shared) else {
        return Err(ApiError::unavailable("no champion model is loaded yet"));
    };
    let poisoned = || ApiError::internal("the feature state's lock is poisoned");
    let columns = &shared.schema.columns;
    // Features first, the feature state's read lock taken per slice of
    // events, never for the whole request: the scorer's writes (and other
    // requests) interleave.
    // Each event's row in one buffer (no allocation per event), or why
    // it was refused.
    let width = columns.len();
    let mut features: Vec<f64> = Vec::with_capacity(events.len() * width);
    // (row start, the event's partition when its state is held here)
    let mut rows: Vec<Result<(usize, Option<u32>), ScoreItem>> = Vec::with_capacity(events.len());
    for (chunk_start, chunk) in events.chunks(256).enumerate() {
        let state = match wait {
            Wait::Yes => shared.state.read().map_err(|_| poisoned())?,
            Wait::No => match shared.state.try_read() {
                Ok(state) => state,
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
            },
        };
        for (k, raw) in chunk.iter().enumerate() {
            let index = chunk_start * 256 + k;
            rows.push(match decoder.decode_json(raw, crate::now_micros()) {
                Ok(record) => {
                    let at = features.len();
                    features.resize(at + width, 0.0);
                    let held = state.peek(&record, &mut features[at..]);
                    Ok((at, held))
                }
                Err(dl) => Err(ScoreItem::Refused {
                    index,
                    error: dl.reason.to_string(),
                    reason: dl.reason.code(),
                    field: dl.reason.field().map(str::to_owned),
                }),
            });
        }
    }
    if !rows.is_empty() && rows.iter().all(Result::is_err) {
        let (error, field) = match rows.iter().find_map(|r| r.as_ref().err()) {
            Some(ScoreItem::Refused { error, field, .. }) => (error.as_str(), field.clone()),
            _ => ("invalid", None),
        };
        let mut e = ApiError::bad(format!(
            "none of the {} events is valid; the first: {error}",
            rows.len()
        ));
        e.field = field;
        return Err(e);
    }
    let scoring = match wait {
        Wait::Yes => source.lock()?,
        Wait::No => match source.try_lock()? {
            Some(scoring) => scoring,
            None => return Ok(None),
        },
    };
    let threshold = scoring.threshold();
    let mut out = Vec::with_capacity(rows.len());
    for (index, row) in rows.into_iter().enumerate() {
        let (row, partition) = match row {
            Ok((at, partition)) => (&features[at..at + width], partition),
            Err(refused) => {
                out.push(refused);
                continue;
            }
        };
        let s = scoring.peek(row, partition).map_err(ApiError::internal)?;
        let ranked = scoring
            .explain(columns, row, partition)
            .map_err(ApiError::internal)?;
        let contributions = ranked
            .into_iter()
            .take(5)
            .map(|e| Contribution {
                feature: e.input,
                share: e.share,
                value: e.value,
                direction: direction_name(e.above),
            })
            .collect();
        out.push(ScoreItem::Scored {
            index,
            score: s,
            threshold,
            anomaly: s > threshold,
            contributions,
            features: columns.iter().cloned().zip(row.iter().copied()).collect(),
            history: partition.is_some(),
        });
    }
    let (model, model_version, warming_up) = scoring.model();
    Ok(Some(Json(ScoreAnswer {
        model,
        model_version,
        warming_up,
        results: out,
    })))
}

/// Stored alerts, newest event time first, filtered and paged.
#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "alerts",
    params(
        ("since" = Option<String>, Query, description = "Event time from (RFC 3339)"),
        ("stream" = Option<String>, Query, description = "Only this stream's alerts"),
        ("entity" = Option<String>, Query, description = "Only this entity's alerts"),
        ("min_score" = Option<f64>, Query, description = "Only scores at least this"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 100)"),
        ("offset" = Option<u32>, Query, maximum = 1000000000, description = "Skip this many"),
    ),
    responses((status = 200, description = "The alerts", body = AlertsList)),
)]
pub(crate) async fn alerts(
    State(state): State<AppState>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<AlertsList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let since = match &q.since {
        Some(s) => Some(
            radar_core::time::parse_rfc3339(s)
                .map_err(|e| ApiError::bad_field("since", format!("`since`: {e}")))?,
        ),
        None => None,
    };
    if q.limit.is_some_and(|l| l == 0 || l > 10_000) {
        return Err(ApiError::bad_field(
            "limit",
            "`limit` must be between 1 and 10000",
        ));
    }
    if q.min_score.is_some_and(|s| !s.is_finite()) {
        return Err(ApiError::bad_field(
            "min_score",
            "`min_score` must be a finite number",
        ));
    }
    if q.offset.is_some_and(|o| o > MAX_OFFSET) {
        return Err(ApiError::bad_field(
            "offset",
            format!("`offset` must be at most {MAX_OFFSET}"),
        ));
    }
    let store = state.alerts.clone();
    let alerts = blocking(move || store.query(&q, since)).await??;
    Ok(Json(AlertsList { alerts }))
}

/// Labels: one JSON object, an array, or NDJSON (`event_id`, `label`,
/// `kind`, `source`, `known_at`, `author`). Each is accepted (durable when
/// answered), a duplicate of a statement already made, refused for a bad
/// field, or about an event the stream never had. 201 when any was
/// accepted or already known, 400 when none was.
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/labels",
    tag = "labels",
    params(("stream" = String, Path, description = "The stream's name")),
    request_body(
        description = "One label (`event_id`, `label`: fraud or legit, optional `kind`, `source`, `known_at`, `author`), an array, or NDJSON.",
        content(
            (crate::api::LabelInput = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 201, description = "Some labels were recorded or already known", body = LabelsAnswer),
        (status = 400, description = "No label was recorded", body = LabelsOrError),
        (status = 404, description = "Every label is about an event the stream never had, or the stream is not served", body = LabelsOrError),
    ),
)]
pub(crate) async fn post_stream_labels(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let stream = state.stream(&stream)?.name().to_owned();
    record_labels(&state, stream, &body).await
}

/// Labels of the one stream served (`/v1/streams/{stream}/labels` names
/// it; this route is refused when several are served).
#[utoipa::path(
    post,
    path = "/v1/labels",
    tag = "labels",
    request_body(
        description = "One label (`event_id`, `label`: fraud or legit, optional `kind`, `source`, `known_at`, `author`), an array, or NDJSON.",
        content(
            (crate::api::LabelInput = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 201, description = "Some labels were recorded or already known", body = LabelsAnswer),
        (status = 400, description = "No label was recorded, or several streams are served", body = LabelsOrError),
        (status = 404, description = "Every label is about an event the stream never had", body = LabelsAnswer),
    ),
)]
pub(crate) async fn post_labels(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let stream = state.sole_stream()?.name().to_owned();
    record_labels(&state, stream, &body).await
}

async fn record_labels(
    state: &AppState,
    stream: String,
    body: &[u8],
) -> Result<Response, ApiError> {
    let items = split_events(body, state.max_events_per_request)?;
    let now = crate::now_micros();
    let mut results: Vec<LabelItem> = Vec::with_capacity(items.len());
    let mut good = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let parsed = serde_json::from_slice::<Value>(raw)
            .map_err(|e| radar_core::labels::LabelError {
                field: "label",
                message: format!("not JSON: {e}"),
            })
            .and_then(|v| radar_core::labels::Label::from_json(&v, "api", now));
        let mut item = LabelItem {
            index,
            status: "invalid".into(),
            event_id: None,
            seq: None,
            error: None,
            field: None,
        };
        match parsed {
            Ok(l) => good.push((index, l)),
            Err(e) => {
                item.error = Some(e.to_string());
                item.field = Some(e.field.to_owned());
            }
        }
        results.push(item);
    }
    let labels: Vec<_> = good.iter().map(|(_, l)| l.clone()).collect();
    let store = state.labels.clone();
    let name = stream.clone();
    let recorded = blocking(move || store.record(&name, &labels)).await??;
    let mut stored = 0;
    for ((index, label), outcome) in good.iter().zip(recorded) {
        use radar_pipeline::labels::Recorded;
        let item = &mut results[*index];
        item.event_id = Some(label.event_id.clone());
        match outcome {
            Recorded::Accepted { seq } | Recorded::Duplicate { seq } => {
                stored += 1;
                item.seq = Some(seq);
                item.status = if matches!(outcome, Recorded::Accepted { .. }) {
                    "accepted"
                } else {
                    "duplicate"
                }
                .into();
            }
            Recorded::UnknownEvent => {
                item.status = "unknown_event".into();
                item.error = Some(format!(
                    "no event `{}` in stream `{stream}`",
                    label.event_id
                ));
                item.field = Some("event_id".into());
            }
        }
    }
    let body = LabelsAnswer {
        recorded: stored,
        refused: results.len() - stored,
        results,
    };
    let all_unknown = body.results.iter().all(|r| r.status == "unknown_event");
    Ok(if stored > 0 {
        (StatusCode::CREATED, Json(body)).into_response()
    } else if all_unknown {
        // Well-formed, about events the stream never had.
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    } else {
        (StatusCode::BAD_REQUEST, Json(LabelsOrError::Answer(body))).into_response()
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelQuery {
    event_id: Option<String>,
    /// Labels recorded after this sequence number.
    after: Option<u64>,
    limit: Option<usize>,
}

/// Stored labels of the stream, in the order they were recorded.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/labels",
    tag = "labels",
    params(
        ("stream" = String, Path, description = "The stream's name"),
        ("event_id" = Option<String>, Query, description = "Only this event's labels"),
        ("after" = Option<i64>, Query, minimum = 0, description = "Labels recorded after this sequence number"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 100)"),
    ),
    responses((status = 200, description = "The labels", body = LabelsList)),
)]
pub(crate) async fn get_stream_labels(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    q: Result<Query<LabelQuery>, QueryRejection>,
) -> Result<Json<LabelsList>, ApiError> {
    let stream = state.stream(&stream)?.name().to_owned();
    list_labels(&state, stream, q).await
}

/// Stored labels of the one stream served, in the order they were
/// recorded (refused when several are served).
#[utoipa::path(
    get,
    path = "/v1/labels",
    tag = "labels",
    params(
        ("event_id" = Option<String>, Query, description = "Only this event's labels"),
        ("after" = Option<i64>, Query, minimum = 0, description = "Labels recorded after this sequence number"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 100)"),
    ),
    responses((status = 200, description = "The labels", body = LabelsList)),
)]
pub(crate) async fn get_labels(
    State(state): State<AppState>,
    q: Result<Query<LabelQuery>, QueryRejection>,
) -> Result<Json<LabelsList>, ApiError> {
    let stream = state.sole_stream()?.name().to_owned();
    list_labels(&state, stream, q).await
}

async fn list_labels(
    state: &AppState,
    stream: String,
    q: Result<Query<LabelQuery>, QueryRejection>,
) -> Result<Json<LabelsList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    if q.after.is_some_and(|a| a > i64::MAX as u64) {
        return Err(ApiError::bad_field(
            "after",
            "`after` must be at most 9223372036854775807",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_field(
            "limit",
            "`limit` must be between 1 and 10000",
        ));
    }
    let store = state.labels.clone();
    let rows =
        blocking(move || store.list(&stream, q.event_id.as_deref(), q.after.unwrap_or(0), limit))
            .await??;
    let labels = rows
        .into_iter()
        .map(|r| StoredLabel {
            seq: r.seq,
            label: if r.label.fraud { "fraud" } else { "legit" },
            known_at: radar_core::time::format_rfc3339(r.label.known_at),
            recorded_at: radar_core::time::format_rfc3339(r.recorded_at),
            event_id: r.label.event_id,
            kind: r.label.kind,
            source: r.label.source,
            author: r.label.author,
        })
        .collect();
    Ok(Json(LabelsList { labels }))
}

/// Every model version in the registry, with its aliases.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    responses((status = 200, description = "The model versions", body = ModelsList)),
)]
pub(crate) async fn models(State(state): State<AppState>) -> Result<Json<ModelsList>, ApiError> {
    let models = blocking(move || state.registry.versions()).await??;
    Ok(Json(ModelsList { models }))
}

/// One model: its versions (newest first) and the history of its aliases.
#[utoipa::path(
    get,
    path = "/v1/models/{name}",
    tag = "models",
    params(("name" = String, Path, description = "The model's name")),
    responses((status = 200, description = "The model", body = ModelAnswer)),
)]
pub(crate) async fn model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelAnswer>, ApiError> {
    let (versions, history, events) = blocking(move || {
        let versions: Vec<_> = state
            .registry
            .versions()?
            .into_iter()
            .filter(|v| v.name == name)
            .collect();
        if versions.is_empty() {
            return Err(radar_registry::RegistryError::NoModel(name));
        }
        let history = state.registry.alias_history(&versions[0].name)?;
        let events = state.registry.events(&versions[0].name)?;
        Ok((versions, history, events))
    })
    .await??;
    Ok(Json(ModelAnswer {
        versions,
        aliases: history,
        events,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/models/{name}/versions/{version}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("version" = i64, Path, description = "The version number"),
    ),
    responses((status = 200, description = "The model version", body = ModelVersion)),
)]
pub(crate) async fn model_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelVersion>, ApiError> {
    let version: i64 = version.parse().map_err(|_| {
        ApiError::bad_field(
            "version",
            format!("`version` must be an integer, got `{version}`"),
        )
    })?;
    let mv = blocking(move || state.registry.version(&name, version)).await??;
    Ok(Json(mv))
}

/// An alias as a request names it: short, lower-case letters, digits,
/// `_` and `-`.
fn check_alias(alias: &str) -> Result<(), ApiError> {
    let ok = !alias.is_empty()
        && alias.len() <= 40
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            "alias",
            format!("`{alias}` is not an alias: 1 to 40 of a-z, 0-9, `_`, `-`"),
        ))
    }
}

/// An alias move's request: the alias checked, the body read, and the
/// reason the alias history keeps, with who moved it.
fn alias_request<T: serde::de::DeserializeOwned>(
    alias: &str,
    body: &[u8],
    key: Option<axum::Extension<crate::door::KeyId>>,
    default_reason: &str,
    reason_of: impl Fn(&T) -> Option<&str>,
) -> Result<(T, String), ApiError> {
    check_alias(alias)?;
    let request: T = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the body is not an alias move: {e}")))?;
    let given = reason_of(&request).unwrap_or(default_reason);
    if given.chars().count() > 500 {
        return Err(ApiError::bad_field(
            "reason",
            "`reason` is longer than 500 characters",
        ));
    }
    let who = key.map_or_else(|| "an open server".to_owned(), |k| format!("key {}", k.0.0));
    let reason = format!("{given} (by {who})");
    Ok((request, reason))
}

/// Points an alias of a model at a version (promotes it, for `champion`):
/// the scorer follows within a second; the alias history records who and
/// why. Needs the `admin` role.
#[utoipa::path(
    post,
    path = "/v1/models/{name}/aliases/{alias}",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("alias" = String, Path, pattern = "^[a-z0-9_-]{1,40}$", description = "The alias (`champion` decides)"),
    ),
    request_body(content = crate::api::AliasRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alias moved", body = crate::api::AliasAnswer),
        (status = 409, description = "The move cannot be made", body = ErrorBody),
    ),
)]
pub(crate) async fn set_alias(
    State(state): State<AppState>,
    key: Option<axum::Extension<crate::door::KeyId>>,
    Path((name, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<crate::api::AliasAnswer>, ApiError> {
    let (request, reason) = alias_request(
        &alias,
        &body,
        key,
        "moved through the API",
        |r: &crate::api::AliasRequest| r.reason.as_deref(),
    )?;
    let version = request.version;
    let (n, a) = (name.clone(), alias.clone());
    blocking(move || state.registry.set_alias(&n, &a, version, &reason)).await??;
    Ok(Json(crate::api::AliasAnswer {
        name,
        alias,
        version,
    }))
}

/// Moves an alias back to where it pointed before its last move. Needs
/// the `admin` role.
#[utoipa::path(
    post,
    path = "/v1/models/{name}/aliases/{alias}/rollback",
    tag = "models",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("alias" = String, Path, pattern = "^[a-z0-9_-]{1,40}$", description = "The alias"),
    ),
    request_body(content = crate::api::RollbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alias moved back", body = crate::api::AliasAnswer),
        (status = 409, description = "The alias has no earlier version to go back to", body = ErrorBody),
    ),
)]
pub(crate) async fn rollback_alias(
    State(state): State<AppState>,
    key: Option<axum::Extension<crate::door::KeyId>>,
    Path((name, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<crate::api::AliasAnswer>, ApiError> {
    let (_, reason) = alias_request(
        &alias,
        &body,
        key,
        "rolled back through the API",
        |r: &crate::api::RollbackRequest| r.reason.as_deref(),
    )?;
    let (n, a) = (name.clone(), alias.clone());
    let version = blocking(move || state.registry.rollback(&n, &a, &reason)).await??;
    Ok(Json(crate::api::AliasAnswer {
        name,
        alias,
        version,
    }))
}

/// The last 100 training runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "models",
    responses((status = 200, description = "The runs", body = RunsList)),
)]
pub(crate) async fn runs(State(state): State<AppState>) -> Result<Json<RunsList>, ApiError> {
    let runs = blocking(move || state.registry.runs(100)).await??;
    Ok(Json(RunsList { runs }))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Alive", body = Healthy)),
)]
pub(crate) async fn healthz() -> Json<Healthy> {
    Json(Healthy { status: "ok" })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> Json<Value> {
    Json(crate::api::document_for(
        &state
            .streams
            .iter()
            .map(|s| &s.shared.schema)
            .collect::<Vec<_>>(),
        state.max_events_per_request,
    ))
}

/// Ready when a model scores the stream and every component works; the
/// body says which component is not and why.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: no model yet, or a component degraded", body = Readiness),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    blocking(move || readiness(&state.streams)).await
}

/// One stream's readiness as it is; with several, ready when every one
/// is, each said under `streams`.
fn readiness(streams: &[StreamApi]) -> Response {
    let mut each: Vec<(String, StatusCode, Readiness)> = streams
        .iter()
        .map(|s| {
            let (status, body) = stream_readiness(&s.shared);
            (s.name().to_owned(), status, body)
        })
        .collect();
    if each.len() == 1
        && let Some((_, status, body)) = each.pop()
    {
        return (status, Json(body)).into_response();
    }
    let not_ready: Vec<String> = each
        .iter()
        .filter(|(_, status, _)| *status != StatusCode::OK)
        .map(|(name, _, body)| format!("{name}: {}", body.status))
        .collect();
    let mut components = serde_json::Map::new();
    for (name, _, body) in &each {
        if let Some(c) = body.components.as_object() {
            for (component, state) in c {
                components.insert(format!("{name}/{component}"), state.clone());
            }
        }
    }
    let body = Readiness {
        status: if not_ready.is_empty() {
            "ready".into()
        } else {
            format!("not ready: {}", not_ready.join("; "))
        },
        model: None,
        model_version: None,
        warming_up: None,
        components: Value::Object(components),
        streams: Some(json!(
            each.iter()
                .map(|(name, _, body)| (name.clone(), json!(body)))
                .collect::<serde_json::Map<_, _>>()
        )),
    };
    let status = if not_ready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

fn stream_readiness(shared: &Shared) -> (StatusCode, Readiness) {
    let components = shared.health.snapshot();
    let broken: Vec<&str> = components
        .iter()
        .filter(|(_, s)| s.state != radar_core::health::State::Ok)
        .map(|(name, _)| name.as_str())
        .collect();
    let mut body = Readiness {
        status: "waiting for a champion model".into(),
        model: None,
        model_version: None,
        warming_up: None,
        components: json!(components),
        streams: None,
    };
    match Source::of(shared).map(|s| s.lock().map(|m| m.model())) {
        Some(Ok((model, version, warming_up))) => {
            body.status = "ready".into();
            body.model = Some(model);
            body.model_version = Some(version);
            body.warming_up = Some(warming_up);
        }
        Some(Err(e)) => body.status = e.to_string(),
        None => {}
    }
    let mut status = if body.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !broken.is_empty() && status == StatusCode::OK {
        body.status = format!("degraded: {}", broken.join(", "));
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    (status, body)
}

/// Prometheus metrics (text exposition format). Open unless `radar up`
/// was told `--metrics-auth`; then it needs the `read` role.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("api_key" = [])),
    responses((status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String)),
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let streams: Vec<_> = state
        .streams
        .iter()
        .map(|s| (s.shared.metrics.as_ref(), s.shared.health.as_ref()))
        .collect();
    // Every stream's series are in the first's families (the pipelines
    // of one process share them).
    let text = match state.streams.first() {
        Some(s) => s.shared.metrics.families().render(&streams),
        None => String::new(),
    };
    (
        [(header::CONTENT_TYPE, radar_pipeline::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// How the server takes requests.
pub struct ServerOptions {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most events in one request to `/events`, `/score` or `/labels`.
    pub max_events_per_request: usize,
    /// Keys, roles and limits; `None`: open (loopback only).
    pub door: Option<Arc<Door>>,
    /// A connection whose request headers have not all come by then is
    /// closed (a half-sent request must not hold a connection for long).
    pub header_timeout: std::time::Duration,
    /// A request not answered by then gets 408.
    pub request_timeout: std::time::Duration,
    /// Serve HTTPS with this certificate chain and key ([`tls_acceptor`]).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A TLS acceptor from PEM files: the certificate chain (leaf first) and
/// its private key (PKCS#8, PKCS#1 or SEC1). TLS 1.2 and 1.3 only.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert `{}`: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert `{}` holds no PEM certificate",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key `{}`: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, private)
    .map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 16 << 20,
            max_events_per_request: DEFAULT_MAX_EVENTS,
            door: None,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(60),
            tls: None,
        }
    }
}

/// Accepts connections until `stop`, each served over HTTP/1.1 (inside
/// TLS when given) with a header-read timeout; then lets the requests in
/// flight finish.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let (app, watcher, tls) = (app.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, app, header_timeout, watcher).await,
                // The handshake is held to the header timeout too: a
                // client that opens and stalls must not keep the socket.
                Some(tls) => match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, app, header_timeout, watcher).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "a TLS handshake failed"),
                    Err(_) => tracing::debug!("a TLS handshake timed out"),
                },
            }
        });
    }
    graceful.shutdown().await;
}

async fn serve_connection<S>(
    io: S,
    app: Router,
    header_timeout: std::time::Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let _ = watcher.watch(conn).await;
}

/// A server running in front of the pipelines of one process.
pub struct Server {
    pub addr: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Listens on `addr` and serves the API of `pipelines`' streams (at
    /// least one; they share a runtime) on their runtime.
    pub fn start(
        pipelines: &[Pipeline],
        addr: std::net::SocketAddr,
        options: ServerOptions,
    ) -> std::io::Result<Server> {
        let Some(state) = AppState::of(pipelines) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no stream to serve",
            ));
        };
        let pipeline = &pipelines[0];
        let listener = pipeline.rt.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(d) = &options.door {
            d.keep_fresh(pipeline.rt.handle());
        }
        let state = AppState {
            max_events_per_request: options.max_events_per_request,
            ..state
        };
        sample_history(&state, pipeline.rt.handle());
        let request_timeout = options.request_timeout;
        let app = router(state, options.max_body_bytes, options.door).layer(
            axum::middleware::from_fn(move |req, next: axum::middleware::Next| async move {
                match tokio::time::timeout(request_timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => ApiError::bad(format!(
                        "the request took longer than {} s (a body sent too slowly?)",
                        request_timeout.as_secs()
                    ))
                    .with_status(StatusCode::REQUEST_TIMEOUT, "request_timeout")
                    .into_response(),
                }
            }),
        );
        let task = pipeline.rt.spawn(serve(
            listener,
            app,
            options.header_timeout,
            options.tls,
            rx,
        ));
        Ok(Server {
            addr,
            task: Some(task),
            shutdown: Some(tx),
        })
    }

    /// Stops taking requests and waits for those in flight.
    pub fn stop(mut self, rt: &tokio::runtime::Runtime) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = rt.block_on(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_bounded_per_key_and_minute() {
        let budget = DeadLetterBudget::new(3);
        let minute = 60_000_000;
        for _ in 0..3 {
            assert!(budget.take("k1", 5 * minute));
        }
        assert!(
            !budget.take("k1", 5 * minute + 1),
            "the minute's budget is spent"
        );
        assert!(budget.take("k2", 5 * minute), "another key has its own");
        assert!(budget.take("k1", 6 * minute), "a new minute, a new budget");
    }
}
