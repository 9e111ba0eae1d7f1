//! What a run counts and reports: the summary it returns, the metrics it
//! exports on the way, and the periodic gauges (watermark lag, state).

use std::time::{Duration, Instant, SystemTime};

use arrow::datatypes::TimeUnit;

use super::Job;
use crate::decode::RawBatch;
use crate::error::Result;
use crate::metrics::JobMetrics;

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records read from sources.
    pub records_in: u64,
    /// Records that could not be decoded.
    pub bad: u64,
    /// (Row, window) pairs that arrived after their window closed.
    pub late: u64,
    /// Rows written to sinks.
    pub rows_out: u64,
    /// Micro-batches processed.
    pub batches: u64,
}

/// How a run ends, and where it reports.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop when every source is caught up and idle, flushing all windows.
    pub until_idle: bool,
    /// Where counters, latencies and gauges go (by default: totals only).
    pub metrics: JobMetrics,
}

/// How often watermark lag and window state are reported.
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The run's counters: the summary it returns, and the metrics it exports.
pub(super) struct Tally<'a> {
    pub(super) summary: RunSummary,
    pub(super) metrics: &'a JobMetrics,
}

impl Tally<'_> {
    pub(super) fn input(&mut self, source: &str, raw: &RawBatch) {
        self.summary.records_in += raw.len() as u64;
        // Payload bytes: the data holds a newline after each record.
        let bytes = raw.data.len().saturating_sub(raw.len());
        self.metrics
            .record_input(source, raw.partition, raw.len(), bytes);
    }

    pub(super) fn bad(&mut self, source: &str, count: usize) {
        self.summary.bad += count as u64;
        self.metrics.record_bad(source, count);
    }

    pub(super) fn late(&mut self, sink: &str, count: usize) {
        self.summary.late += count as u64;
        self.metrics.record_late(sink, count);
    }

    pub(super) fn rows_out(&mut self, sink: &str, count: usize) {
        self.summary.rows_out += count as u64;
        self.metrics.record_rows_out(sink, count);
    }
}

/// Counts a failed sink operation before passing the error on.
pub(super) fn sink_result<T>(metrics: &JobMetrics, sink: &str, result: Result<T>) -> Result<T> {
    if result.is_err() {
        metrics.record_sink_error(sink);
    }
    result
}

/// Seconds since the Unix epoch, by the wall clock.
pub(super) fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The wall clock in milliseconds since the epoch.
pub(super) fn wall_clock_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An event time in `unit` as seconds since the epoch.
pub(super) fn event_seconds(value: i64, unit: TimeUnit) -> f64 {
    let per_second = match unit {
        TimeUnit::Second => 1.0,
        TimeUnit::Millisecond => 1e3,
        TimeUnit::Microsecond => 1e6,
        TimeUnit::Nanosecond => 1e9,
    };
    value as f64 / per_second
}

/// Watermark lag per source and window state per pipeline, as gauges.
pub(super) fn report_progress(job: &mut Job, metrics: &JobMetrics) {
    let now = Instant::now();
    let wall = wall_clock();
    for source in &mut job.sources {
        let Some((_, unit)) = source.event_time else {
            continue;
        };
        let watermark = source.watermark.watermark(now);
        if watermark != i64::MIN && watermark != i64::MAX {
            metrics.set_watermark_lag(&source.name, wall - event_seconds(watermark, unit));
        }
    }
    for pipeline in &job.pipelines {
        let (windows, bytes) = pipeline.state();
        metrics.set_state(&pipeline.sink, windows, bytes);
    }
}
