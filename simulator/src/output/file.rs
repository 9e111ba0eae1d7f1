//! File and standard-output destinations.
//!
//! A regular file is written under `NAME.partial` and renamed to `NAME` only
//! when the run ends cleanly, so a reader never sees half a file. Anything
//! else that already exists at the path (`/dev/null`, a named pipe) is
//! written directly: renaming onto a device would replace it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{DeliveryReport, Output};
use crate::error::{Result, SimError};

/// Writes records to a file, made visible on finish.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    /// Where bytes go: `NAME.partial`, or the path itself when it is not a
    /// regular file.
    partial: PathBuf,
    writer: BufWriter<File>,
    records: u64,
}

impl FileOutput {
    /// Starts writing `path` (through `path.partial`).
    pub fn create(path: &Path) -> Result<Self> {
        let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
        let partial = if special {
            path.to_path_buf()
        } else {
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            PathBuf::from(partial)
        };
        let file = File::create(&partial)
            .map_err(|e| SimError::io(format!("creating {}", partial.display()), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            writer: BufWriter::with_capacity(1 << 20, file),
            records: 0,
        })
    }
}

impl Output for FileOutput {
    fn send(&mut self, _key: &str, payload: &[u8], _ts_ms: i64) -> Result<()> {
        self.records += 1;
        self.writer
            .write_all(payload)
            .map_err(|e| SimError::io(format!("writing {}", self.partial.display()), e))
    }

    fn finish(self: Box<Self>) -> Result<DeliveryReport> {
        let context = format!("finishing {}", self.path.display());
        let file = self
            .writer
            .into_inner()
            .map_err(|e| SimError::io(context.clone(), e.into_error()))?;
        if self.partial != self.path {
            file.sync_all()
                .map_err(|e| SimError::io(context.clone(), e))?;
            std::fs::rename(&self.partial, &self.path).map_err(|e| SimError::io(context, e))?;
        }
        Ok(DeliveryReport {
            delivered: self.records,
            ..DeliveryReport::default()
        })
    }
}

/// Writes records to standard output.
#[derive(Debug)]
pub struct StdoutOutput {
    writer: BufWriter<std::io::Stdout>,
    records: u64,
}

impl Default for StdoutOutput {
    fn default() -> Self {
        Self {
            writer: BufWriter::with_capacity(1 << 16, std::io::stdout()),
            records: 0,
        }
    }
}

impl Output for StdoutOutput {
    fn send(&mut self, _key: &str, payload: &[u8], _ts_ms: i64) -> Result<()> {
        self.records += 1;
        self.writer
            .write_all(payload)
            .map_err(|e| SimError::io("writing standard output", e))
    }

    fn finish(mut self: Box<Self>) -> Result<DeliveryReport> {
        self.writer
            .flush()
            .map_err(|e| SimError::io("flushing standard output", e))?;
        Ok(DeliveryReport {
            delivered: self.records,
            ..DeliveryReport::default()
        })
    }
}
