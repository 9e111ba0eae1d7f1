//! Prometheus metrics: every family's name and labels in one place
//! ([`Metrics`]), and the per-job handle the run loop records through
//! ([`JobMetrics`]).
//!
//! Names follow Prometheus conventions: the `spindle_` prefix, base units
//! (seconds, bytes), `_total` on counters, histograms for durations. Labels
//! are `job`, `source`, `partition` and `sink` only — never a machine id, so
//! the number of series stays bounded by the job's shape, not by the plant.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::error::{EngineError, Result};
use crate::sources::PartitionLag;

/// Micro-batch durations: 1 ms to 30 s.
const BATCH_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Event time to processed: 10 ms to 10 minutes (replays of old data land in +Inf).
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Every metric family Spindle exports, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    records_in: IntCounterVec,
    bytes_in: IntCounterVec,
    dead_letter: IntCounterVec,
    late: IntCounterVec,
    rows_out: IntCounterVec,
    sink_errors: IntCounterVec,
    batch_duration: HistogramVec,
    checkpoint_duration: HistogramVec,
    latency: HistogramVec,
    watermark_lag: GaugeVec,
    consumer_lag: IntGaugeVec,
    open_windows: IntGaugeVec,
    state_bytes: IntGaugeVec,
    running: IntGaugeVec,
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let source = &["job", "source", "partition"];
        let metrics = Self {
            records_in: counter(
                "spindle_source_records_total",
                "Records read from a source partition.",
                source,
            )?,
            bytes_in: counter(
                "spindle_source_bytes_total",
                "Payload bytes read from a source partition.",
                source,
            )?,
            dead_letter: counter(
                "spindle_dead_letter_records_total",
                "Records of a source that could not be decoded.",
                &["job", "source"],
            )?,
            late: counter(
                "spindle_late_rows_total",
                "(Row, window) pairs that arrived after their window closed, by pipeline (its sink).",
                &["job", "sink"],
            )?,
            rows_out: counter(
                "spindle_sink_rows_total",
                "Rows handed to a sink.",
                &["job", "sink"],
            )?,
            sink_errors: counter(
                "spindle_sink_errors_total",
                "Sink writes, flushes or commits that failed (after the sink's own retries).",
                &["job", "sink"],
            )?,
            batch_duration: histogram(
                "spindle_micro_batch_duration_seconds",
                "Time to process one micro-batch: decode, every pipeline, sink writes.",
                BATCH_BUCKETS,
                &["job"],
            )?,
            checkpoint_duration: histogram(
                "spindle_checkpoint_duration_seconds",
                "Time to checkpoint every partition a job owns: stage sink output, write the checkpoints, publish, commit offsets (its _count counts checkpoints).",
                BATCH_BUCKETS,
                &["job"],
            )?,
            latency: histogram(
                "spindle_end_to_end_latency_seconds",
                "Wall-clock time from a micro-batch's newest event time until its rows were handed to the sinks.",
                LATENCY_BUCKETS,
                &["job", "source"],
            )?,
            watermark_lag: GaugeVec::new(
                Opts::new(
                    "spindle_watermark_lag_seconds",
                    "Wall-clock time minus a source's watermark.",
                ),
                &["job", "source"],
            )
            .map_err(registration("spindle_watermark_lag_seconds"))?,
            consumer_lag: gauge(
                "spindle_source_consumer_lag_records",
                "Records of a source partition not yet read (its end as librdkafka reports it minus the next offset to read).",
                &["job", "source", "partition"],
            )?,
            open_windows: gauge(
                "spindle_open_windows",
                "Windows (or sessions) open in a pipeline, by its sink.",
                &["job", "sink"],
            )?,
            state_bytes: gauge(
                "spindle_state_bytes",
                "Approximate bytes of window state in a pipeline, by its sink.",
                &["job", "sink"],
            )?,
            running: gauge(
                "spindle_job_running",
                "1 while the job's run loop is running, else 0.",
                &["job"],
            )?,
            registry,
        };
        metrics.register_all()?;
        Ok(metrics)
    }

    fn register_all(&self) -> Result<()> {
        let collectors: Vec<(&str, Box<dyn prometheus::core::Collector>)> = vec![
            ("records_in", Box::new(self.records_in.clone())),
            ("bytes_in", Box::new(self.bytes_in.clone())),
            ("dead_letter", Box::new(self.dead_letter.clone())),
            ("late", Box::new(self.late.clone())),
            ("rows_out", Box::new(self.rows_out.clone())),
            ("sink_errors", Box::new(self.sink_errors.clone())),
            ("batch_duration", Box::new(self.batch_duration.clone())),
            (
                "checkpoint_duration",
                Box::new(self.checkpoint_duration.clone()),
            ),
            ("latency", Box::new(self.latency.clone())),
            ("watermark_lag", Box::new(self.watermark_lag.clone())),
            ("consumer_lag", Box::new(self.consumer_lag.clone())),
            ("open_windows", Box::new(self.open_windows.clone())),
            ("state_bytes", Box::new(self.state_bytes.clone())),
            ("running", Box::new(self.running.clone())),
        ];
        for (name, collector) in collectors {
            self.registry
                .register(collector)
                .map_err(registration(name))?;
        }
        Ok(())
    }

    /// Every family in the Prometheus text exposition format.
    pub fn encode(&self) -> Result<String> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| EngineError::Internal(format!("encoding metrics: {e}")))?;
        String::from_utf8(out)
            .map_err(|e| EngineError::Internal(format!("encoding metrics: not UTF-8: {e}")))
    }

    /// The handle a job named `job` records through.
    pub fn job(self: &Arc<Self>, job: &str) -> JobMetrics {
        JobMetrics {
            metrics: Some(Arc::clone(self)),
            job: job.to_string(),
            seen: Arc::default(),
            totals: Arc::default(),
            partitions: Arc::default(),
        }
    }
}

