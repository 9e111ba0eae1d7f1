//! `scan.startup.mode` with Flink's meaning: `earliest-offset` and
//! `latest-offset` start every partition there the first time this job
//! process is assigned it, whatever the group committed; `group-offsets`
//! resumes from the group's committed offsets (a partition without one
//! starts at the earliest). Partitions that come back in a later rebalance
//! resume from committed offsets in every mode, so a rebalance never replays
//! or skips.
//!
//! librdkafka assigns partitions in the rebalance callback; this context
//! resolves every assigned partition's starting offset to a number (the
//! committed offset, or the partition's low or high watermark) before handing
//! the assignment over, and remembers it: a partition that delivers nothing
//! is caught up when its start is its end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::{CheckpointLookup, SourceEvent};
use crate::checkpoint::store::Latest;
use crate::error::EngineError;

/// How long a revoked partition's hand-over (the job's checkpoint of it)
/// may hold up a rebalance before the source lets go anyway (the next owner
/// then resumes from the previous checkpoint: replayed, not lost).
const HAND_OVER_TIMEOUT: Duration = Duration::from_secs(120);

/// What the rebalance callback needs for checkpointed jobs.
pub struct Checkpointing {
    /// Finds a newly assigned partition's checkpoints.
    pub lookup: CheckpointLookup,
    /// Where the job hears about revocations.
    pub events: tokio::sync::mpsc::Sender<SourceEvent>,
    /// The job's stop flag (a stopping job answers no hand-over).
    pub stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Checkpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointing").finish_non_exhaustive()
    }
}

/// Where a partition starts the first time the job reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// The partition's first retained record.
    Earliest,
    /// Only records produced from now on.
    Latest,
    /// The group's committed offset (earliest without one).
    GroupOffsets,
}

impl StartupMode {
    /// Parses a `scan.startup.mode` value.
    pub fn parse(mode: &str) -> Result<Self, String> {
        match mode {
            "earliest-offset" => Ok(Self::Earliest),
            "latest-offset" => Ok(Self::Latest),
            "group-offsets" => Ok(Self::GroupOffsets),
            other => Err(format!(
                "unknown mode {other:?}; expected earliest-offset, latest-offset or group-offsets"
            )),
        }
    }

    /// librdkafka's `auto.offset.reset` for partitions without a usable offset.
    pub fn offset_reset(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Earliest | Self::GroupOffsets => "earliest",
        }
    }
}

/// Broker round trips inside a rebalance wait at most this long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer's context: applies the startup mode on first assignment.
#[derive(Debug)]
pub struct StartupContext {
    mode: StartupMode,
    started: Mutex<BTreeSet<(String, i32)>>,
    starts: Mutex<BTreeMap<i32, i64>>,
    assigned: Mutex<BTreeSet<i32>>,
    /// Each partition's high watermark from librdkafka's periodic statistics
    /// (`statistics.interval.ms`): what the fetch responses reported, so the
    /// caught-up check needs no broker round trip.
    high_watermarks: Mutex<BTreeMap<i32, i64>>,
    /// Whether each partition's leader was connected in the latest
    /// statistics: a high watermark is only news while it is (a broker that
    /// went away leaves its last one behind).
    leader_up: Mutex<BTreeMap<i32, bool>>,
    /// Counts the answers to offset commits (served by `poll`).
    commits_answered: AtomicU64,
    /// Bumped on every change of `assigned`: the poll loop checks it per
    /// record without asking librdkafka (whose `assignment()` is a round
    /// trip to its main thread).
    generation: AtomicU64,
    checkpointing: Option<Checkpointing>,
    /// Checkpoints found for partitions assigned since the poll loop last
    /// asked, and the first error looking them up.
    restored: Mutex<BTreeMap<i32, Latest>>,
    failure: Mutex<Option<EngineError>>,
}

impl StartupContext {
    /// A context for `mode` that resumes partitions from their checkpoints
    /// and hands revoked ones over to the job before letting them go.
    pub fn with_checkpoints(mode: StartupMode, checkpointing: Option<Checkpointing>) -> Self {
        Self {
            checkpointing,
            ..Self::new(mode)
        }
    }

