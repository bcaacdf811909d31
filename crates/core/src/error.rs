//! The error type shared by the library crates.
//!
//! Errors caused by what the user gave us ([`Error::Input`], [`Error::Usage`]) map to exit code 2 in the
//! binary; they always name the file, the field (or line) and what was expected.

use std::path::{Path, PathBuf};

/// A result with the shared [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a tmescope stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied file is malformed or inconsistent.
    #[error("{}{}: {message}", file.display(), location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
    Input {
        /// The offending file or folder.
        file: PathBuf,
        /// Where in the file: a line, a field, a column or an HDF5 path.
        location: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The options or parameters given do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// An operating-system error while reading or writing a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A bug or an unexpected internal state (never caused by user input alone).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A copy of the error, of the same kind (so the same exit code); an I/O error is copied as its kind and
/// message, since `std::io::Error` cannot be cloned.
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::Input { file, location, message } => {
                Error::Input { file: file.clone(), location: location.clone(), message: message.clone() }
            }
            Error::Usage(m) => Error::Usage(m.clone()),
            Error::Io { path, source } => Error::io(path, std::io::Error::new(source.kind(), source.to_string())),
            Error::Internal(m) => Error::Internal(m.clone()),
        }
    }
}

impl Error {
    /// An input error about `file` at `location` (a line, column or field name).
    pub fn input(file: impl AsRef<Path>, location: impl Into<String>, message: impl Into<String>) -> Self {
        let location = location.into();
        Error::Input {
            file: file.as_ref().to_path_buf(),
            location: (!location.is_empty()).then_some(location),
            message: message.into(),
        }
    }

    /// An input error about a whole file.
    pub fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::input(file, "", message)
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// Whether the error was caused by user input or options (exit code 2) rather than a bug.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Internal(_))
    }
}