/// The text format's content type, for `/metrics` responses.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn registration(name: &str) -> impl FnOnce(prometheus::Error) -> EngineError + '_ {
    move |e| EngineError::Internal(format!("registering metric {name}: {e}"))
}

fn counter(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels).map_err(registration(name))
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels).map_err(registration(name))
}

fn histogram(name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .map_err(registration(name))
}

/// Label values a job has used, so its series can be removed with it.
#[derive(Debug, Default)]
struct Seen {
    partitions: BTreeSet<(String, String)>,
    sources: BTreeSet<String>,
    sinks: BTreeSet<String>,
}

/// Running totals of a job, readable while it runs (the job service shows them).
#[derive(Debug, Default)]
struct Totals {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    bad: AtomicU64,
    late: AtomicU64,
    rows_out: AtomicU64,
    batches: AtomicU64,
    sink_errors: AtomicU64,
}

/// A job's counters so far (across restarts of the same job handle).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounters {
    /// Records read from sources.
    pub records_in: u64,
    /// Payload bytes read from sources.
    pub bytes_in: u64,
    /// Records that could not be decoded.
    pub bad: u64,
    /// Late (row, window) pairs.
    pub late: u64,
    /// Rows handed to sinks.
    pub rows_out: u64,
    /// Micro-batches processed.
    pub batches: u64,
    /// Failed sink operations.
    pub sink_errors: u64,
}

/// One job's view of [`Metrics`]: every family with its `job` label bound.
/// Cheap to clone; clones record into the same series. The default handle
/// belongs to no registry and only keeps the totals ([`JobMetrics::counters`]).
#[derive(Debug, Clone, Default)]
pub struct JobMetrics {
    metrics: Option<Arc<Metrics>>,
    job: String,
    seen: Arc<Mutex<Seen>>,
    totals: Arc<Totals>,
    partitions: Arc<Mutex<std::collections::BTreeMap<(String, i32), PartitionLag>>>,
}

