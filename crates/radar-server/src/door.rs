//! The door every request passes: the body's declared type (a POST must
//! say JSON or NDJSON, so a web page's `text/plain` form cannot inject
//! events through a browser; compressed bodies are refused, not misread),
//! then the API key against the role its endpoint needs.
//!
//! Keys are checked against an in-memory copy of the active keys, reloaded
//! from the store every second: a revoked key stops working within a
//! second, and no request waits on the database. With no active key the
//! door is open only where that was allowed at start (a loopback address,
//! or `--insecure-no-auth`); once any key exists, every request needs one.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use radar_pipeline::access::{KeyStore, Keys, Role};

use crate::error::ApiError;

/// Per-key limits; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Requests per second a key may make (a bucket of one second's).
    pub rate: Option<f64>,
    /// Requests one key may have in flight at once.
    pub concurrent: Option<usize>,
}

/// Who may pass.
pub struct Door {
    store: KeyStore,
    keys: RwLock<Arc<Keys>>,
    /// Without any active key, requests pass.
    open_without_keys: bool,
    /// `/metrics` needs no key.
    open_metrics: bool,
    limits: Limits,
    /// Per key id: (tokens, last refill µs) and requests in flight.
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, i64, usize)>>,
}

impl Door {
    /// A door over `store` with per-key `limits`; loads its keys now.
    pub fn new(
        store: KeyStore,
        open_without_keys: bool,
        open_metrics: bool,
        limits: Limits,
    ) -> radar_pipeline::error::Result<Arc<Door>> {
        let keys = store.active()?;
        Ok(Arc::new(Door {
            store,
            keys: RwLock::new(Arc::new(keys)),
            open_without_keys,
            open_metrics,
            limits,
            buckets: Default::default(),
        }))
    }

    /// Takes a request slot for key `id` at `now`, or says how many
    /// seconds until one frees.
    fn admit(&self, id: &str, now: i64) -> Result<(), u32> {
        let Limits { rate, concurrent } = self.limits;
        if rate.is_none() && concurrent.is_none() {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let burst = rate.unwrap_or(f64::INFINITY).max(1.0);
        let (tokens, last, in_flight) = buckets.entry(id.to_owned()).or_insert((burst, now, 0));
        if concurrent.is_some_and(|c| *in_flight >= c) {
            return Err(1);
        }
        if let Some(r) = rate {
            *tokens = (*tokens + (now - *last) as f64 / 1e6 * r).min(burst);
            *last = now;
            if *tokens < 1.0 {
                return Err(((1.0 - *tokens) / r).ceil().max(1.0) as u32);
            }
            *tokens -= 1.0;
        }
        *in_flight += 1;
        Ok(())
    }

    fn release(&self, id: &str) {
        if let Ok(mut buckets) = self.buckets.lock()
            && let Some(b) = buckets.get_mut(id)
        {
            b.2 = b.2.saturating_sub(1);
        }
    }

    /// Reloads the keys every second on `rt` until the door is dropped
    /// elsewhere; a store that cannot be read keeps the last copy.
    pub fn keep_fresh(self: &Arc<Door>, rt: &tokio::runtime::Handle) {
        let door = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(d) = door.upgrade() else { return };
                let store = d.store.clone();
                match tokio::task::spawn_blocking(move || store.active()).await {
                    Ok(Ok(keys)) => {
                        if let Ok(mut k) = d.keys.write() {
                            *k = Arc::new(keys);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "reloading the API keys failed"),
                    Err(e) => tracing::warn!(error = %e, "reloading the API keys failed"),
                }
            }
        });
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|_| Arc::new(Keys::default()))
    }
}

