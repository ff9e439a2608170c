//! The pipeline's error: every failure keeps its source and its
//! [`ErrorKind`] (input, not found, conflict, unavailable, internal), so
//! the server maps it to a status in one place and a component retries
//! only what a retry can fix.

use radar_core::error::Classify;
pub use radar_core::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A spec, a declaration, an option or a file the caller gave is
    /// wrong; the message names it, what was expected and what came.
    #[error("{0}")]
    Input(String),
    /// Something asked for by name does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is going on (a retrain of the
    /// stream already running).
    #[error("{0}")]
    Conflict(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Schema(#[from] radar_core::schema::SchemaError),
    #[error(transparent)]
    Matrix(#[from] radar_core::MatrixError),
    #[error(transparent)]
    Detect(#[from] radar_detect::DetectError),
    #[error(transparent)]
    Metric(#[from] radar_detect::metrics::MetricError),
    #[error(transparent)]
    Log(#[from] radar_log::LogError),
    #[error(transparent)]
    Lake(#[from] radar_lake::LakeError),
    #[error(transparent)]
    Registry(#[from] radar_registry::RegistryError),
    #[error(transparent)]
    Alerts(#[from] crate::sinks::AlertError),
    #[error(transparent)]
    Scorer(#[from] crate::scorer::ScorerError),
    #[error(transparent)]
    IngestStopped(Box<crate::ingest::Stopped>),
    /// A bug: an invariant that did not hold (a poisoned lock, a thread
    /// that panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    pub fn input(message: impl Into<String>) -> Self {
        PipelineError::Input(message.into())
    }

    /// An I/O error on `path` (a file the caller named, or the data
    /// directory).
    pub fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Self {
        move |source| PipelineError::Io {
            path: path.to_string(),
            source,
        }
    }
}

impl Classify for PipelineError {
    fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Input(_)
            | PipelineError::Schema(_)
            | PipelineError::Matrix(_)
            | PipelineError::Metric(_) => ErrorKind::Input,
            PipelineError::NotFound(_) => ErrorKind::NotFound,
            PipelineError::Conflict(_) => ErrorKind::Conflict,
            PipelineError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                    ErrorKind::Input
                }
                _ => ErrorKind::Unavailable,
            },
            PipelineError::Detect(e) => match e {
                radar_detect::DetectError::Decode(_) => ErrorKind::Internal,
                _ => ErrorKind::Input,
            },
            PipelineError::Log(e) => e.kind(),
            PipelineError::Lake(e) => e.kind(),
            PipelineError::Registry(e) => e.kind(),
            PipelineError::Alerts(e) => e.kind(),
            PipelineError::Scorer(e) => e.kind(),
            PipelineError::IngestStopped(e) => e.source.kind(),
            PipelineError::Internal(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
