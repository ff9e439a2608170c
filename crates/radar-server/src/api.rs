//! The API's contract: the bodies the handlers answer with (typed, so the
//! OpenAPI document is derived from what is really sent) and the document
//! itself, served at `/openapi.json`. Every operation answers errors as
//! [`ErrorBody`]; the statuses any request may meet (keys, limits, media
//! type, timeouts, an unavailable log) are added to every operation in one
//! place, [`StandardErrors`].

use std::collections::BTreeMap;

use radar_core::schema::{FieldType, StreamSchema, TimestampFormat};
use serde_json::json;

use radar_pipeline::sinks::{Alert, Contribution};
use radar_registry::{AliasMove, ModelVersion, Run};
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error: a stable code for programs, a message for people, and the
/// request field it is about when there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
    /// Stable: `invalid_input`, `not_found`, `unauthorized`, `forbidden`,
    /// `rate_limited`, `too_many_events`, `payload_too_large`,
    /// `unsupported_media_type`, `method_not_allowed`, `request_timeout`,
    /// `unavailable`, …
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What became of one event of an ingest request.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestItem {
    /// Its place in the request (0-based).
    pub index: usize,
    /// Where the log keeps it (accepted events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Why it was refused (refused events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The answer to an ingest request: 202 when any event was accepted
/// (durable in the log), 400 when none was.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: usize,
    /// Refused events counted by reason code.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub results: Vec<IngestItem>,
}

/// A 400 from ingest: the per-event answer when the body held events
/// and none was valid, an [`ErrorBody`] when it held no events at all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum IngestOrError {
    Answer(IngestAnswer),
    Error(ErrorBody),
}

/// One scored event, or why it could not be scored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScoreItem {
    Scored {
        index: usize,
        score: f64,
        threshold: f64,
        anomaly: bool,
        /// The features that weigh most in the score, largest first.
        contributions: Vec<Contribution>,
        /// Every feature's value, by column.
        features: BTreeMap<String, f64>,
        /// Whether this worker holds the state of the event's partition
        /// (the entity's history); when not, the features are those of an
        /// entity never seen (another worker of the stream holds it).
        history: bool,
    },
    Refused {
        index: usize,
        error: String,
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
}

/// Scores of events against the served model, without storing them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreAnswer {
    pub model: String,
    pub model_version: i64,
    /// An online detector still learning (its scores mean little yet).
    pub warming_up: bool,
    pub results: Vec<ScoreItem>,
}

/// What became of one label.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelItem {
    pub index: usize,
    /// `accepted`, `duplicate`, `unknown_event` or `invalid`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The label's number in the stream (accepted or duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// 201 when any label was recorded or already known, 400 when none was.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelsAnswer {
    pub recorded: usize,
    pub refused: usize,
    pub results: Vec<LabelItem>,
}

/// A 400 from labels: per-label answers when none was recorded, an
/// [`ErrorBody`] when the body held no labels at all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LabelsOrError {
    Answer(LabelsAnswer),
    Error(ErrorBody),
}

/// A stored label.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredLabel {
    pub seq: u64,
    pub event_id: String,
    /// `fraud` or `legit`.
    pub label: &'static str,
    pub kind: Option<String>,
    pub source: String,
    pub author: Option<String>,
    pub known_at: String,
    pub recorded_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LabelsList {
    pub labels: Vec<StoredLabel>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsList {
    /// Newest event time first.
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsList {
    pub models: Vec<ModelVersion>,
}

/// One model: its versions (newest first), its aliases' history and its
/// audit trail (trained, gated, shadow, canary, promoted, rejected, rolled
/// back — each with why and the figures).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelAnswer {
    pub versions: Vec<ModelVersion>,
    pub aliases: Vec<AliasMove>,
    pub events: Vec<radar_registry::ModelEvent>,
}

/// The last hour of a stream's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryAnswer {
    pub interval_seconds: u64,
    /// Oldest first.
    pub samples: Vec<radar_pipeline::history::Sample>,
}

