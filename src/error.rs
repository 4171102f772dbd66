//! One typed error for every way a read can fail. `kind()` is the stable machine-readable name used in
//! the CLI's JSON and (later) thrown to JavaScript.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("the file is empty")]
    Empty,
    #[error("unsupported or unrecognised image format{0}")]
    UnsupportedFormat(String),
    #[error("the image data is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("the image is too large: {0}")]
    TooLarge(String),
    #[error("the image is too small to read: {width}x{height} pixels (need at least {min} on each side)")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("invalid film corners: {0}")]
    InvalidCorners(String),
    #[error("invalid model manifest: {0}")]
    Manifest(String),
    #[error("model checksum mismatch: manifest says {expected}, file is {actual}")]
    Checksum { expected: String, actual: String },
    #[error("the model does not match its manifest: {0}")]
    ModelMismatch(String),
    #[error("the model failed to run: {0}")]
    Inference(String),
    #[error("this backend cannot run here: {0}")]
    BackendUnavailable(String),
    #[error("cannot read input: {0}")]
    Io(String),
    #[error("internal error while reading (please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Stable, snake_case name of the error, for machines.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::UnsupportedFormat(_) => "unsupported_format",
            Error::Corrupt(_) => "corrupt",
            Error::TooLarge(_) => "too_large",
            Error::TooSmall { .. } => "too_small",
            Error::InvalidCorners(_) => "invalid_corners",
            Error::Manifest(_) => "manifest",
            Error::Checksum { .. } => "checksum",
            Error::ModelMismatch(_) => "model_mismatch",
            Error::Inference(_) => "inference",
            Error::BackendUnavailable(_) => "backend_unavailable",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
