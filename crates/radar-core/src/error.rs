//! Whose fault an error is, and whether a retry may fix it: the one
//! classification every library error gives, so that the server maps
//! errors to HTTP statuses in one place and components retry only what a
//! retry can fix.

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input is wrong (a bad field, an unknown option): fix
    /// the input; retrying it unchanged fails again.
    Input,
    /// What was asked for does not exist (a model version, a run, an
    /// alias, a stream).
    NotFound,
    /// The request conflicts with the current state (an exclusive lock
    /// held elsewhere, a version that already moved on).
    Conflict,
    /// A dependency cannot serve now (storage down, disk full, a broker
    /// away, a database busy): the same call may pass later.
    Unavailable,
    /// A bug or corruption: neither the caller nor a retry can fix it.
    Internal,
}

impl ErrorKind {
    pub fn is_transient(self) -> bool {
        self == ErrorKind::Unavailable
    }

    /// A stable lower-case code for API bodies and logs.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Input => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error that knows its [`ErrorKind`].
pub trait Classify: std::fmt::Display {
    fn kind(&self) -> ErrorKind;

    /// Whether retrying the same call later may succeed.
    fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}
