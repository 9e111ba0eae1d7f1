//! Sources: where micro-batches come from. Each source runs its own thread
//! (librdkafka's consumer or the simulator) and hands complete micro-batches
//! to the job over a small bounded channel, so polling overlaps processing
//! and a slow job pushes back on its source.
//!
//! One file per connector: [`kafka`], [`simulator`]. [`sources`] lists them.

pub mod kafka;
pub mod kafka_startup;
pub mod simulator;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spindle_sql::ddl::{Options, TableDef};
use tokio::sync::mpsc;

use crate::checkpoint::store::Latest;
use crate::decode::RawBatch;
use crate::error::{EngineError, Result};

/// Names of the source connectors.
pub fn sources() -> &'static [&'static str] {
    &["kafka", "simulator"]
}

/// How big a micro-batch may grow before it is handed over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLimits {
    /// Records per micro-batch.
    pub max_records: usize,
    /// Payload bytes per micro-batch.
    pub max_bytes: usize,
    /// Longest wait for a micro-batch to fill.
    pub max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 100_000,
            // 1 MiB: replaying 2M readings of 10,000 machines peaked at
            // 280 MiB RSS and 672k readings/s, against 416 MiB and 718k/s at
            // 16 MiB (several batches are alive at once: the channel, the
            // decoder, the plans).
            max_bytes: 1 << 20,
            max_wait: Duration::from_millis(200),
        }
    }
}

impl BatchLimits {
    /// Reads `batch.max-records`, `batch.max-bytes`, `batch.max-wait`.
    pub fn from_options(options: &mut Options) -> spindle_sql::Result<Self> {
        let d = Self::default();
        Ok(Self {
            max_records: options
                .pull_u64("batch.max-records")?
                .map_or(d.max_records, |v| v.max(1) as usize),
            max_bytes: options
                .pull_bytes("batch.max-bytes")?
                .map_or(d.max_bytes, |v| v.max(1) as usize),
            max_wait: options
                .pull_duration("batch.max-wait")?
                .unwrap_or(d.max_wait),
        })
    }
}

/// How far a source partition has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The next offset to read (`None`: nothing read and no start known).
    pub next_offset: Option<i64>,
    /// The partition's end as librdkafka last reported it.
    pub high_watermark: Option<i64>,
}

impl PartitionLag {
    /// Records not yet read (`None` when the end or the position is unknown).
    pub fn lag(&self) -> Option<i64> {
        Some((self.high_watermark? - self.next_offset?).max(0))
    }

    /// Whether records may be waiting (unknown counts as yes).
    pub fn backlogged(&self) -> bool {
        self.lag().is_none_or(|lag| lag > 0)
    }
}

/// What a source thread reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// One micro-batch: one [`RawBatch`] per partition that had records.
    Batch(Vec<RawBatch>),
    /// The partitions this worker now reads, with what the checkpoint store
    /// holds for those newly assigned (Kafka sources with checkpoints): the
    /// source already reads them from the checkpoint's offset.
    Assigned(Vec<i32>, BTreeMap<i32, Latest>),
    /// Kafka is taking these partitions away. The job checkpoints them,
    /// drops their state and answers on the channel; the source waits for
    /// the answer before letting the group move on, so the next owner finds
    /// the checkpoint.
    Revoking(Vec<i32>, std_mpsc::SyncSender<()>),
    /// Where each assigned partition's reading stands (sent when the set
    /// of partitions with unread records changes, and every second): those
    /// must not count as idle however slowly their records arrive.
    Backlog(Vec<PartitionLag>),
    /// Every partition is read up to its end (for `--until-idle`).
    CaughtUp,
    /// The source failed and stopped.
    Failed(EngineError),
}

/// A running source thread and the channel it reports on.
#[derive(Debug)]
pub struct SourceHandle {
    /// The source table's name.
    pub name: String,
    events: mpsc::Receiver<SourceEvent>,
    commits: std_mpsc::Sender<Vec<(i32, i64)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Offsets per partition (the next offset to read) the job asks to commit.
type Commits = Vec<(i32, i64)>;

/// What a source thread gets: the channel to report on and the stop flag.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Reports go here; a full channel blocks the source (backpressure).
    pub events: mpsc::Sender<SourceEvent>,
    /// Set when the job stops.
    pub stop: Arc<AtomicBool>,
    /// Micro-batch bounds.
    pub limits: BatchLimits,
    commits: Arc<Mutex<std_mpsc::Receiver<Commits>>>,
}

impl SourceContext {
    /// Whether the job asked the source to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sends an event; false when the job has gone away.
    pub fn send(&self, event: SourceEvent) -> bool {
        self.events.blocking_send(event).is_ok()
    }

    /// Offsets the job asked to commit since the last call, the latest per
    /// partition (sources without offsets ignore them).
    pub fn take_commits(&self) -> Commits {
        let mut latest = std::collections::BTreeMap::new();
        if let Ok(receiver) = self.commits.lock() {
            for offsets in receiver.try_iter() {
                latest.extend(offsets);
            }
        }
        latest.into_iter().collect()
    }
}

