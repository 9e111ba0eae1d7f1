//! The SQL crate's one error type.

/// A 1-based line and column in the user's job text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Errors in a job's text. All are the user's to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// `${VAR}` without a default, and `VAR` is not set.
    #[error(
        "{location}: environment variable `{name}` is not set and has no default (write ${{{name}:-default}})"
    )]
    UnsetVariable {
        /// The variable.
        name: String,
        /// Where the reference starts.
        location: Location,
    },
    /// `${` without a closing `}` or with an invalid name.
    #[error("{location}: malformed variable reference: {message}")]
    MalformedVariable {
        /// What is wrong.
        message: String,
        /// Where the reference starts.
        location: Location,
    },
}

/// Result with [`SqlError`] as the default error.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
