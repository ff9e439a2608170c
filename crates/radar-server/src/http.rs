//! The routes. Each handler parses its request, calls the pipeline (off
//! the async threads when it may block: SQLite, the scorer's locks, the
//! log's fsync) and answers; errors go through [`crate::error`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use radar_core::decode::Decoder;
use radar_lake::capture::dead_letter_record;
use radar_log::{EventLog, Record};
use radar_pipeline::pipeline::Pipeline;
use radar_pipeline::scorer::{Shared, Source};
use radar_pipeline::sinks::{AlertQuery, AlertStore, direction_name};
use radar_registry::Registry;
use serde::Serialize;
use serde_json::{Value, json};

use crate::door::Door;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    /// Events one request to `/events` or `/score` may carry.
    pub max_events_per_request: usize,
    pub log: Arc<dyn EventLog>,
    pub shared: Shared,
    pub alerts: AlertStore,
    pub labels: radar_pipeline::labels::LabelStore,
    pub registry: Registry,
}

impl AppState {
    pub fn of(p: &Pipeline) -> AppState {
        AppState {
            max_events_per_request: DEFAULT_MAX_EVENTS,
            log: p.log.clone(),
            shared: p.shared.clone(),
            alerts: p.alerts.clone(),
            labels: p.labels.clone(),
            registry: p.registry.clone(),
        }
    }
}

/// Invalid events of one request kept as dead letters; the rest are
/// answered and counted, not stored.
pub const MAX_DEAD_LETTERS_PER_REQUEST: usize = 100;

/// Events one request may carry unless `radar up` says otherwise.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// The health component of the event log, as ingest sees it.
pub const LOG: &str = "log";

/// The API; behind `door` when given (keys and roles), and always with
/// POST bodies declared as JSON or NDJSON.
pub fn router(state: AppState, max_body_bytes: usize, door: Option<Arc<Door>>) -> Router {
    let routes = Router::new()
        .route("/v1/streams/{stream}/events", post(ingest))
        .route("/v1/streams/{stream}/score", post(score))
        .route("/v1/streams/{stream}/drift", get(drift))
        .route("/v1/alerts", get(alerts))
        .route("/v1/labels", post(post_labels).get(get_labels))
        .route("/v1/models", get(models))
        .route("/v1/models/{name}", get(model))
        .route("/v1/models/{name}/versions/{version}", get(model_version))
        .route("/v1/runs", get(runs))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn(crate::door::declared_body));
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

