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

use crate::checkpoint::StagedFile;
use crate::decode::BadRecord;
use crate::error::{EngineError, Result};
use crate::sinks::Origin;

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
    /// Lines from checkpointed partitions (source, partition) in the epoch
    /// in progress: written as files of their own at the checkpoint.
    epochs: std::collections::BTreeMap<(String, i32), Vec<u8>>,
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
        origin: Option<&Origin>,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut inner = self.lock()?;
        if let Some(origin) = origin {
            let buffer = inner
                .epochs
                .entry((origin.source.clone(), origin.partition))
                .or_default();
            write(buffer).map_err(EngineError::io(format!(
                "buffering {}",
                self.path.display()
            )))?;
            inner.records += records;
            return Ok(());
        }
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
    pub fn write_bad(
        &mut self,
        source: &str,
        origin: Option<&Origin>,
        bad: &[BadRecord],
    ) -> Result<()> {
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
        self.append_json(bad.len() as u64, origin, entries)
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
        self.append_json(count, None, entries)
    }

    /// Appends one JSON object per line, counting `records`.
    fn append_json(
        &self,
        records: u64,
        origin: Option<&Origin>,
        entries: impl Iterator<Item = serde_json::Value>,
    ) -> Result<()> {
        self.append(records, origin, |writer| {
            for entry in entries {
                writeln!(writer, "{entry}")?;
            }
            Ok(())
        })
    }

    /// Appends rows as JSON objects (rows of a checkpointed partition go
    /// with its epoch).
    pub fn write_rows(&mut self, origin: Option<&Origin>, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.append(batch.num_rows() as u64, origin, |writer| {
            let mut json = arrow_json::LineDelimitedWriter::new(writer);
            json.write(batch)
                .and_then(|()| json.finish())
                .map_err(std::io::Error::other)
        })
    }

    /// Where checkpointed partitions' files go: `late.jsonl` →
    /// `late/<source>-p<partition>-e<epoch>.jsonl`.
    fn epoch_dir(&self) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map_or_else(|| "side-output".into(), |s| s.to_os_string());
        self.path.with_file_name(stem)
    }

    fn epoch_name(origin: &Origin) -> String {
        format!(
            "{}-p{}-e{}.jsonl",
            origin.source, origin.partition, origin.epoch
        )
    }

    /// Before `origin`'s checkpoint: writes its epoch's lines to a pending
    /// file (durable, not yet visible to `late/*.jsonl` readers).
    pub fn stage(&self, origin: &Origin) -> Result<Option<StagedFile>> {
        let lines = self
            .lock()?
            .epochs
            .remove(&(origin.source.clone(), origin.partition));
        let Some(lines) = lines.filter(|l| !l.is_empty()) else {
            return Ok(None);
        };
        let dir = self.epoch_dir();
        std::fs::create_dir_all(&dir)
            .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        let name = Self::epoch_name(origin);
        let staged = dir.join(format!(".{name}.pending"));
        let mut file = File::create(&staged)
            .map_err(EngineError::io(format!("creating {}", staged.display())))?;
        file.write_all(&lines)
            .and_then(|()| file.sync_all())
            .map_err(EngineError::io(format!("writing {}", staged.display())))?;
        Ok(Some(StagedFile {
            sink: self.kind(),
            staged: staged.display().to_string(),
            target: dir.join(name).display().to_string(),
        }))
    }

    /// What staged files of this kind of output are listed as: the kind,
    /// not the path, so a worker restarted with other side-output folders
    /// still publishes what a crashed one staged (where it staged it).
    fn kind(&self) -> String {
        let stem = self.epoch_dir();
        let stem = stem.file_name().map_or_else(
            || "side-output".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        format!("side-output:{stem}")
    }

    /// Makes staged files of this kind of output visible (again, after a
    /// crash), at the paths they were staged under.
    pub fn publish(&self, files: &[StagedFile]) -> Result<()> {
        let mine = self.kind();
        for file in files.iter().filter(|f| f.sink == mine) {
            match std::fs::rename(&file.staged, &file.target) {
                Ok(()) => {}
                Err(_) if Path::new(&file.target).exists() => {}
                Err(e) => return Err(EngineError::io(format!("publishing {}", file.staged))(e)),
            }
        }
        Ok(())
    }

    /// Deletes `origin`'s pending files (a crashed attempt's) and forgets
    /// its buffered lines.
    pub fn discard_staged(&self, origin: &Origin) -> Result<()> {
        self.lock()?
            .epochs
            .remove(&(origin.source.clone(), origin.partition));
        let prefix = format!(".{}-p{}-e", origin.source, origin.partition);
        let Ok(entries) = std::fs::read_dir(self.epoch_dir()) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".pending") {
                std::fs::remove_file(entry.path())
                    .map_err(EngineError::io(format!("deleting {name}")))?;
            }
        }
        Ok(())
    }
}