/// One source partition's reading position, for the job service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStatus {
    /// The source table.
    pub source: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read.
    pub next_offset: Option<i64>,
    /// The partition's end (log end offset).
    pub high_watermark: Option<i64>,
    /// Records not yet read.
    pub lag: Option<i64>,
}

impl JobMetrics {
    /// The job label.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// `records` records of `bytes` payload bytes read from `partition` of `source`.
    pub fn record_input(&self, source: &str, partition: i32, records: usize, bytes: usize) {
        self.totals.records_in.fetch_add(records as u64, Relaxed);
        self.totals.bytes_in.fetch_add(bytes as u64, Relaxed);
        let Some(m) = &self.metrics else { return };
        let partition = partition.to_string();
        let labels = [self.job.as_str(), source, partition.as_str()];
        m.records_in
            .with_label_values(&labels)
            .inc_by(records as u64);
        m.bytes_in.with_label_values(&labels).inc_by(bytes as u64);
        self.seen()
            .partitions
            .insert((source.to_string(), partition));
    }

    /// `count` records of `source` that could not be decoded.
    pub fn record_bad(&self, source: &str, count: usize) {
        self.totals.bad.fetch_add(count as u64, Relaxed);
        if let Some(m) = &self.metrics {
            self.for_source(source, &m.dead_letter).inc_by(count as u64);
        }
    }

    /// `count` late (row, window) pairs in the pipeline into `sink`.
    pub fn record_late(&self, sink: &str, count: usize) {
        self.totals.late.fetch_add(count as u64, Relaxed);
        if let Some(m) = &self.metrics {
            self.for_sink(sink, &m.late).inc_by(count as u64);
        }
    }

    /// `count` rows handed to `sink`.
    pub fn record_rows_out(&self, sink: &str, count: usize) {
        self.totals.rows_out.fetch_add(count as u64, Relaxed);
        if let Some(m) = &self.metrics {
            self.for_sink(sink, &m.rows_out).inc_by(count as u64);
        }
    }

    /// One failed write, flush, commit or close of `sink`.
    pub fn record_sink_error(&self, sink: &str) {
        self.totals.sink_errors.fetch_add(1, Relaxed);
        if let Some(m) = &self.metrics {
            self.for_sink(sink, &m.sink_errors).inc();
        }
    }

