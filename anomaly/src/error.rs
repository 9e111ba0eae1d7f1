//! The crate's errors.

/// What can go wrong building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// A parameter out of its range.
    #[error("bad parameter: {0}")]
    Parameter(String),
    /// A function called with arguments it cannot use.
    #[error("{function}: {message}")]
    Call {
        /// The SQL function.
        function: String,
        /// What is wrong.
        message: String,
    },
    /// A checkpointed detector state that does not fit the query's call.
    #[error(
        "the checkpointed state of {function} for key {key} does not fit this query: {message}"
    )]
    Checkpoint {
        /// The call, as the query writes it.
        function: String,
        /// The `PARTITION BY` key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A trained model that cannot be used.
    #[error("model {name}: {message}")]
    Model {
        /// The model's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A model file that cannot be read, parsed or used.
    #[error("model file {path}: {message}")]
    ModelFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The crate's result.
pub type Result<T, E = AnomalyError> = std::result::Result<T, E>;
