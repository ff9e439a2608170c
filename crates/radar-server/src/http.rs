//! The HTTP API.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use radar_core::decode::Decoder;
use radar_log::{EventLog, Record};
use radar_registry::Registry;
use serde::Serialize;
use serde_json::{Value, json};

use crate::alerts::{AlertQuery, AlertStore};
use crate::scorer::{Shared, Source};

#[derive(Clone)]
pub struct AppState {
    pub log: Arc<dyn EventLog>,
    pub shared: Shared,
    pub alerts: AlertStore,
    pub registry: Registry,
}

/// The health component of the event log, as ingest sees it.
pub const LOG: &str = "log";

/// An error answer: a status and a message naming the problem.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        response
    }
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/streams/{stream}/events", post(ingest))
        .route("/v1/streams/{stream}/score", post(score))
        .route("/v1/alerts", get(alerts))
        .route("/v1/models", get(models))
        .route("/v1/runs", get(runs))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /v1/streams/{stream}/events, /v1/alerts, /v1/models, /v1/runs, /healthz, /readyz, /metrics") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

fn check_stream(state: &AppState, stream: &str) -> Result<(), ApiError> {
    if stream != state.shared.schema.name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "stream `{stream}` is not served here (serving `{}`)",
                state.shared.schema.name
            ),
        ));
    }
    Ok(())
}

/// One JSON object, an array of them, or NDJSON (one per line).
fn split_events(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let text = body.trim_ascii();
    if text.is_empty() {
        return Err(ApiError::bad(
            "the body is empty: send a JSON object, an array of objects, or NDJSON",
        ));
    }
    if text[0] == b'[' {
        let items: Vec<Value> = serde_json::from_slice(text)
            .map_err(|e| ApiError::bad(format!("the body is not a JSON array: {e}")))?;
        if items.is_empty() {
            return Err(ApiError::bad("the array holds no events"));
        }
        return Ok(items.iter().map(|v| v.to_string().into_bytes()).collect());
    }
    Ok(text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
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
    let events = split_events(&body)?;
    let now = crate::now_micros();
    let mut decoder = Decoder::new(state.shared.schema.clone());
    let mut records = Vec::with_capacity(events.len());
    let mut results = Vec::with_capacity(events.len());
    let mut valid = 0;
    for (index, raw) in events.into_iter().enumerate() {
        match decoder.decode_json(&raw, now) {
            Ok(r) => {
                valid += 1;
                records.push(Record::new(
                    r.entity.as_deref().map(str::as_bytes),
                    raw,
                    now,
                ));
                results.push(ItemResult {
                    index,
                    partition: None,
                    offset: None,
                    error: None,
                    reason: None,
                    field: None,
                });
            }
            Err(dl) => {
                state.shared.metrics.dead_letter(&dl.reason);
                // Kept in the log unkeyed: capture files it as a dead letter.
                records.push(Record::new(None, dl.raw, now));
                results.push(ItemResult {
                    index,
                    partition: None,
                    offset: None,
                    error: Some(dl.reason.to_string()),
                    reason: Some(dl.reason.code()),
                    field: dl.reason.field().map(str::to_owned),
                });
            }
        }
    }
    state
        .shared
        .metrics
        .events_in
        .fetch_add(results.len() as u64, Ordering::Relaxed);
    let log = state.log.clone();
    let appended = tokio::task::spawn_blocking(move || log.append(&stream, &records))
        .await
        .map_err(ApiError::internal)?;
    let acks = match appended {
        Ok(acks) => {
            state.shared.health.ok(LOG);
            acks
        }
        Err(e) => {
            state.shared.health.degraded(LOG, e.to_string());
            // Nothing of the request was acknowledged; the same request can
            // be sent again.
            let message = if e.is_storage_full() {
                "the event log is out of disk space; nothing was stored, retry later".to_owned()
            } else if e.is_transient() {
                "the event log is unavailable; nothing was acknowledged, send the request again later".to_owned()
            } else {
                format!("the event log refused the append: {e}")
            };
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(1));
        }
    };
    for (r, (p, o)) in results.iter_mut().zip(acks) {
        if r.error.is_none() {
            r.partition = Some(p);
            r.offset = Some(o);
        }
    }
    let rejected = results.len() - valid;
    let body = json!({ "accepted": valid, "rejected": rejected, "results": results });
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
    let Some(source) = Source::of(&state.shared) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no champion model is loaded yet",
        ));
    };
    let events = split_events(&body)?;
    let mut decoder = Decoder::new(state.shared.schema.clone());
    let engine = state
        .shared
        .engine
        .read()
        .map_err(|_| ApiError::internal("engine lock poisoned"))?;
    let scoring = source.lock().map_err(ApiError::internal)?;
    let threshold = scoring.threshold();
    let columns = &state.shared.schema.columns;
    let mut row = vec![0.0; columns.len()];
    let mut out = Vec::with_capacity(events.len());
    for (index, raw) in events.iter().enumerate() {
        match decoder.decode_json(raw, crate::now_micros()) {
            Ok(record) => {
                engine.peek(&record, &mut row);
                let s = scoring.peek(&row).map_err(ApiError::internal)?;
                let ranked = scoring.explain(&row).map_err(ApiError::internal)?;
                let contributions: Vec<Value> = ranked
                    .into_iter()
                    .take(5)
                    .map(|(f, share, above)| {
                        let mut c = json!({"feature": columns[f], "share": share, "value": row[f]});
                        if let Some(d) = crate::alerts::direction_name(above) {
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
                    "features": columns.iter().zip(&row).map(|(c, v)| (c.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                }));
            }
            Err(dl) => out.push(json!({"index": index, "error": dl.reason.to_string(), "reason": dl.reason.code(), "field": dl.reason.field()})),
        }
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
                .map_err(|e| ApiError::bad(format!("`since`: {e}")))?,
        ),
        None => None,
    };
    if q.limit.is_some_and(|l| l == 0 || l > 10_000) {
        return Err(ApiError::bad("`limit` must be between 1 and 10000"));
    }
    if q.min_score.is_some_and(|s| !s.is_finite()) {
        return Err(ApiError::bad("`min_score` must be a finite number"));
    }
    let store = state.alerts.clone();
    let found = tokio::task::spawn_blocking(move || store.query(&q, since))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "alerts": found })))
}

async fn models(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let versions = state.registry.versions().map_err(ApiError::internal)?;
    Ok(Json(json!({ "models": versions })))
}

async fn runs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let runs = state.registry.runs(100).map_err(ApiError::internal)?;
    Ok(Json(json!({ "runs": runs })))
}

/// Ready when a model scores the stream and every component works; the
/// body says which component is not and why.
async fn ready(State(state): State<AppState>) -> Response {
    let components = state.shared.health.snapshot();
    let broken: Vec<&String> = components
        .iter()
        .filter(|(_, s)| s.state != radar_core::health::State::Ok)
        .map(|(name, _)| name)
        .collect();
    let mut body = match (&state.shared.online, state.shared.model.load_full()) {
        (Some(online), _) => match online.lock() {
            Ok(model) => json!({
                "status": "ready",
                "model": model.name(),
                "model_version": 0,
                "warming_up": model.warming_up(),
            }),
            Err(_) => json!({"status": "the online model's lock is poisoned"}),
        },
        (None, Some(m)) => json!({"status": "ready", "model": m.name, "model_version": m.version}),
        (None, None) => json!({"status": "waiting for a champion model"}),
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
    let mut text = state.shared.metrics.render(&state.shared.schema.name);
    crate::metrics::render_health(&state.shared.health, &mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
