//! `'connector' = 'console'`: rows on standard output, as JSON lines
//! (`'format' = 'json'`, the default) or as a table (`'format' = 'table'`).

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use async_trait::async_trait;
use spindle_sql::ddl::{Options, TableDef};

use super::Sink;
use crate::error::{EngineError, Result};

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsoleFormat {
    Json,
    Table,
}

/// Prints rows to stdout.
#[derive(Debug)]
pub struct ConsoleSink {
    name: String,
    format: ConsoleFormat,
}

impl ConsoleSink {
    /// Reads `'format'`.
    pub fn open(table: &TableDef, options: &mut Options) -> Result<Self> {
        let format = options
            .pull_parsed("format", |v| match v {
                "json" => Ok(ConsoleFormat::Json),
                "table" => Ok(ConsoleFormat::Table),
                other => Err(format!(
                    "unknown console format {other:?}; expected json or table"
                )),
            })?
            .unwrap_or(ConsoleFormat::Json);
        Ok(Self {
            name: table.name.clone(),
            format,
        })
    }
}

#[async_trait]
impl Sink for ConsoleSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut out = Vec::new();
        match self.format {
            ConsoleFormat::Json => {
                let mut writer = arrow_json::LineDelimitedWriter::new(&mut out);
                writer
                    .write(&batch)
                    .and_then(|()| writer.finish())
                    .map_err(|e| {
                        EngineError::Internal(format!("console sink {}: {e}", self.name))
                    })?;
            }
            ConsoleFormat::Table => {
                let table = pretty_format_batches(&[batch]).map_err(|e| {
                    EngineError::Internal(format!("console sink {}: {e}", self.name))
                })?;
                out.extend_from_slice(format!("{table}\n").as_bytes());
            }
        }
        std::io::stdout()
            .lock()
            .write_all(&out)
            .map_err(EngineError::io(format!("console sink {}", self.name)))
    }

    async fn flush(&mut self) -> Result<()> {
        std::io::stdout()
            .flush()
            .map_err(EngineError::io(format!("console sink {}", self.name)))
    }

    async fn close(&mut self) -> Result<()> {
        self.flush().await
    }
}
