//! The one place that turns errors into HTTP answers: a status from the
//! error's kind, and a JSON body with a stable code and a message naming
//! the problem. Handlers return `Result<_, ApiError>` and never pick a
//! status for a library error themselves.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use radar_core::error::{Classify, ErrorKind};
use serde_json::json;

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
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
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