/// Where a challenger's rollout stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutAnswer {
    /// `shadow`, `canary`, or null when no challenger is being rolled out.
    pub stage: Option<String>,
    /// The tallies behind it (both models' events and alerts, agreement,
    /// the canary's events, a promoted champion's watch).
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunsList {
    pub runs: Vec<Run>,
}

/// The served model's drift.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriftAnswer {
    pub stream: String,
    /// The stream's drift policy.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Events in the window being filled.
    pub pending_events: u64,
    /// The last finished window, per feature (null before the first).
    #[schema(value_type = Object, nullable)]
    pub latest: serde_json::Value,
    /// Finished windows, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
}

/// Where to point an alias.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    /// The model version (JSON does not tell `3` from `3.0`; both are
    /// version 3).
    #[serde(deserialize_with = "integral")]
    pub version: i64,
    /// Why, for the alias history.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = <serde_json::Number as serde::Deserialize>::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f > i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "`{n}` is not a version number (an integer)"
        ))),
    }
}

/// A rollback's reason.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Where an alias points now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasAnswer {
    pub name: String,
    pub alias: String,
    pub version: i64,
}

/// The last scored live events and the served model's reference.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentAnswer {
    /// The feature columns, in the order of each event's `features`.
    pub columns: Vec<String>,
    pub model: Option<String>,
    pub model_version: Option<i64>,
    pub threshold: Option<f64>,
    /// Per column, the training rows' percentiles (0, 1, …, 100%).
    pub reference_features: Vec<Vec<f64>>,
    /// The training scores' percentiles.
    pub reference_scores: Vec<f64>,
    /// Oldest first.
    pub events: Vec<radar_pipeline::recent::Scored>,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Healthy {
    /// `ok`.
    pub status: &'static str,
}

/// Readiness: `ready`, or what is missing or broken.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `waiting for a champion model`, or `degraded: <components>`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warming_up: Option<bool>,
    /// Each component's state (`ok`, `degraded`, `failed`), the reason it
    /// is not ok, since when, and its errors so far.
    #[schema(value_type = Object)]
    pub components: serde_json::Value,
    /// With several streams served, each one's readiness by name (this
    /// status is `ready` when every one is; `components` are named
    /// `<stream>/<component>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub streams: Option<serde_json::Value>,
}

/// The OpenAPI 3.1 document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "radar",
        description = "Real-time anomaly detection: ingest events, score them, read alerts, record verdicts, inspect models and drift. Every request but /healthz, /readyz and (unless configured) /metrics needs an API key of the right role (`Authorization: Bearer rk_…`) once keys exist.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::http::ingest,
        crate::http::score,
        crate::http::drift,
        crate::http::recent,
        crate::http::rollout,
        crate::http::history,
        crate::http::alerts,
        crate::http::post_labels,
        crate::http::get_labels,
        crate::http::post_stream_labels,
        crate::http::get_stream_labels,
        crate::http::models,
        crate::http::model,
        crate::http::model_version,
        crate::http::set_alias,
        crate::http::rollback_alias,
        crate::http::runs,
        crate::http::healthz,
        crate::http::ready,
        crate::http::metrics,
        crate::http::openapi_json,
    ),
    components(schemas(LabelInput)),
    modifiers(&StandardErrors),
    security(("api_key" = [])),
)]
pub struct ApiDoc;

/// The answers any operation may give beside its own: a missing or
/// refused key, a role that is not enough, too many requests, a request
/// too slow, a body too large or not JSON, a method the path does not
/// take, and an unavailable service. One place, so no operation forgets
/// one.
pub struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ErrorBody",
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        let every: &[(&str, &str)] = &[
            ("400", "The request is invalid; `field` names what."),
            (
                "401",
                "No API key, or one that is unknown, revoked or expired.",
            ),
            ("403", "The key's role may not do this."),
            ("404", "No such resource."),
            ("405", "The path does not take this method."),
            ("408", "The request took too long to arrive."),
            ("429", "Too many requests for this key; see Retry-After."),
            ("503", "Not available now; see Retry-After."),
        ];
        let posts: &[(&str, &str)] = &[
            ("413", "Too many events or too many bytes in one request."),
            (
                "415",
                "The body is not declared as JSON or NDJSON, or is compressed.",
            ),
        ];
        for item in doc.paths.paths.values_mut() {
            let PathItem { get, post, .. } = item;
            for (op, is_post) in [(get, false), (post, true)] {
                let Some(op) = op.as_mut() else { continue };
                add_missing(op, every, &error);
                if is_post {
                    add_missing(op, posts, &error);
                }
            }
        }
    }
}

