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

/// Who may pass.
pub struct Door {
    store: KeyStore,
    keys: RwLock<Arc<Keys>>,
    /// Without any active key, requests pass.
    open_without_keys: bool,
    /// `/metrics` needs no key.
    open_metrics: bool,
}

impl Door {
    /// A door over `store`; loads its keys now.
    pub fn new(
        store: KeyStore,
        open_without_keys: bool,
        open_metrics: bool,
    ) -> radar_pipeline::error::Result<Arc<Door>> {
        let keys = store.active()?;
        Ok(Arc::new(Door {
            store,
            keys: RwLock::new(Arc::new(keys)),
            open_without_keys,
            open_metrics,
        }))
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
        (_, "/healthz" | "/readyz") => None,
        (_, "/metrics") => (!open_metrics).then_some(Role::Read),
        (&Method::POST, "/v1/streams/{stream}/events") => Some(Role::Ingest),
        (&Method::POST, "/v1/streams/{stream}/score") => Some(Role::Score),
        (&Method::POST, "/v1/labels") => Some(Role::Label),
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

/// The key check (on matched routes).
pub async fn authorize(
    State(door): State<Arc<Door>>,
    matched: Option<MatchedPath>,
    request: Request,
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
    match keys.check(presented(request.headers()), radar_core::time::now_micros()) {
        Ok(role) if role.allows(needed) => next.run(request).await,
        Ok(role) => ApiError::bad(format!(
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
        assert_eq!(needed_role(&get, "/v1/labels", true), Some(Role::Read));
        assert_eq!(needed_role(&get, "/v1/alerts", true), Some(Role::Read));
        assert_eq!(
            needed_role(&get, "/v1/models/{name}", true),
            Some(Role::Read)
        );
    }
}
