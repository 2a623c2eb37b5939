//! The engine's error type: every variant names the file, key or value that is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid config {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("unsupported architecture {found:?} in {path} (this engine runs \"voxcpm2\")")]
    UnsupportedArchitecture { path: PathBuf, found: String },

    #[error("invalid weight file {path}: {message}")]
    WeightFile { path: PathBuf, message: String },

    #[error("checkpoint {path} does not match its config:\n{}", .problems.join("\n"))]
    WeightMismatch { path: PathBuf, problems: Vec<String> },

    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("generation was cancelled")]
    Cancelled,

    #[error("the speech server has stopped")]
    Stopped,

    #[error("the model is not available: {0}")]
    ModelUnavailable(String),

    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),

    #[error("{0}")]
    Fetch(String),

    #[error("internal engine error: {0}")]
    Internal(String),

    #[error("parity case {path}: {message}")]
    Case { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