impl SourceHandle {
    /// Starts `run` on its own thread.
    pub fn spawn(
        name: &str,
        limits: BatchLimits,
        run: impl FnOnce(SourceContext) + Send + 'static,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel(2);
        let (commits, commit_rx) = std_mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let context = SourceContext {
            events: tx,
            stop: Arc::clone(&stop),
            limits,
            commits: Arc::new(Mutex::new(commit_rx)),
        };
        let thread = std::thread::Builder::new()
            .name(format!("source-{name}"))
            .spawn(move || run(context))
            .map_err(EngineError::io(format!(
                "starting source thread for {name}"
            )))?;
        Ok(Self {
            name: name.to_string(),
            events: rx,
            commits,
            stop,
            thread: Some(thread),
        })
    }

    /// The next event, or `None` after `timeout` (or when the thread ended).
    pub async fn next(&mut self, timeout: Duration) -> Option<SourceEvent> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Asks the source to commit `offsets` (partition, next offset to read)
    /// to its consumer group; it does so on its own thread, and once more
    /// before it stops.
    pub fn commit(&self, offsets: Commits) {
        if !offsets.is_empty() {
            let _ = self.commits.send(offsets);
        }
    }

    /// Asks the thread to stop and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.events.close();
        while self.events.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Collects records into per-partition [`RawBatch`]es until a limit is hit.
#[derive(Debug)]
pub struct BatchBuilder {
    limits: BatchLimits,
    batches: Vec<RawBatch>,
    records: usize,
    bytes: usize,
    started: Option<Instant>,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new(limits: BatchLimits) -> Self {
        Self {
            limits,
            batches: Vec::new(),
            records: 0,
            bytes: 0,
            started: None,
        }
    }

    /// Adds a record of `partition` at `offset`.
    pub fn push(&mut self, partition: i32, offset: i64, payload: &[u8]) {
        self.started.get_or_insert_with(Instant::now);
        let index = match self.batches.iter().position(|b| b.partition == partition) {
            Some(i) => i,
            None => {
                self.batches.push(RawBatch::new(partition));
                self.batches.len() - 1
            }
        };
        self.batches[index].push(offset, payload);
        self.records += 1;
        self.bytes += payload.len();
    }

    /// Whether a size limit is reached, or the wait since the first record.
    pub fn is_full(&self) -> bool {
        self.is_full_at(Instant::now())
    }

    /// As [`Self::is_full`] with the time already read (one clock read per
    /// record is a measurable share of a fast source).
    pub fn is_full_at(&self, now: Instant) -> bool {
        self.records >= self.limits.max_records
            || self.bytes >= self.limits.max_bytes
            || self
                .started
                .is_some_and(|s| now.saturating_duration_since(s) >= self.limits.max_wait)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Drops the records of partitions not in `partitions` (revoked: the
    /// next owner reads them again from the checkpoint).
    pub fn retain(&mut self, partitions: &[i32]) {
        self.batches.retain(|b| partitions.contains(&b.partition));
        self.records = self.batches.iter().map(|b| b.len()).sum();
        self.bytes = self.batches.iter().map(|b| b.data.len()).sum();
        if self.records == 0 {
            self.started = None;
        }
    }

    /// Takes the batches, leaving the builder empty.
    pub fn take(&mut self) -> Vec<RawBatch> {
        self.records = 0;
        self.bytes = 0;
        self.started = None;
        std::mem::take(&mut self.batches)
    }
}

/// Finds a partition's checkpoints when Kafka assigns it; called on the
/// source thread, inside librdkafka's rebalance callback.
pub type CheckpointLookup = Arc<dyn Fn(i32) -> Result<Latest> + Send + Sync>;

/// A source ready to start (with checkpoints to resume from, for sources
/// that can seek).
pub type SourceStarter = Box<dyn FnOnce(Option<CheckpointLookup>) -> Result<SourceHandle> + Send>;

/// Reads the options of `table`'s source (whose `'connector'` and
/// `'format'` were pulled already) and returns how to start it.
pub fn prepare(
    connector: &str,
    format: crate::decode::Format,
    table: &TableDef,
    options: &mut Options,
) -> spindle_sql::Result<SourceStarter> {
    let limits = BatchLimits::from_options(options)?;
    let name = table.name.clone();
    match connector {
        "kafka" => {
            let config = kafka::KafkaSourceConfig::from_options(options)?;
            Ok(Box::new(move |lookup| {
                SourceHandle::spawn(&name, limits, move |cx| kafka::run(config, cx, lookup))
            }))
        }
        "simulator" => {
            let config = simulator::SimulatorSourceConfig::from_options(options, format.into())?;
            // The simulator cannot seek: its jobs are not checkpointed.
            Ok(Box::new(move |_| {
                SourceHandle::spawn(&name, limits, move |cx| simulator::run(config, cx))
            }))
        }
        other => Err(options.error_at(
            "connector",
            &format!(
                "unknown source connector {other:?}; expected one of {}",
                sources().join(", ")
            ),
            options.table_location(),
        )),
    }
}