fn add_missing(
    op: &mut Operation,
    statuses: &[(&str, &str)],
    error: &impl Fn(&str) -> RefOr<utoipa::openapi::Response>,
) {
    for (status, description) in statuses {
        op.responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| error(description));
    }
}

/// The document from the code alone (no stream's fields).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A label as `POST /v1/labels` takes it (parsed by
/// [`radar_core::labels::Label::from_json`]; schemathesis holds the two
/// together in CI).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a request body; never built here
pub struct LabelInput {
    /// The labelled event's id (a string with a non-blank character, or
    /// a number).
    #[schema(value_type = Object)]
    pub event_id: serde_json::Value,
    /// The verdict: `fraud`, `legit`, `true_positive`, `false_positive`
    /// (and their synonyms), a boolean, or 1 / 0.
    #[schema(value_type = Object)]
    pub label: serde_json::Value,
    /// What kind of fraud (only with a fraud verdict).
    #[schema(max_length = 200)]
    pub kind: Option<String>,
    /// Who says so (default `api`).
    #[schema(max_length = 200)]
    pub source: Option<String>,
    /// When the verdict became known (RFC 3339 or epoch seconds; not in
    /// the future; default: now).
    #[schema(value_type = Object)]
    pub known_at: Option<serde_json::Value>,
    #[schema(max_length = 200)]
    pub author: Option<String>,
}

/// The document this server serves: [`document`] with the served stream
/// named in every `{stream}` parameter and its events' fields, from the
/// stream's declaration, as the body of `/events` and `/score`.
/// The document for the streams served (at least one): `Event` is the
/// stream's event; with several, each is `Event.<stream>` and `Event` any
/// of them.
pub fn document_for(schemas: &[&StreamSchema], max_events: usize) -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    match schemas {
        [one] => doc["components"]["schemas"]["Event"] = event_schema(one),
        several => {
            let mut any = Vec::new();
            for s in several {
                let name = format!("Event.{}", s.name);
                doc["components"]["schemas"][&name] = event_schema(s);
                any.push(json!({"$ref": format!("#/components/schemas/{name}")}));
            }
            doc["components"]["schemas"]["Event"] = json!({ "anyOf": any });
        }
    }
    let names: Vec<&str> = schemas.iter().map(|s| s.name.as_str()).collect();
    // A label cannot be known in the future: the document says so as of
    // when it is served (years before this one; epoch seconds before now).
    let now = radar_core::time::now_micros();
    let this_year = radar_core::time::parse_rfc3339(&format!(
        "{}-01-01T00:00:00Z",
        &radar_core::time::format_rfc3339(now)[..4]
    ))
    .unwrap_or(now);
    let label_input = &mut doc["components"]["schemas"]["LabelInput"];
    // Only a fraud verdict may say what kind of fraud.
    label_input["if"] = json!({
        "properties": {"label": {"enum": [false, 0, "legit", "genuine", "false_positive", "false", "0", "no", "normal"]}},
        "required": ["label"],
    });
    label_input["then"] = json!({"properties": {"kind": {"type": "null"}}});
    let label = &mut label_input["properties"];
    label["known_at"] = json!({"anyOf": [
        rfc3339_schema(Some((0, this_year))),
        {"type": "number", "minimum": 0, "exclusiveMaximum": now / 1_000_000},
        {"type": "null"},
    ]});
    label["event_id"] = json!({"anyOf": [{"type": "string", "pattern": "\\S", "maxLength": 200}, {"type": "number"}]});
    label["label"] = json!({"anyOf": [
        {"type": "boolean"},
        {"enum": [0, 1]},
        {"enum": radar_core::labels::VERDICTS},
    ]});
    let events = json!({
        "oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1, "maxItems": max_events},
        ]
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            // `get_mut`, not indexing: indexing a JSON object inserts a
            // null where the key was absent.
            if let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) {
                for p in params {
                    // A path names a stream served here; the alerts'
                    // filter may name any stream in the shared store.
                    if p["name"] == "stream" && p["in"] == "path" {
                        p["schema"] = json!({"type": "string", "enum": names});
                    }
                    if p["name"] == "since" {
                        p["schema"] = rfc3339_schema(None);
                    }
                }
            }
            let Some(json_body) = op
                .pointer_mut("/requestBody/content/application~1json")
                .and_then(|c| c.as_object_mut())
            else {
                continue;
            };
            if path.ends_with("/events") || path.ends_with("/score") {
                json_body.insert("schema".into(), events.clone());
            }
            if path.ends_with("/labels") {
                json_body.insert("schema".into(), json!({
                    "oneOf": [
                        {"$ref": "#/components/schemas/LabelInput"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/LabelInput"}, "minItems": 1, "maxItems": max_events},
                    ]
                }));
            }
        }
    }
    doc
}