fn check_stream(state: &AppState, stream: &str) -> Result<(), ApiError> {
    if stream != state.shared.schema.name {
        return Err(ApiError::not_found(format!(
            "stream `{stream}` is not served here (serving `{}`)",
            state.shared.schema.name
        )));
    }
    Ok(())
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

#[derive(Serialize)]
struct ItemResult {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

async fn ingest(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_stream(&state, &stream)?;
    let events = split_events(&body, state.max_events_per_request)?;
    let counters = state.shared.metrics.component("ingest");
    let now = crate::now_micros();
    let mut decoder = Decoder::new(state.shared.schema.clone());
    let mut records = Vec::with_capacity(events.len());
    // Which result each appended record answers.
    let mut positions = Vec::with_capacity(events.len());
    let mut results = Vec::with_capacity(events.len());
    let mut rejected_by_reason: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let (mut invalid, mut unstored) = (0usize, 0u64);
    for (index, raw) in events.into_iter().enumerate() {
        let mut result = ItemResult {
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
                if invalid <= MAX_DEAD_LETTERS_PER_REQUEST {
                    records.push(dead_letter_record(&dl, now));
                    positions.push(index);
                    result.error = Some(dl.reason.to_string());
                    result.field = dl.reason.field().map(str::to_owned);
                } else {
                    unstored += 1;
                    result.error =
                        Some("invalid (not kept: too many dead letters in one request)".into());
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
    state.shared.metrics.events_in.inc_by(results.len() as u64);
    let log = state.log.clone();
    let appended = blocking(move || log.append(&stream, &records)).await?;
    let acks = match appended {
        Ok(acks) => {
            state.shared.health.ok(LOG);
            acks
        }
        Err(e) => {
            counters.errors(1);
            state.shared.health.degraded(LOG, e.to_string());
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
    let body = json!({
        "accepted": valid,
        "rejected": results.len() - valid,
        "rejected_by_reason": rejected_by_reason,
        "results": results,
    });
    let status = if valid == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)).into_response())
}

async fn score(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_stream(&state, &stream)?;
    let events = split_events(&body, state.max_events_per_request)?;
    // The scorer holds the feature state's lock for a batch: wait for it
    // off the async threads.
    blocking(move || score_events(&state.shared, &events)).await?
}

/// The served model's drift: the window being filled, the last finished
/// one per feature, and the history (oldest first).
async fn drift(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_stream(&state, &stream)?;
    let monitor = state
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
    Ok(Json(json!({
        "stream": stream,
        "options": monitor.options(),
        "pending_events": monitor.pending(),
        "latest": monitor.latest(),
        "history": history,
    })))
}

fn score_events(shared: &Shared, events: &[Vec<u8>]) -> Result<Json<Value>, ApiError> {
    let Some(source) = Source::of(shared) else {
        return Err(ApiError::unavailable("no champion model is loaded yet"));
    };
    let mut decoder = Decoder::new(shared.schema.clone());
    let columns = &shared.schema.columns;
    // Features first, the feature state's read lock taken per slice of
    // events, never for the whole request: the scorer's writes (and other
    // requests) interleave.
    // Each event's row in one buffer (no allocation per event), or why
    // it was refused.
    let width = columns.len();
    let mut features: Vec<f64> = Vec::with_capacity(events.len() * width);
    let mut rows: Vec<Result<usize, Value>> = Vec::with_capacity(events.len());
    for (chunk_start, chunk) in events.chunks(256).enumerate() {
        let engine = shared
            .engine
            .read()
            .map_err(|_| ApiError::internal("the feature state's lock is poisoned"))?;
        for (k, raw) in chunk.iter().enumerate() {
            let index = chunk_start * 256 + k;
            rows.push(match decoder.decode_json(raw, crate::now_micros()) {
                Ok(record) => {
                    let at = features.len();
                    features.resize(at + width, 0.0);
                    engine.peek(&record, &mut features[at..]);
                    Ok(at)
                }
                Err(dl) => Err(
                    json!({"index": index, "error": dl.reason.to_string(), "reason": dl.reason.code(), "field": dl.reason.field()}),
                ),
            });
        }
    }
    if !rows.is_empty() && rows.iter().all(Result::is_err) {
        let first = rows.iter().find_map(|r| r.as_ref().err()).cloned();
        let mut e = ApiError::bad(format!(
            "none of the {} events is valid; the first: {}",
            rows.len(),
            first
                .as_ref()
                .and_then(|f| f["error"].as_str())
                .unwrap_or("invalid")
        ));
        e.field = first.and_then(|f| f["field"].as_str().map(str::to_owned));
        return Err(e);
    }
    let scoring = source.lock()?;
    let threshold = scoring.threshold();
    let mut out = Vec::with_capacity(rows.len());
    for (index, row) in rows.into_iter().enumerate() {
        let row = match row {
            Ok(at) => &features[at..at + width],
            Err(refused) => {
                out.push(refused);
                continue;
            }
        };
        let s = scoring.peek(row).map_err(ApiError::internal)?;
        let ranked = scoring.explain(columns, row).map_err(ApiError::internal)?;
        let contributions: Vec<Value> = ranked
            .into_iter()
            .take(5)
            .map(|e| {
                let mut c = json!({"feature": e.input, "share": e.share, "value": e.value});
                if let Some(d) = direction_name(e.above) {
                    c["direction"] = json!(d);
                }
                c
            })
            .collect();
        out.push(json!({
            "index": index,
            "score": s,
            "threshold": threshold,
            "anomaly": s > threshold,
            "contributions": contributions,
            "features": columns.iter().zip(row).map(|(c, v)| (c.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }));
    }
    let (name, version, warming_up) = scoring.model();
    Ok(Json(
        json!({ "model": name, "model_version": version, "warming_up": warming_up, "results": out }),
    ))
}

async fn alerts(
    State(state): State<AppState>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
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
    let store = state.alerts.clone();
    let found = blocking(move || store.query(&q, since)).await??;
    Ok(Json(json!({ "alerts": found })))
}

/// Labels: one JSON object, an array, or NDJSON (`event_id`, `label`,
/// `kind`, `source`, `known_at`, `author`). Each is accepted (durable when
/// answered), a duplicate of a statement already made, refused for a bad
/// field, or about an event the stream never had. 201 when any was
/// accepted or already known, 400 when none was.
async fn post_labels(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let items = split_events(&body, state.max_events_per_request)?;
    let now = crate::now_micros();
    let mut results: Vec<Value> = Vec::with_capacity(items.len());
    let mut good = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let parsed = serde_json::from_slice::<Value>(raw)
            .map_err(|e| radar_core::labels::LabelError {
                field: "label",
                message: format!("not JSON: {e}"),
            })
            .and_then(|v| radar_core::labels::Label::from_json(&v, "api", now));
        match parsed {
            Ok(l) => {
                good.push((index, l));
                results.push(Value::Null);
            }
            Err(e) => results.push(json!({
                "index": index, "status": "invalid", "error": e.to_string(), "field": e.field,
            })),
        }
    }
    let stream = state.shared.schema.name.clone();
    let labels: Vec<_> = good.iter().map(|(_, l)| l.clone()).collect();
    let store = state.labels.clone();
    let recorded = blocking(move || store.record(&stream, &labels)).await??;
    let mut stored = 0;
    for ((index, label), outcome) in good.iter().zip(recorded) {
        let mut v = json!(outcome);
        v["index"] = json!(index);
        v["event_id"] = json!(label.event_id);
        match outcome {
            radar_pipeline::labels::Recorded::UnknownEvent => {
                v["error"] = json!(format!(
                    "no event `{}` in stream `{}`",
                    label.event_id, state.shared.schema.name
                ));
                v["field"] = json!("event_id");
            }
            _ => stored += 1,
        }
        results[*index] = v;
    }
    let status = if stored > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = json!({ "recorded": stored, "refused": results.len() - stored, "results": results });
    Ok((status, Json(body)).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelQuery {
    event_id: Option<String>,
    /// Labels recorded after this sequence number.
    after: Option<u64>,
    limit: Option<usize>,
}

async fn get_labels(
    State(state): State<AppState>,
    q: Result<Query<LabelQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_field(
            "limit",
            "`limit` must be between 1 and 10000",
        ));
    }
    let stream = state.shared.schema.name.clone();
    let store = state.labels.clone();
    let rows =
        blocking(move || store.list(&stream, q.event_id.as_deref(), q.after.unwrap_or(0), limit))
            .await??;
    let labels: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "event_id": r.label.event_id,
                "label": if r.label.fraud { "fraud" } else { "legit" },
                "kind": r.label.kind,
                "source": r.label.source,
                "author": r.label.author,
                "known_at": radar_core::time::format_rfc3339(r.label.known_at),
                "recorded_at": radar_core::time::format_rfc3339(r.recorded_at),
            })
        })
        .collect();
    Ok(Json(json!({ "labels": labels })))
}

async fn models(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let versions = blocking(move || state.registry.versions()).await??;
    Ok(Json(json!({ "models": versions })))
}

/// One model: its versions (newest first) and the history of its aliases.
async fn model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (versions, history) = blocking(move || {
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
        Ok((versions, history))
    })
    .await??;
    Ok(Json(json!({ "versions": versions, "aliases": history })))
}

