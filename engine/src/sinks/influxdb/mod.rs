//! `'connector' = 'influxdb'`: rows as line protocol over HTTP to InfluxDB
//! 1.x (`'api' = 'v1'`), 2.x (`v2`) or 3 (`v3`, the default).
//!
//! - [`options`]: the `WITH (…)` options and their defaults;
//! - [`encode`] and [`escape`]: Arrow rows → lines, per the target's parser;
//! - [`request`]: each API's URL, headers, gzip body;
//! - [`writer`], [`retry`], [`refusal`]: sending with bounded concurrency,
//!   retries, splitting on 413, refused lines to the dead-letter output.
//!
//! Lines collect into a batch until `'batch.max-lines'`, `'batch.max-bytes'`
//! or `'batch.interval'`; a full set of requests in flight makes `write`
//! wait, so an unreachable server slows the job down instead of filling
//! memory. `flush` (every `spindle.sink.flush_interval`) only sends a batch
//! whose interval has passed: requests stay under way while the job reads
//! on. `commit` (and the checkpoint's `stage`, and `close`) waits until every
//! accepted line is written or dead-lettered: the job commits source offsets
//! only after that.

mod encode;
mod escape;
mod lines;
mod options;
mod refusal;
mod request;
mod retry;
mod writer;

#[cfg(test)]
mod http_tests;

use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use spindle_sql::ddl::{Options, TableDef};

pub use self::options::OPTIONS;

use self::encode::{EncodeStats, LineEncoder};
use self::lines::Lines;
use self::options::BatchLimits;
use self::writer::Writer;
use super::{Sink, SinkContext};
use crate::error::{EngineError, Result};
use crate::side_output::SideOutput;

/// Rows encoded per step, so a large batch is cut into requests of about
/// `'batch.max-lines'` / `'batch.max-bytes'`.
const ROWS_PER_STEP: usize = 1_000;

/// Writes a table's rows to InfluxDB.
#[derive(Debug)]
pub struct InfluxDbSink {
    name: String,
    encoder: LineEncoder,
    limits: BatchLimits,
    pending: Lines,
    writer: Writer,
    stats: EncodeStats,
    dead_letter: SideOutput,
}

impl InfluxDbSink {
    /// Reads and checks the options; nothing is sent until rows arrive.
    pub fn open(table: &TableDef, options: &mut Options, context: &SinkContext) -> Result<Self> {
        let settings = options::parse(table, options)?;
        let encoder = LineEncoder::new(settings.layout.clone())
            .map_err(|why| EngineError::Internal(format!("influxdb sink {}: {why}", table.name)))?;
        Ok(Self {
            name: table.name.clone(),
            encoder,
            limits: settings.limits,
            pending: Lines::default(),
            writer: Writer::new(&table.name, &settings, context.dead_letter.clone())?,
            stats: EncodeStats::default(),
            dead_letter: context.dead_letter.clone(),
        })
    }

    fn full(&self) -> bool {
        self.pending.len() >= self.limits.max_lines
            || self.pending.body.len() >= self.limits.max_bytes
    }

    fn due(&self) -> bool {
        self.pending
            .since
            .is_some_and(|since| since.elapsed() >= self.limits.interval)
    }

    /// Hands the pending lines to the writer (waiting for room in flight).
    async fn send_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending);
        self.writer.submit(lines).await
    }

    fn summary(&self) -> String {
        let c = self.writer.counters();
        let s = &self.stats;
        format!(
            "influxdb sink {}: {} rows → {} lines; written {}, refused {} (dead-letter), \
             {} requests ({} retried, {} split, {} bytes sent); \
             not sent: {} rows without fields, {} without measurement or time, {} unrepresentable; \
             fields skipped: {} null, {} NaN/±Inf",
            self.name,
            s.rows,
            s.lines,
            c.written.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.requests.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
            c.splits.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
            s.rows_without_fields,
            s.rows_without_measurement_or_time,
            s.rows_unrepresentable,
            s.null_fields,
            s.non_finite_fields,
        )
    }
}

#[async_trait]
impl Sink for InfluxDbSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = self.limits.max_lines.saturating_sub(self.pending.len());
            let rows = room.clamp(1, ROWS_PER_STEP).min(batch.num_rows() - offset);
            let part = batch.slice(offset, rows);
            offset += rows;
            let rejected = self
                .encoder
                .encode(&part, &mut self.pending, &mut self.stats)?;
            self.dead_letter.write_rejected(&self.name, &rejected)?;
            if self.full() {
                self.send_pending().await?;
            }
        }
        if self.due() {
            self.send_pending().await?;
        }
        Ok(())
    }

    /// Sends the pending lines once `'batch.interval'` has passed; does not
    /// wait for requests under way. Waiting here, every 100 ms by default,
    /// emptied the pipeline each time: the server idled while the job read
    /// the next lines (measured in docs/BENCHMARKS.md, section influxdb).
    async fn flush(&mut self) -> Result<()> {
        if self.due() {
            self.send_pending().await?;
        }
        self.writer.reap()
    }

    /// Sends everything pending and waits until every accepted line is
    /// written or dead-lettered.
    async fn commit(&mut self) -> Result<()> {
        self.send_pending().await?;
        self.writer.drain().await
    }

    async fn close(&mut self) -> Result<()> {
        let result = self.commit().await;
        tracing::info!("{}", self.summary());
        result
    }
}