/// RFC 3339 as radar reads it (`T`, `t` or a space; any fraction; an
/// offset or `Z`, or none for UTC), with years inside `bounds` (µs) when
/// given. February 29 is left out (a pattern cannot tell leap years).
pub fn rfc3339_schema(bounds: Option<(i64, i64)>) -> serde_json::Value {
    let year = match bounds {
        Some((lo, hi)) => {
            let year_of = |us: i64| {
                radar_core::time::format_rfc3339(us)[..4]
                    .parse::<i64>()
                    .unwrap_or(1970)
            };
            let (first, last) = (year_of(lo) + 1, year_of(hi.saturating_sub(1)) - 1);
            if first <= last && last - first < 1000 && first >= 0 && last <= 9999 {
                let years: Vec<String> = (first..=last).map(|y| format!("{y:04}")).collect();
                format!("({})", years.join("|"))
            } else {
                "[0-9]{4}".to_owned()
            }
        }
        None => "[0-9]{4}".to_owned(),
    };
    let date =
        "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)";
    let time = "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?";
    let offset = "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?";
    json!({
        "type": "string",
        "pattern": format!("^{year}-{date}[Tt ]{time}{offset}$"),
        "description": "RFC 3339 (like 2026-11-25T13:50:30Z)",
    })
}

/// Epoch numbers inside `bounds` (µs), in the unit(s) `format` reads.
fn epoch_schema(bounds: (i64, i64), format: TimestampFormat) -> serde_json::Value {
    let (lo, hi) = (bounds.0 as f64, bounds.1 as f64);
    let range = |unit: f64, floor: f64, ceiling: f64| json!({"type": "number", "minimum": (lo / unit).max(floor), "exclusiveMaximum": (hi / unit).min(ceiling)});
    match format {
        TimestampFormat::EpochSeconds => range(1e6, f64::MIN, f64::MAX),
        TimestampFormat::EpochMillis => range(1e3, f64::MIN, f64::MAX),
        TimestampFormat::EpochMicros => range(1.0, f64::MIN, f64::MAX),
        // Seconds below 10^11, milliseconds below 10^14, microseconds
        // above ([`radar_core::decode`]).
        _ => {
            let ranges: Vec<serde_json::Value> = [
                range(1e6, f64::MIN, 1e11),
                range(1e3, 1e11, 1e14),
                range(1.0, 1e14, f64::MAX),
            ]
            .into_iter()
            .filter(|r| r["minimum"].as_f64() < r["exclusiveMaximum"].as_f64())
            .collect();
            json!({"anyOf": ranges})
        }
    }
}

