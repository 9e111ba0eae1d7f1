//! Where encoded readings go: Kafka, a file, or standard output.

mod file;
mod kafka;

pub use file::{FileOutput, StdoutOutput};
pub use kafka::{KafkaOptions, KafkaOutput, ensure_topic};

use crate::error::Result;

/// What an output could not deliver, reported in the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReport {
    /// Records the destination confirmed.
    pub delivered: u64,
    /// Records that could not be delivered.
    pub failed: u64,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
}

/// A destination for encoded records.
pub trait Output {
    /// Sends one record. `payload` is one encoded reading, `key` its machine id.
    fn send(&mut self, key: &str, payload: &[u8], ts_ms: i64) -> Result<()>;

    /// Flushes everything and reports what was (not) delivered.
    fn finish(self: Box<Self>) -> Result<DeliveryReport>;
}
