//! Sinks: where a pipeline's rows go. One file per connector; [`sinks`]
//! lists them. A sink buffers as it likes but makes everything written so far
//! durable on [`Sink::flush`], which the job calls at the end of each epoch.

pub mod console;
mod http;
pub mod influxdb;
mod json;
pub mod kafka;
mod options;
pub mod parquet;
mod retry;
#[cfg(test)]
mod test_http;
pub mod webhook;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use spindle_sql::ddl::{Options, TableDef};

use crate::checkpoint::StagedFile;
use crate::error::Result;
use crate::side_output::SideOutput;

/// Names of the sink connectors.
pub fn sinks() -> &'static [&'static str] {
    &["parquet", "influxdb", "kafka", "webhook", "console"]
}

/// The options of a sink connector that has its own list (for "did you
/// mean" hints; the others share the job's list).
pub fn options(connector: &str) -> Option<&'static [&'static str]> {
    match connector {
        "kafka" => Some(kafka::OPTIONS),
        "webhook" => Some(webhook::OPTIONS),
        _ => None,
    }
}

/// What a sink may use besides its table and options.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The job's dead-letter output (for rows or lines a destination rejects).
    pub dead_letter: SideOutput,
    /// The job's name (in exactly-once file names).
    pub job: String,
}

/// A destination for rows of one table.
#[async_trait]
pub trait Sink: Send + std::fmt::Debug {
    /// Accepts rows (in the sink table's schema).
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Makes every accepted row durable (and, where the sink rolls files,
    /// rolls those that are due).
    async fn flush(&mut self) -> Result<()>;
    /// Makes every accepted row durable and visible (a Parquet sink closes
    /// its open files); sources commit offsets only after this.
    async fn commit(&mut self) -> Result<()> {
        self.flush().await
    }
    /// Flushes and releases everything; no writes after this.
    async fn close(&mut self) -> Result<()>;

    /// Accepts rows computed from a checkpointed source partition. Sinks
    /// with exactly-once output (Parquet) keep them apart per origin and
    /// publish them with the origin's checkpoint; others just write.
    async fn write_from(&mut self, origin: &Origin, batch: RecordBatch) -> Result<()> {
        let _ = origin;
        self.write(batch).await
    }

    /// Before `origin`'s checkpoint: makes its rows durable (not yet
    /// visible, for exactly-once sinks) and lists what to publish once the
    /// checkpoint is written.
    async fn stage(&mut self, origin: &Origin) -> Result<Vec<StagedFile>> {
        let _ = origin;
        self.commit().await?;
        Ok(Vec::new())
    }

    /// After the checkpoint listing `files` is written: makes them visible.
    /// Runs again for the restored checkpoint after a crash, so it must be
    /// idempotent.
    async fn publish(&mut self, files: &[StagedFile]) -> Result<()> {
        let _ = files;
        Ok(())
    }

    /// When `origin` is restored from its checkpoint of epoch
    /// `origin.epoch - 1`: removes output a crashed attempt staged later.
    async fn discard_staged(&mut self, origin: &Origin) -> Result<()> {
        let _ = origin;
        Ok(())
    }
}

/// A checkpointed source partition and the epoch its rows belong to (the
/// one its next checkpoint closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The source table.
    pub source: String,
    /// Its partition.
    pub partition: i32,
    /// The epoch in progress.
    pub epoch: u64,
}

/// Builds the sink of `table` from its options (`'connector'` pulled already).
pub fn open(
    connector: &str,
    table: &TableDef,
    options: &mut Options,
    context: &SinkContext,
) -> Result<Box<dyn Sink>> {
    match connector {
        "parquet" => Ok(Box::new(parquet::ParquetSink::open(
            table,
            options,
            &context.job,
        )?)),
        "influxdb" => Ok(Box::new(influxdb::InfluxDbSink::open(
            table, options, context,
        )?)),
        "kafka" => Ok(Box::new(kafka::KafkaSink::open(table, options)?)),
        "webhook" => Ok(Box::new(webhook::WebhookSink::open(
            table, options, context,
        )?)),
        "console" => Ok(Box::new(console::ConsoleSink::open(table, options)?)),
        other => Err(options
            .error_at(
                "connector",
                &format!(
                    "unknown sink connector {other:?}; expected one of {}",
                    sinks().join(", ")
                ),
                options.table_location(),
            )
            .into()),
    }
}
