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
}

/// Builds the sink of `table` from its options (`'connector'` pulled already).
pub fn open(
    connector: &str,
    table: &TableDef,
    options: &mut Options,
    context: &SinkContext,
) -> Result<Box<dyn Sink>> {
    match connector {
        "parquet" => Ok(Box::new(parquet::ParquetSink::open(table, options)?)),
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