    /// One micro-batch took `elapsed`.
    pub fn observe_batch(&self, elapsed: Duration) {
        self.totals.batches.fetch_add(1, Relaxed);
        if let Some(m) = &self.metrics {
            m.batch_duration
                .with_label_values(&[self.job.as_str()])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// One checkpoint of the whole job took `elapsed`.
    pub fn observe_checkpoint(&self, elapsed: Duration) {
        if let Some(m) = &self.metrics {
            m.checkpoint_duration
                .with_label_values(&[self.job.as_str()])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Rows of `source` whose event time was `seconds` ago reached the sinks.
    pub fn observe_latency(&self, source: &str, seconds: f64) {
        if let Some(m) = &self.metrics {
            self.for_source(source, &m.latency)
                .observe(seconds.max(0.0));
        }
    }

    /// `source`'s watermark trails the wall clock by `seconds`.
    pub fn set_watermark_lag(&self, source: &str, seconds: f64) {
        if let Some(m) = &self.metrics {
            self.for_source(source, &m.watermark_lag).set(seconds);
        }
    }

    /// The pipeline into `sink` holds `windows` open windows of about `bytes` bytes.
    pub fn set_state(&self, sink: &str, windows: usize, bytes: usize) {
        if let Some(m) = &self.metrics {
            self.for_sink(sink, &m.open_windows).set(windows as i64);
            self.for_sink(sink, &m.state_bytes).set(bytes as i64);
        }
    }

    /// Where `source`'s partitions stand (replaces what was known of them).
    pub fn set_partitions(&self, source: &str, lags: &[PartitionLag]) {
        if let Ok(mut partitions) = self.partitions.lock() {
            partitions.retain(|(s, _), _| s != source);
            for lag in lags {
                partitions.insert((source.to_string(), lag.partition), *lag);
            }
        }
        let Some(m) = &self.metrics else { return };
        for lag in lags {
            if let Some(records) = lag.lag() {
                let partition = lag.partition.to_string();
                self.seen()
                    .partitions
                    .insert((source.to_string(), partition.clone()));
                m.consumer_lag
                    .with_label_values(&[self.job.as_str(), source, partition.as_str()])
                    .set(records);
            }
        }
    }

    /// Every source partition's position, by source and partition.
    pub fn partitions(&self) -> Vec<PartitionStatus> {
        self.partitions
            .lock()
            .map(|p| {
                p.iter()
                    .map(|((source, partition), lag)| PartitionStatus {
                        source: source.clone(),
                        partition: *partition,
                        next_offset: lag.next_offset,
                        high_watermark: lag.high_watermark,
                        lag: lag.lag(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the run loop is running.
    pub fn set_running(&self, running: bool) {
        if let Some(m) = &self.metrics {
            m.running
                .with_label_values(&[self.job.as_str()])
                .set(i64::from(running));
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> JobCounters {
        let t = &self.totals;
        JobCounters {
            records_in: t.records_in.load(Relaxed),
            bytes_in: t.bytes_in.load(Relaxed),
            bad: t.bad.load(Relaxed),
            late: t.late.load(Relaxed),
            rows_out: t.rows_out.load(Relaxed),
            batches: t.batches.load(Relaxed),
            sink_errors: t.sink_errors.load(Relaxed),
        }
    }

    /// Removes every series of this job (when the job is deleted).
    pub fn remove(&self) {
        let Some(m) = &self.metrics else { return };
        let job = self.job.as_str();
        let seen = self.seen();
        // Removing a series that is already gone is not worth reporting.
        for (source, partition) in &seen.partitions {
            let labels = [job, source.as_str(), partition.as_str()];
            let _ = m.records_in.remove_label_values(&labels);
            let _ = m.bytes_in.remove_label_values(&labels);
            let _ = m.consumer_lag.remove_label_values(&labels);
        }
        for source in &seen.sources {
            let labels = [job, source.as_str()];
            let _ = m.dead_letter.remove_label_values(&labels);
            let _ = m.latency.remove_label_values(&labels);
            let _ = m.watermark_lag.remove_label_values(&labels);
        }
        for sink in &seen.sinks {
            let labels = [job, sink.as_str()];
            let _ = m.late.remove_label_values(&labels);
            let _ = m.rows_out.remove_label_values(&labels);
            let _ = m.sink_errors.remove_label_values(&labels);
            let _ = m.open_windows.remove_label_values(&labels);
            let _ = m.state_bytes.remove_label_values(&labels);
        }
        let _ = m.batch_duration.remove_label_values(&[job]);
        let _ = m.checkpoint_duration.remove_label_values(&[job]);
        let _ = m.running.remove_label_values(&[job]);
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn for_source<B: MetricVecBuilder>(&self, source: &str, family: &MetricVec<B>) -> B::M {
        if !self.seen().sources.contains(source) {
            self.seen().sources.insert(source.to_string());
        }
        family.with_label_values(&[self.job.as_str(), source])
    }

    fn for_sink<B: MetricVecBuilder>(&self, sink: &str, family: &MetricVec<B>) -> B::M {
        if !self.seen().sinks.contains(sink) {
            self.seen().sinks.insert(sink.to_string());
        }
        family.with_label_values(&[self.job.as_str(), sink])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn families_follow_the_naming_conventions_and_carry_job_labels() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let job = metrics.job("features");
        job.record_input("sensors", 3, 10, 1000);
        job.record_input("sensors", 3, 5, 500);
        job.record_bad("sensors", 2);
        job.record_late("out", 4);
        job.record_rows_out("out", 7);
        job.record_sink_error("out");
        job.observe_batch(Duration::from_millis(30));
        job.observe_latency("sensors", 0.2);
        job.set_watermark_lag("sensors", 5.5);
        job.set_state("out", 3, 4096);
        job.set_running(true);
        let lag = |next, high| PartitionLag {
            partition: 3,
            next_offset: next,
            high_watermark: high,
        };
        job.set_partitions("sensors", &[lag(Some(90), Some(100))]);
        assert_eq!(job.partitions()[0].lag, Some(10));
        assert!(!lag(Some(100), Some(100)).backlogged());
        assert!(
            lag(Some(100), None).backlogged(),
            "an unknown end may hold records"
        );
        let text = metrics.encode().unwrap();
        let partition = r#"{job="features",partition="3",source="sensors"}"#;
        assert_eq!(
            sample(
                &text,
                &format!("spindle_source_consumer_lag_records{partition}")
            ),
            Some(10.0)
        );
        assert_eq!(
            sample(&text, &format!("spindle_source_records_total{partition}")),
            Some(15.0)
        );
        assert_eq!(
            sample(&text, &format!("spindle_source_bytes_total{partition}")),
            Some(1500.0)
        );
        let source = r#"{job="features",source="sensors"}"#;
        let sink = r#"{job="features",sink="out"}"#;
        for (series, value) in [
            (format!("spindle_dead_letter_records_total{source}"), 2.0),
            (format!("spindle_late_rows_total{sink}"), 4.0),
            (format!("spindle_sink_rows_total{sink}"), 7.0),
            (format!("spindle_sink_errors_total{sink}"), 1.0),
            (format!("spindle_watermark_lag_seconds{source}"), 5.5),
            (format!("spindle_open_windows{sink}"), 3.0),
            (format!("spindle_state_bytes{sink}"), 4096.0),
            (
                format!("spindle_end_to_end_latency_seconds_count{source}"),
                1.0,
            ),
            (
                r#"spindle_micro_batch_duration_seconds_bucket{job="features",le="0.05"}"#
                    .to_string(),
                1.0,
            ),
            (
                r#"spindle_micro_batch_duration_seconds_bucket{job="features",le="0.025"}"#
                    .to_string(),
                0.0,
            ),
            (r#"spindle_job_running{job="features"}"#.to_string(), 1.0),
        ] {
            assert_eq!(sample(&text, &series), Some(value), "{series} in\n{text}");
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("spindle_"), "{line}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
        assert_eq!(
            job.counters(),
            JobCounters {
                records_in: 15,
                bytes_in: 1500,
                bad: 2,
                late: 4,
                rows_out: 7,
                batches: 1,
                sink_errors: 1,
            }
        );
    }

    #[test]
    fn removing_a_job_removes_only_its_series() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let (a, b) = (metrics.job("a"), metrics.job("b"));
        for job in [&a, &b] {
            job.record_input("s", 0, 1, 1);
            job.record_rows_out("k", 1);
            job.set_watermark_lag("s", 1.0);
            job.observe_batch(Duration::from_millis(1));
            job.set_running(true);
        }
        a.remove();
        let text = metrics.encode().unwrap();
        assert!(!text.contains(r#"job="a""#), "{text}");
        assert!(text.contains(r#"spindle_sink_rows_total{job="b",sink="k"} 1"#));
    }

    #[test]
    fn a_detached_handle_keeps_totals_only() {
        let job = JobMetrics::default();
        job.record_input("s", 0, 3, 30);
        job.record_rows_out("k", 2);
        assert_eq!(job.counters().records_in, 3);
        assert_eq!(job.counters().rows_out, 2);
    }
}
