//! The one place that turns errors into HTTP answers: a status from the
//! error's kind, and a JSON body with a stable code and a message naming
//! the problem. Handlers return `Result<_, ApiError>` and never pick a
//! status for a library error themselves.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use radar_core::error::{Classify, ErrorKind};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable code for programs (`invalid_input`, `not_found`, …).
    pub code: &'static str,
    pub message: String,
    /// The request field it is about, when there is one.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u32>,
}

/// The status of each kind of failure.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Input => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(kind),
            code: kind.code(),
            message: message.into(),
            field: None,
            retry_after: (kind == ErrorKind::Unavailable).then_some(1),
        }
    }

    /// A bad request about `field`.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.to_owned()),
            ..ApiError::new(ErrorKind::Input, message)
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Input, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Unavailable, message)
    }

    /// A bug on the server's side; the message is logged, not sent.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error answering a request");
        ApiError::new(ErrorKind::Internal, "internal error; see the server's log")
    }

    /// Any classified library error, by its kind.
    pub fn from_error(e: &(impl Classify + ?Sized)) -> Self {
        match e.kind() {
            ErrorKind::Internal => ApiError::internal(e.to_string()),
            kind => ApiError::new(kind, e.to_string()),
        }
    }

    pub fn with_status(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::api::ErrorBody {
            error: redact_paths(&self.message),
            code: self.code.to_owned(),
            field: self.field,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        response
    }
}

impl<E: Classify> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::from_error(&e)
    }
}

/// Every error answer as JSON: the answers the router or a layer makes on
/// its own (405 with no body, 413 and bad paths in plain text) get an
/// [`crate::api::ErrorBody`] with a code from their status.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Bodies of these answers are short texts the framework wrote.
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, fallback) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this path does not take this method; see /openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the body is larger than this server takes (see `radar up --max-body-bytes`)",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint; see /openapi.json"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send application/json or application/x-ndjson",
        ),
        s if s.is_server_error() => ("internal", "internal error; see the server's log"),
        _ => ("invalid_input", "the request is invalid"),
    };
    let message = if text.is_empty() || status.is_server_error() {
        fallback.to_owned()
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("{fallback} ({text})")
    } else {
        text
    };
    let mut error = ApiError::new(ErrorKind::Input, message).with_status(status, code);
    error.retry_after = None;
    let mut answer = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Messages name no file on the server: a path (a word starting with `/`
/// with another `/` in it, other than the API's own routes) becomes
/// `<server path>`.
pub fn redact_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let is_route = ["/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json"]
            .iter()
            .any(|r| word.starts_with(r));
        if word.starts_with('/') && word[1..].contains('/') && !is_route {
            out.push_str("<server path>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '(' | ')' | ',' | ';') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_no_server_path() {
        assert_eq!(
            redact_paths("reading `/var/lib/radar/log/00001.seg`: disk full"),
            "reading `<server path>`: disk full"
        );
        assert_eq!(
            redact_paths("no such endpoint; see /v1/alerts, /healthz"),
            "no such endpoint; see /v1/alerts, /healthz"
        );
        assert_eq!(redact_paths("a/b and /tmp/x"), "a/b and <server path>");
        assert_eq!(redact_paths("amount must be > 0"), "amount must be > 0");
    }
}