async fn model_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version: i64 = version.parse().map_err(|_| {
        ApiError::bad_field(
            "version",
            format!("`version` must be an integer, got `{version}`"),
        )
    })?;
    let mv = blocking(move || state.registry.version(&name, version)).await??;
    Ok(Json(json!(mv)))
}

async fn runs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let runs = blocking(move || state.registry.runs(100)).await??;
    Ok(Json(json!({ "runs": runs })))
}

/// Ready when a model scores the stream and every component works; the
/// body says which component is not and why.
async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    blocking(move || readiness(&state.shared)).await
}

fn readiness(shared: &Shared) -> Response {
    let components = shared.health.snapshot();
    let broken: Vec<&String> = components
        .iter()
        .filter(|(_, s)| s.state != radar_core::health::State::Ok)
        .map(|(name, _)| name)
        .collect();
    let mut body = match Source::of(shared).map(|s| s.lock().map(|m| m.model())) {
        Some(Ok((model, version, warming_up))) => json!({
            "status": "ready",
            "model": model,
            "model_version": version,
            "warming_up": warming_up,
        }),
        Some(Err(e)) => json!({"status": e.to_string()}),
        None => json!({"status": "waiting for a champion model"}),
    };
    body["components"] = json!(components);
    let mut status = if body["status"] == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !broken.is_empty() && status == StatusCode::OK {
        body["status"] = json!(format!(
            "degraded: {}",
            broken
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.shared.metrics.render(&state.shared.health);
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 16 << 20,
            max_events_per_request: DEFAULT_MAX_EVENTS,
            door: None,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Accepts connections until `stop`, each served over HTTP/1.1 with a
/// header-read timeout; then lets the requests in flight finish.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
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
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    graceful.shutdown().await;
}

/// A server running in front of a pipeline.
pub struct Server {
    pub addr: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Listens on `addr` and serves the pipeline's API on its runtime.
    pub fn start(
        pipeline: &Pipeline,
        addr: std::net::SocketAddr,
        options: ServerOptions,
    ) -> std::io::Result<Server> {
        let listener = pipeline.rt.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(d) = &options.door {
            d.keep_fresh(pipeline.rt.handle());
        }
        let state = AppState {
            max_events_per_request: options.max_events_per_request,
            ..AppState::of(pipeline)
        };
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
        let task = pipeline
            .rt
            .spawn(serve(listener, app, options.header_timeout, rx));
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
