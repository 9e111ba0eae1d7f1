//! Side outputs as JSON lines files: the dead-letter output (records that
//! could not be decoded: raw bytes, error, partition, offset) and the late
//! output (rows whose windows had closed, with the window they missed).
//! Sinks append the lines a server refused to the dead-letter output too
//! (`{"sink", "error", "raw", "lines"}`). Appended and flushed every
//! micro-batch, so nothing is lost on a stop.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::RecordBatch;

use crate::decode::BadRecord;
use crate::error::{EngineError, Result};

/// One JSON lines file, opened on first use. Clones share the file (a sink
/// writes rejected lines to the same dead-letter output as the decoders).
#[derive(Debug, Clone)]
pub struct SideOutput {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    writer: Option<BufWriter<File>>,
    records: u64,
}

/// A line a sink could not deliver, with the reason (the server's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Why it was rejected.
    pub error: String,
    /// The line as sent; `None` when the server only counted the lines it
    /// dropped without naming them.
    pub raw: Option<String>,
    /// How many lines this entry stands for (1 for a named line).
    pub lines: u64,
}

impl SideOutput {
    /// A side output at `path` (created when the first record arrives).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.lock().map(|inner| inner.records).unwrap_or_default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| {
            EngineError::Internal(format!("side output {} poisoned", self.path.display()))
        })
    }

    /// Runs `write` on the open file, counts `records` and flushes, under
    /// one lock (so entries of different writers never interleave).
    fn append(
        &self,
        records: u64,
        write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.writer.is_none() {
            inner.writer = Some(BufWriter::new(self.open()?));
        }
        let context = || format!("writing {}", self.path.display());
        let writer = inner
            .writer
            .as_mut()
            .ok_or_else(|| EngineError::Internal("side output writer vanished".into()))?;
        write(writer)
            .and_then(|()| writer.flush())
            .map_err(EngineError::io(context()))?;
        inner.records += records;
        Ok(())
    }

    fn open(&self) -> Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(EngineError::io(format!("opening {}", self.path.display())))
    }

    /// Appends dead-letter entries for `source`.
    pub fn write_bad(&mut self, source: &str, bad: &[BadRecord]) -> Result<()> {
        if bad.is_empty() {
            return Ok(());
        }
        let entries = bad.iter().map(|record| {
            serde_json::json!({
                "source": source,
                "partition": record.partition,
                "offset": record.offset,
                "error": record.error,
                "raw": String::from_utf8_lossy(&record.raw),
            })
        });
        self.append_json(bad.len() as u64, entries)
    }

    /// Appends dead-letter entries for lines `sink` could not deliver:
    /// `{"sink", "error", "raw", "lines"}`.
    pub fn write_rejected(&self, sink: &str, rejected: &[Rejected]) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        let count = rejected.iter().map(|r| r.lines).sum();
        let entries = rejected.iter().map(|entry| {
            serde_json::json!({
                "sink": sink,
                "error": entry.error,
                "raw": entry.raw,
                "lines": entry.lines,
            })
        });
        self.append_json(count, entries)
    }

    /// Appends one JSON object per line, counting `records`.
    fn append_json(
        &self,
        records: u64,
        entries: impl Iterator<Item = serde_json::Value>,
    ) -> Result<()> {
        self.append(records, |writer| {
            for entry in entries {
                writeln!(writer, "{entry}")?;
            }
            Ok(())
        })
    }

    /// Appends rows as JSON objects.
    pub fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.append(batch.num_rows() as u64, |writer| {
            let mut json = arrow_json::LineDelimitedWriter::new(writer);
            json.write(batch)
                .and_then(|()| json.finish())
                .map_err(std::io::Error::other)
        })
    }
}
