//! The SQL crate's one error type.

/// A 1-based line and column in the user's job text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// Errors in a job's text. All are the user's to fix; each names its place.
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
    /// The text does not parse.
    #[error("{location}: syntax error: {message}")]
    Syntax {
        /// What the parser expected or found.
        message: String,
        /// Where.
        location: Location,
    },
    /// A connector option that is unknown, missing or has a bad value.
    #[error("{location}: table `{table}`: option '{option}': {message}")]
    Option {
        /// The table whose `WITH` clause holds it.
        table: String,
        /// The option key.
        option: String,
        /// What is wrong.
        message: String,
        /// Where the option (or the table) is.
        location: Location,
    },
    /// A statement that parses but is not a valid job: unknown table, column
    /// or function, unsupported construct.
    #[error("{location}: {message}")]
    Plan {
        /// What is wrong.
        message: String,
        /// Where.
        location: Location,
    },
}

impl SqlError {
    /// Where the error is in the user's text.
    pub fn location(&self) -> Location {
        match self {
            Self::UnsetVariable { location, .. }
            | Self::MalformedVariable { location, .. }
            | Self::Syntax { location, .. }
            | Self::Option { location, .. }
            | Self::Plan { location, .. } => *location,
        }
    }

    /// The same error at another location (used to map positions in the
    /// substituted text back to the user's text).
    pub fn relocated(mut self, to: Location) -> Self {
        match &mut self {
            Self::UnsetVariable { location, .. }
            | Self::MalformedVariable { location, .. }
            | Self::Syntax { location, .. }
            | Self::Option { location, .. }
            | Self::Plan { location, .. } => *location = to,
        }
        self
    }

    /// The error message without its location prefix.
    pub fn message(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.location());
        text.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(text)
    }
}

/// Result with [`SqlError`] as the default error.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