/// One event of `schema` as JSON Schema: its id, time, entity and
/// declared fields with their types, bounds and allowed values.
pub fn event_schema(schema: &StreamSchema) -> serde_json::Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    // Keys: a non-empty string or an integer (written as its digits).
    let key = json!({"anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX},
    ]});
    for name in [&schema.id, &schema.entity].into_iter().flatten() {
        properties.insert(name.clone(), key.clone());
        required.push(name.clone());
    }
    if let Some(ts) = &schema.timestamp {
        let t = match schema.timestamp_format {
            // Within the stream's accepted times: strings by year (a
            // year inside the bounds on both sides, so no offset crosses
            // them), numbers by range in each unit the format reads.
            TimestampFormat::Rfc3339 => rfc3339_schema(Some(schema.event_time_bounds)),
            TimestampFormat::Auto => json!({"anyOf": [
                rfc3339_schema(Some(schema.event_time_bounds)),
                epoch_schema(schema.event_time_bounds, TimestampFormat::Auto),
            ]}),
            f => epoch_schema(schema.event_time_bounds, f),
        };
        properties.insert(ts.clone(), t);
        required.push(ts.clone());
    }
    for f in &schema.fields {
        let mut p = match f.ty {
            // As the decoder takes them (radar_core::decode): an integer
            // for a float, an integral float for an int (below 9e15), 0/1
            // for a bool, an integer's digits for a category.
            FieldType::Float => json!({"type": "number"}),
            FieldType::Int => json!({"type": "integer", "minimum": -9.0e15, "maximum": 9.0e15}),
            FieldType::Bool => json!({"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}]}),
            FieldType::Category if f.allowed.is_some() => json!({"type": "string"}),
            FieldType::Category => json!({"anyOf": [
                {"type": "string"},
                {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX},
            ]}),
        };
        if let Some(m) = f.min {
            p["minimum"] = json!(m);
        }
        if let Some(m) = f.max {
            p["maximum"] = json!(m);
        }
        if let Some(allowed) = &f.allowed {
            let mut values: Vec<&String> = allowed.iter().collect();
            values.sort();
            p["enum"] = json!(values);
        }
        if f.required {
            required.push(f.name.clone());
        } else {
            p = json!({"anyOf": [p, {"type": "null"}]});
        }
        properties.insert(f.name.clone(), p);
    }
    json!({
        "type": "object",
        "description": format!("An event of stream `{}` (at most {} bytes)", schema.name, schema.max_event_bytes),
        "properties": properties,
        "required": required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc3339_pattern_takes_what_the_parser_takes_within_the_bounds() {
        let bounded = rfc3339_schema(Some(radar_core::schema::DEFAULT_EVENT_TIME_BOUNDS));
        let pattern = bounded["pattern"].as_str().unwrap();
        assert!(pattern.starts_with("^(1971|1972|"), "{pattern}");
        assert!(pattern.contains("|2098)-"), "{pattern}");
        // A literal check of the pieces: every sample the pattern is meant
        // to take, the parser takes.
        for t in [
            "2026-11-25T13:50:30Z",
            "1999-12-31t23:59:60.123456789+05:30",
            "2040-04-30 00:00:00",
            "2001-02-28T00:00:00-23:59",
        ] {
            assert!(radar_core::time::parse_rfc3339(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn the_document_covers_every_route_and_error() {
        let doc: serde_json::Value = serde_json::from_str(&document().to_json().unwrap()).unwrap();
        if let Ok(path) = std::env::var("RADAR_DUMP_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/streams/{stream}/events",
            "/v1/streams/{stream}/score",
            "/v1/streams/{stream}/drift",
            "/v1/alerts",
            "/v1/labels",
            "/v1/streams/{stream}/labels",
            "/v1/models",
            "/v1/models/{name}",
            "/v1/models/{name}/versions/{version}",
            "/v1/runs",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
        ] {
            let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for status in ["401", "403", "404", "405", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
                if method == "post" {
                    assert!(responses.contains_key("413") && responses.contains_key("415"));
                }
            }
        }
        assert_eq!(paths.len(), 19, "a route is not in the document");
    }
}
