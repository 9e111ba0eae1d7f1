//! The simulator's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading a profile, replaying a CSV or
/// writing readings. Variants say whose fault it is: the user's input
/// (`Profile`, `Csv`, `Option`), the outside world (`Io`, `Kafka`), or a
/// delivery that the broker refused (`Delivery`).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A profile file that does not parse or does not make sense.
    #[error("{path}:{line}: {message}")]
    Profile {
        /// The profile file (or `<built-in NAME>`).
        path: PathBuf,
        /// 1-based line of the offending table or key.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A replay CSV with a malformed row or header.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line in the file (the header is line 1).
        line: u64,
        /// The column name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A command-line or API option with a bad value.
    #[error("option `{option}`: {message}")]
    Option {
        /// The option's name as the user typed it.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, naming the file.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to Kafka failed (creating the producer, the topic, flushing).
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What we were doing, naming the topic or brokers.
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl SimError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn option(option: &str, message: impl Into<String>) -> Self {
        Self::Option {
            option: option.to_string(),
            message: message.into(),
        }
    }
}

/// Result with [`SimError`] as the default error.
pub type Result<T, E = SimError> = std::result::Result<T, E>;