    /// Checkpoints looked up since the last call.
    pub fn take_restored(&self) -> BTreeMap<i32, Latest> {
        self.restored
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// The first failure to look up a checkpoint, if any.
    pub fn take_failure(&self) -> Option<EngineError> {
        self.failure.lock().ok()?.take()
    }

    /// A checkpoint's offset for `partition`, remembering what was found.
    fn checkpoint_start(&self, partition: i32) -> Option<i64> {
        let checkpointing = self.checkpointing.as_ref()?;
        match (checkpointing.lookup)(partition) {
            Ok(latest) => {
                let start = latest.checkpoint.as_ref().map(|c| c.next_offset);
                if let Ok(mut restored) = self.restored.lock() {
                    restored.insert(partition, latest);
                }
                start
            }
            Err(error) => {
                if let Ok(mut failure) = self.failure.lock() {
                    failure.get_or_insert(error);
                }
                None
            }
        }
    }

    /// Lets the job checkpoint and drop `tpl`'s partitions, waiting for it.
    fn hand_over(&self, tpl: &TopicPartitionList) {
        let Some(checkpointing) = self.checkpointing.as_ref() else {
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        if partitions.is_empty() || checkpointing.stop.load(Ordering::Relaxed) {
            return;
        }
        let (done, answered) = std_mpsc::sync_channel(1);
        if checkpointing
            .events
            .blocking_send(SourceEvent::Revoking(partitions.clone(), done))
            .is_err()
        {
            return;
        }
        let asked = Instant::now();
        loop {
            match answered.recv_timeout(Duration::from_millis(100)) {
                Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
            if checkpointing.stop.load(Ordering::Relaxed) || asked.elapsed() > HAND_OVER_TIMEOUT {
                tracing::warn!(
                    ?partitions,
                    "revoked partitions were not checkpointed in time; the next owner \
                     resumes from their previous checkpoint"
                );
                return;
            }
        }
    }

    /// A context for `mode`.
    pub fn new(mode: StartupMode) -> Self {
        Self {
            mode,
            started: Mutex::new(BTreeSet::new()),
            starts: Mutex::new(BTreeMap::new()),
            assigned: Mutex::new(BTreeSet::new()),
            high_watermarks: Mutex::new(BTreeMap::new()),
            leader_up: Mutex::new(BTreeMap::new()),
            commits_answered: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            checkpointing: None,
            restored: Mutex::new(BTreeMap::new()),
            failure: Mutex::new(None),
        }
    }

    /// The latest high watermark librdkafka reported for `partition`.
    pub fn high_watermark(&self, partition: i32) -> Option<i64> {
        self.high_watermarks.lock().ok()?.get(&partition).copied()
    }

    /// Whether `partition`'s leader was connected in the latest statistics
    /// (`None` before the first).
    pub fn leader_up(&self, partition: i32) -> Option<bool> {
        self.leader_up.lock().ok()?.get(&partition).copied()
    }

    /// How many offset commits have been answered (either way) so far.
    pub fn commits_answered(&self) -> u64 {
        self.commits_answered.load(Ordering::Acquire)
    }

    /// Changes whenever the assignment changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The partitions assigned now, sorted.
    pub fn assigned(&self) -> Vec<i32> {
        self.assigned
            .lock()
            .map(|a| a.iter().copied().collect())
            .unwrap_or_default()
    }

    fn track(&self, tpl: &TopicPartitionList, assign: bool, all: bool) {
        if let Ok(mut assigned) = self.assigned.lock() {
            if all {
                assigned.clear();
            }
            for e in tpl.elements() {
                if assign {
                    assigned.insert(e.partition());
                } else {
                    assigned.remove(&e.partition());
                }
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The offset `partition` started reading at in its latest assignment.
    pub fn start_offset(&self, partition: i32) -> Option<i64> {
        self.starts.lock().ok()?.get(&partition).copied()
    }

    /// Sets every assigned partition's first offset to a number.
    fn apply_startup(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let committed = consumer.committed_offsets(tpl.clone(), LOOKUP_TIMEOUT).ok();
        let (Ok(mut started), Ok(mut starts)) = (self.started.lock(), self.starts.lock()) else {
            return;
        };
        let assigned: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        for (topic, partition) in assigned {
            let first_time = started.insert((topic.clone(), partition));
            let group_offset = committed
                .as_ref()
                .and_then(|c| c.find_partition(&topic, partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let from_group = !first_time || self.mode == StartupMode::GroupOffsets;
            // A checkpoint decides over the group's commits and the mode:
            // its state covers exactly the records before its offset.
            let start = match (self.checkpoint_start(partition), from_group, group_offset) {
                (Some(offset), _, _) => Some(offset),
                (None, true, Some(offset)) => Some(offset),
                _ => watermark_start(consumer, &topic, partition, self.mode),
            };
            let Some(start) = start else { continue };
            match tpl.set_partition_offset(&topic, partition, Offset::Offset(start)) {
                Ok(()) => {
                    starts.insert(partition, start);
                }
                Err(error) => {
                    tracing::warn!(%topic, partition, %error, "cannot set the startup offset");
                }
            }
        }
    }
}

/// The partition's low (earliest) or high (latest) watermark; `None` when
/// the broker does not answer (librdkafka's `auto.offset.reset` decides).
fn watermark_start(
    consumer: &BaseConsumer<StartupContext>,
    topic: &str,
    partition: i32,
    mode: StartupMode,
) -> Option<i64> {
    match consumer.fetch_watermarks(topic, partition, LOOKUP_TIMEOUT) {
        Ok((low, high)) => Some(if mode == StartupMode::Latest {
            high
        } else {
            low
        }),
        Err(error) => {
            tracing::warn!(topic, partition, %error, "cannot look up the partition's offsets");
            None
        }
    }
}

impl ClientContext for StartupContext {
    fn stats(&self, statistics: Statistics) {
        let (Ok(mut highs), Ok(mut leader_up)) =
            (self.high_watermarks.lock(), self.leader_up.lock())
        else {
            return;
        };
        let up: BTreeSet<i32> = statistics
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0 && b.state == "UP")
            .map(|b| b.nodeid)
            .collect();
        for topic in statistics.topics.values() {
            for (partition, p) in &topic.partitions {
                if *partition < 0 {
                    continue;
                }
                if p.hi_offset >= 0 {
                    highs.insert(*partition, p.hi_offset);
                }
                leader_up.insert(*partition, up.contains(&p.leader));
            }
        }
    }
}

impl ConsumerContext for StartupContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(%error, "committing offsets failed; the next commit covers them");
        }
        self.commits_answered.fetch_add(1, Ordering::AcqRel);
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result: KafkaResult<()> = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.apply_startup(consumer, tpl);
                self.track(tpl, true, !cooperative);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if cooperative => {
                self.hand_over(tpl);
                self.track(tpl, false, false);
                consumer.incremental_unassign(tpl)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.hand_over(tpl);
                self.track(&TopicPartitionList::new(), false, true);
                consumer.unassign()
            }
            other => {
                tracing::error!(?other, "kafka rebalance error");
                self.track(&TopicPartitionList::new(), false, true);
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, "applying a kafka rebalance failed");
        }
    }
}
