//! Side outputs as JSON lines files: the dead-letter output (records that
//! could not be decoded: raw bytes, error, partition, offset) and the late
//! output (rows whose windows had closed, with the window they missed).
//! Appended and flushed every micro-batch, so nothing is lost on a stop.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::decode::BadRecord;
use crate::error::{EngineError, Result};

/// One JSON lines file, opened on first use.
#[derive(Debug)]
pub struct SideOutput {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    records: u64,
}

impl SideOutput {
    /// A side output at `path` (created when the first record arrives).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            writer: None,
            records: 0,
        }
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>> {
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(EngineError::io(format!("creating {}", dir.display())))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(EngineError::io(format!("opening {}", self.path.display())))?;
            self.writer = Some(BufWriter::new(file));
        }
        self.writer
            .as_mut()
            .ok_or_else(|| EngineError::Internal("side output writer vanished".into()))
    }

    /// Appends dead-letter entries for `source`.
    pub fn write_bad(&mut self, source: &str, bad: &[BadRecord]) -> Result<()> {
        if bad.is_empty() {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let writer = self.writer()?;
        for record in bad {
            let line = serde_json::json!({
                "source": source,
                "partition": record.partition,
                "offset": record.offset,
                "error": record.error,
                "raw": String::from_utf8_lossy(&record.raw),
            });
            writeln!(writer, "{line}").map_err(EngineError::io(format!("writing {path}")))?;
        }
        self.records += bad.len() as u64;
        self.flush()
    }

    /// Appends rows as JSON objects.
    pub fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let writer = self.writer()?;
        let mut json = arrow_json::LineDelimitedWriter::new(writer);
        json.write(batch)
            .and_then(|()| json.finish())
            .map_err(|e| EngineError::Internal(format!("writing {path}: {e}")))?;
        self.records += batch.num_rows() as u64;
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        match self.writer.as_mut() {
            Some(w) => w
                .flush()
                .map_err(EngineError::io(format!("flushing {}", self.path.display()))),
            None => Ok(()),
        }
    }
}
