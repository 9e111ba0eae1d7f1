//! The engine's one error type. Variants say whose fault it is: the job's
//! text ([`EngineError::Job`]), the outside world (Kafka, storage, files), or
//! the engine itself (a DataFusion error while executing).

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's job or options: fix the input.
    User,
    /// A service or the file system: retry or fix the environment.
    External,
    /// A bug or unexpected state in Spindle.
    Internal,
}

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The job's text does not parse or plan; located at line:column.
    #[error("{}{source}", if file.is_empty() { String::new() } else { format!("{file}:") })]
    Job {
        /// Job file name (or `<job>`).
        file: String,
        /// The located SQL error.
        #[source]
        source: spindle_sql::SqlError,
    },
    /// Planning or executing with DataFusion failed.
    #[error("{context}: {source}")]
    DataFusion {
        /// What we were doing.
        context: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Kafka refused or failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What we were doing, naming topic or brokers.
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Object storage (local or S3) failed.
    #[error("storage: {context}: {source}")]
    Storage {
        /// What we were doing, naming the path.
        context: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// Writing Parquet failed.
    #[error("parquet: {context}: {source}")]
    Parquet {
        /// What we were doing, naming the file.
        context: String,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, naming the file.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The in-process simulator failed.
    #[error("simulator: {0}")]
    Simulator(#[from] spindle_simulator::SimError),
    /// Bad input with `'bad_data' = 'fail'`.
    #[error("bad record in {source_name} partition {partition} offset {offset}: {message}")]
    BadRecord {
        /// The source table.
        source_name: String,
        /// Source partition.
        partition: i32,
        /// Offset in the partition.
        offset: i64,
        /// Why it was rejected.
        message: String,
    },
    /// A sink's destination refused or failed (named; never with credentials).
    #[error("sink {sink}: {message}")]
    Sink {
        /// The sink table.
        sink: String,
        /// What went wrong, with the server's own message where there is one.
        message: String,
    },
    /// A request the job service refuses (a history query that is not a
    /// single `SELECT`).
    #[error("{0}")]
    Refused(String),
    /// Something took longer than it is allowed to (a history query).
    #[error("{what} did not finish within {}", humantime::format_duration(*after))]
    Timeout {
        /// What was cut off.
        what: String,
        /// The limit.
        after: std::time::Duration,
    },
    /// A checkpoint cannot be read (corrupt, partial, of another version) or
    /// does not fit the job.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint object.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The job's SQL changed since its checkpoint in ways the checkpointed
    /// state cannot follow (names the pipelines and the changes).
    #[error("{0}")]
    StateChanged(String),
    /// Anything else about the engine's own state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Job { .. }
            | Self::BadRecord { .. }
            | Self::Refused(_)
            | Self::Timeout { .. }
            | Self::StateChanged(_) => ErrorKind::User,
            Self::Kafka { .. }
            | Self::Storage { .. }
            | Self::Io { .. }
            | Self::Sink { .. }
            | Self::Checkpoint { .. } => ErrorKind::External,
            Self::DataFusion { source, .. } => match source {
                datafusion::error::DataFusionError::Plan(_)
                | datafusion::error::DataFusionError::SQL(..) => ErrorKind::User,
                _ => ErrorKind::Internal,
            },
            Self::Parquet { .. } | Self::Simulator(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Wraps a DataFusion error with what we were doing.
    pub fn datafusion(
        context: impl Into<String>,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> Self {
        let context = context.into();
        move |source| Self::DataFusion { context, source }
    }

    /// Wraps an object_store error with what we were doing.
    pub fn storage(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> Self {
        let context = context.into();
        move |source| Self::Storage { context, source }
    }

    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Wraps a Kafka error with what we were doing.
    pub fn kafka(context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |source| Self::Kafka { context, source }
    }
}

impl From<spindle_sql::SqlError> for EngineError {
    fn from(source: spindle_sql::SqlError) -> Self {
        Self::Job {
            file: String::new(),
            source,
        }
    }
}

impl EngineError {
    /// Names the job file in a [`EngineError::Job`].
    pub fn in_file(self, name: &str) -> Self {
        match self {
            Self::Job { source, .. } => Self::Job {
                file: name.to_string(),
                source,
            },
            other => other,
        }
    }
}

/// Result with [`EngineError`] as the default error.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