/// The role an endpoint needs; `None`: open to all.
pub fn needed_role(method: &Method, path: &str, open_metrics: bool) -> Option<Role> {
    match (method, path) {
        // The dashboard's files hold nothing secret: its data comes through
        // the API, with the key the person gives it.
        (_, "/healthz" | "/readyz" | "/openapi.json" | "/" | "/ui/app.js" | "/ui/app.css") => None,
        (_, "/metrics") => (!open_metrics).then_some(Role::Read),
        (&Method::POST, "/v1/streams/{stream}/events") => Some(Role::Ingest),
        (&Method::POST, "/v1/streams/{stream}/score") => Some(Role::Score),
        (&Method::POST, "/v1/labels" | "/v1/streams/{stream}/labels") => Some(Role::Label),
        (&Method::POST, path) if path.starts_with("/v1/models/") => Some(Role::Admin),
        _ => Some(Role::Read),
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        return Some(v.strip_prefix("Bearer ").unwrap_or(v).trim());
    }
    headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

/// The id (never the secret) of the key a request came with.
#[derive(Debug, Clone)]
pub struct KeyId(pub String);

/// The key check (on matched routes).
pub async fn authorize(
    State(door): State<Arc<Door>>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let Some(needed) = needed_role(request.method(), path, door.open_metrics) else {
        return next.run(request).await;
    };
    let keys = door.keys();
    if keys.is_empty() && door.open_without_keys {
        return next.run(request).await;
    }
    let now = radar_core::time::now_micros();
    let granted = keys
        .check(presented(request.headers()), now)
        .map(|(id, role)| (id.to_owned(), role));
    match granted {
        Ok((id, role)) if role.allows(needed) => {
            if let Err(wait) = door.admit(&id, now) {
                let mut r = ApiError::bad(format!(
                    "this key is over its limit ({}); retry in {wait} s",
                    limit_text(door.limits)
                ))
                .with_status(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
                return r;
            }
            // Who did it, for the audit trail of what a request changes.
            request.extensions_mut().insert(KeyId(id.clone()));
            let response = next.run(request).await;
            door.release(&id);
            response
        }
        Ok((_, role)) => ApiError::bad(format!(
            "this key's role `{}` may not do this; it needs `{}` (or `admin`)",
            role.name(),
            needed.name()
        ))
        .with_status(StatusCode::FORBIDDEN, "forbidden")
        .into_response(),
        Err(denied) => {
            let mut r = ApiError::bad(denied.message())
                .with_status(StatusCode::UNAUTHORIZED, "unauthorized")
                .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

fn limit_text(l: Limits) -> String {
    match (l.rate, l.concurrent) {
        (Some(r), Some(c)) => format!("{r} requests/s, {c} at once"),
        (Some(r), None) => format!("{r} requests/s"),
        (None, Some(c)) => format!("{c} requests at once"),
        (None, None) => "none".into(),
    }
}

/// The body check: a POST declares a JSON or NDJSON body, uncompressed.
pub async fn declared_body(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim();
        if !enc.eq_ignore_ascii_case("identity") {
            return unsupported(format!(
                "Content-Encoding `{enc}` is not accepted: send the body uncompressed"
            ));
        }
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    let essence = declared
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json = essence == "application/json"
        || essence == "application/x-ndjson"
        || essence == "application/ndjson"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json {
        return unsupported(match declared {
            Some(t) => format!(
                "Content-Type `{t}` is not accepted: send application/json or application/x-ndjson"
            ),
            None => {
                "the request has no Content-Type: send application/json or application/x-ndjson"
                    .into()
            }
        });
    }
    next.run(request).await
}

fn unsupported(message: String) -> Response {
    ApiError::bad_field("Content-Type", message)
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_rate_or_concurrency_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path().join("keys.db")).unwrap();
        let door = Door::new(
            store,
            false,
            true,
            Limits {
                rate: Some(2.0),
                concurrent: Some(1),
            },
        )
        .unwrap();
        let t = 1_000_000_000;
        assert_eq!(door.admit("a", t), Ok(()));
        // One in flight: the second waits, whatever the rate.
        assert_eq!(door.admit("a", t), Err(1));
        door.release("a");
        assert_eq!(door.admit("a", t), Ok(()));
        door.release("a");
        // Two a second, spent: the next in half a second (said as 1 s).
        assert_eq!(door.admit("a", t), Err(1));
        assert_eq!(door.admit("b", t), Ok(()), "each key its own bucket");
        assert_eq!(door.admit("a", t + 600_000), Ok(()));
    }

    #[test]
    fn every_endpoint_needs_its_role() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(needed_role(&get, "/healthz", false), None);
        assert_eq!(needed_role(&get, "/readyz", false), None);
        assert_eq!(needed_role(&get, "/metrics", true), None);
        assert_eq!(needed_role(&get, "/metrics", false), Some(Role::Read));
        assert_eq!(
            needed_role(&post, "/v1/streams/{stream}/events", true),
            Some(Role::Ingest)
        );
        assert_eq!(
            needed_role(&post, "/v1/streams/{stream}/score", true),
            Some(Role::Score)
        );
        assert_eq!(needed_role(&post, "/v1/labels", true), Some(Role::Label));
        assert_eq!(
            needed_role(&post, "/v1/streams/{stream}/labels", true),
            Some(Role::Label)
        );
        assert_eq!(
            needed_role(&get, "/v1/streams/{stream}/labels", true),
            Some(Role::Read)
        );
        assert_eq!(needed_role(&get, "/v1/labels", true), Some(Role::Read));
        assert_eq!(needed_role(&get, "/v1/alerts", true), Some(Role::Read));
        assert_eq!(
            needed_role(&get, "/v1/models/{name}", true),
            Some(Role::Read)
        );
    }
}
