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

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid config {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("unsupported architecture {found:?} in {path} (this engine runs \"voxcpm\" and \"voxcpm2\")")]
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

    /// The network produced NaN or infinity. With a sound checkpoint it does not, so the likely
    /// cause is damaged weights or config values; the request ends rather than emit garbage.
    #[error(
        "the model produced non-finite values (NaN/Inf) in {stage}: its weights or config.json are \
         likely damaged; download or regenerate the checkpoint"
    )]
    NonFinite { stage: &'static str },

    #[error("internal engine error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A weight mismatch that also lists `other`'s problems (those of another file of the same
    /// checkpoint), each line naming that file; any other pair keeps `self` alone.
    pub(crate) fn with_problems_of(self, other: Error) -> Error {
        match (self, other) {
            (Error::WeightMismatch { path, mut problems }, Error::WeightMismatch { path: other, problems: more }) => {
                let name =
                    other.file_name().map_or_else(|| other.display().to_string(), |n| n.to_string_lossy().into());
                problems.extend(more.into_iter().map(|problem| format!("{name}: {problem}")));
                Error::WeightMismatch { path, problems }
            }
            (first, _) => first,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A failed write of `path` (as opposed to [`Error::Io`], a failed read).
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write { path: path.into(), source }
    }
}

/// Fails with [`Error::NonFinite`] naming `stage` when any value is NaN or infinite.
pub(crate) fn ensure_finite(values: &[f32], stage: &'static str) -> Result<()> {
    if values.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(Error::NonFinite { stage }) }
}

/// The message a panic carried (`panic!` with a literal or a formatted string), for reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic")
}
