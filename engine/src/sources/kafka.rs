//! `'connector' = 'kafka'`: a consumer-group member reading one topic.
//!
//! librdkafka's `BaseConsumer` runs on the source thread and fills
//! micro-batches (bounded by records, bytes and wait), copying payloads
//! straight into the batch's contiguous buffer. Offsets are committed when
//! the job says so (once the rows before them are in durable output; see
//! `job/offsets.rs`), asynchronously; the last one, when the source stops, is
//! waited for up to 10 s, and so is the consumer's leaving the group (a
//! broker outage must not keep the job from exiting).
//!
//! Options: `topic` (required), `properties.bootstrap.servers` (required),
//! `properties.group.id` (required), `scan.startup.mode` =
//! `earliest-offset` | `latest-offset` | `group-offsets` (default; see
//! `kafka_startup.rs`), and any other `properties.*` passed to librdkafka as
//! is (SASL, TLS, fetch sizes).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use spindle_sql::ddl::Options;

use super::kafka_startup::{Checkpointing, StartupContext, StartupMode};
use super::{BatchBuilder, CheckpointLookup, PartitionLag, SourceContext, SourceEvent};

type Consumer = BaseConsumer<StartupContext>;
use crate::error::EngineError;

/// How the consumer is configured, read from the table's options.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    topic: String,
    startup: StartupMode,
    properties: Vec<(String, String)>,
}

impl KafkaSourceConfig {
    /// Pulls the Kafka source options.
    pub fn from_options(options: &mut Options) -> spindle_sql::Result<Self> {
        let topic = options.pull_required("topic")?;
        let startup = options
            .pull_parsed("scan.startup.mode", StartupMode::parse)?
            .unwrap_or(StartupMode::GroupOffsets);
        if options.peek("properties.bootstrap.servers").is_none() {
            options.pull_required("properties.bootstrap.servers")?;
        }
        if options.peek("properties.group.id").is_none() {
            options.pull_required("properties.group.id")?;
        }
        let mut properties = vec![
            (
                "auto.offset.reset".to_string(),
                startup.offset_reset().to_string(),
            ),
            ("enable.auto.commit".to_string(), "false".to_string()),
            ("enable.auto.offset.store".to_string(), "false".to_string()),
            ("enable.partition.eof".to_string(), "false".to_string()),
            ("fetch.min.bytes".to_string(), "1".to_string()),
            // librdkafka's default (1 s) stops a partition's fetching for a
            // whole second whenever its local queue is full: measured, it
            // held a replay to 115–137k readings/s against 171–181k at 10 ms.
            ("fetch.queue.backoff.ms".to_string(), "10".to_string()),
            // Per-partition high watermarks for the caught-up check (see
            // kafka_startup.rs), without a broker round trip per partition.
            ("statistics.interval.ms".to_string(), "200".to_string()),
            // Pre-fetched messages held by librdkafka (default 64 MiB): with
            // the 10 ms backoff above, 16 MiB keeps the source fed.
            (
                "queued.max.messages.kbytes".to_string(),
                "16384".to_string(),
            ),
        ];
        properties.extend(options.pull_prefixed("properties."));
        Ok(Self {
            topic,
            startup,
            properties,
        })
    }
}

/// The source thread; with `lookup`, partitions resume from their
/// checkpoints and revoked ones are handed over to the job first.
pub fn run(config: KafkaSourceConfig, cx: SourceContext, lookup: Option<CheckpointLookup>) {
    if let Err(error) = consume(&config, &cx, lookup) {
        cx.send(SourceEvent::Failed(error));
    }
}

fn consume(
    config: &KafkaSourceConfig,
    cx: &SourceContext,
    lookup: Option<CheckpointLookup>,
) -> Result<(), EngineError> {
    let mut client = ClientConfig::new();
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    let consumer: Consumer = client
        .create_with_context(StartupContext::with_checkpoints(
            config.startup,
            lookup.map(|lookup| Checkpointing {
                lookup,
                events: cx.events.clone(),
                stop: std::sync::Arc::clone(&cx.stop),
            }),
        ))
        .map_err(EngineError::kafka(format!(
            "creating a consumer for {}",
            config.topic
        )))?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(EngineError::kafka(format!(
            "subscribing to {}",
            config.topic
        )))?;
    let read = read_until_stopped(config, cx, &consumer);
    if read.is_ok() {
        final_commit(&consumer, &config.topic, &cx.take_commits());
    }
    close_within(consumer, &config.topic, CLOSE_TIMEOUT);
    read
}

/// The poll loop: micro-batches, assignments and progress go to the job
/// until it stops or stops listening.
fn read_until_stopped(
    config: &KafkaSourceConfig,
    cx: &SourceContext,
    consumer: &Consumer,
) -> Result<(), EngineError> {
    let mut builder = BatchBuilder::new(cx.limits);
    let mut tracker = Progress::default();
    let mut assigned: Vec<i32> = Vec::new();
    let mut generation = consumer.context().generation();
    while !cx.stopped() {
        if builder.is_empty() {
            // Between micro-batches, not per record: the job's commit
            // requests come at most every commit interval.
            commit(consumer, &config.topic, &cx.take_commits());
        }
        let poll_wait = if builder.is_empty() {
            cx.limits.max_wait
        } else {
            Duration::from_millis(5)
        };
        let polled = consumer.poll(poll_wait);
        let now = Instant::now();
        match polled {
            Some(Ok(message)) => {
                let partition = message.partition();
                tracker.seen(partition, message.offset(), now);
                builder.push(
                    partition,
                    message.offset(),
                    message.payload().unwrap_or_default(),
                );
            }
            Some(Err(error)) => {
                tracing::warn!(topic = %config.topic, %error, "kafka consumer error");
            }
            None => {}
        }
        if consumer.context().generation() != generation {
            generation = consumer.context().generation();
            if let Some(error) = consumer.context().take_failure() {
                return Err(error);
            }
            assigned = consumer.context().assigned();
            // Records of revoked partitions not yet handed to the job: the
            // next owner reads them again from the checkpoint.
            builder.retain(&assigned);
            let restored = consumer.context().take_restored();
            if !cx.send(SourceEvent::Assigned(assigned.clone(), restored)) {
                break;
            }
        }
        if builder.is_full_at(now) || (!builder.is_empty() && tracker.quiet(now)) {
            let lags = progress(consumer, &assigned, &tracker);
            let backlog: Vec<i32> = lags
                .iter()
                .filter(|l| l.backlogged())
                .map(|l| l.partition)
                .collect();
            if backlog != tracker.backlog || tracker.progress_due(now) {
                tracker.backlog = backlog;
                tracker.progress_sent = Some(now);
                if !cx.send(SourceEvent::Backlog(lags)) {
                    break;
                }
            }
            if !cx.send(SourceEvent::Batch(builder.take())) {
                break;
            }
        } else if builder.is_empty() && tracker.quiet(now) && tracker.due_for_check() {
            // Only when records stopped coming: the check is a broker round
            // trip per partition.
            tracker.checked();
            if caught_up(consumer, &config.topic, &assigned, &tracker)
                && !cx.send(SourceEvent::CaughtUp)
            {
                break;
            }
        }
    }
    Ok(())
}

/// How long a stopping source waits for its consumer to leave the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Leaves the group and closes the consumer, waiting at most `timeout`.
/// librdkafka's close waits for every commit in flight, and without a
/// group coordinator those fail only when their request times out
/// (measured: the close of a job stopped during a broker outage took 35 s
/// after its final commit had been given up). The close carries on in its
/// own thread; a stopping process does not wait for it, and the group drops
/// a member that never said goodbye after `session.timeout.ms`.
fn close_within(consumer: Consumer, topic: &str, timeout: Duration) {
    let (closed, answered) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
    if closing.is_ok() && answered.recv_timeout(timeout).is_err() {
        tracing::warn!(
            topic,
            "the consumer did not leave its group within {timeout:?} (broker unreachable?); \
             stopping without waiting for it"
        );
    }
}

/// How long a stopping source waits for its last commit to be answered.
const FINAL_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The last commit, waited for but not forever: librdkafka's synchronous
/// commit never returns while the group coordinator is unreachable, and a
/// job stopped during a broker outage must still exit. An offset left
/// uncommitted is covered by the partition's checkpoint (or, without
/// checkpoints, read again from the previous commit: at-least-once).
fn final_commit(consumer: &Consumer, topic: &str, offsets: &[(i32, i64)]) {
    let answered = consumer.context().commits_answered();
    if !commit(consumer, topic, offsets) {
        return;
    }
    let deadline = Instant::now() + FINAL_COMMIT_TIMEOUT;
    // The commit's answer does not always reach the context's callback
    // (measured: every stop waited the whole timeout with a healthy
    // broker), so the group's committed offsets are asked too.
    while consumer.context().commits_answered() == answered
        && !group_has_committed(consumer, topic, offsets)
    {
        if Instant::now() >= deadline {
            tracing::warn!(
                topic,
                ?offsets,
                "the final offset commit was not answered in time (broker unreachable?); \
                 stopping without it"
            );
            return;
        }
        // Serves the commit's answer; records polled now are dropped
        // unread (their offsets are not committed).
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

/// Commits `offsets` (partition, next offset to read) asynchronously; a
/// failure is logged: the next commit covers the same records. `false` when
/// nothing was sent.
fn commit(consumer: &Consumer, topic: &str, offsets: &[(i32, i64)]) -> bool {
    if offsets.is_empty() {
        return false;
    }
    match consumer.commit(&offset_list(topic, offsets), CommitMode::Async) {
        Ok(()) => {
            tracing::debug!(topic, ?offsets, "committing offsets");
            true
        }
        Err(error) => {
            tracing::warn!(topic, %error, "committing offsets failed; will retry");
            false
        }
    }
}

fn offset_list(topic: &str, offsets: &[(i32, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(topic, partition, %error, "bad offset to commit");
        }
    }
    list
}

/// Whether the group's committed offsets have reached `offsets` (asked of
/// the group coordinator, waiting at most a second).
fn group_has_committed(consumer: &Consumer, topic: &str, offsets: &[(i32, i64)]) -> bool {
    // Not while the partitions' leaders are down (a broker outage): the
    // question could not be answered, and the job must be free to exit.
    let context = consumer.context();
    if !offsets
        .iter()
        .all(|&(partition, _)| context.leader_up(partition) == Some(true))
    {
        return false;
    }
    let asked = offset_list(topic, offsets);
    let Ok(committed) = consumer.committed_offsets(asked, Timeout::After(Duration::from_secs(1)))
    else {
        return false;
    };
    offsets.iter().all(|&(partition, offset)| {
        committed
            .find_partition(topic, partition)
            .is_some_and(|e| matches!(e.offset(), Offset::Offset(c) if c >= offset))
    })
}

/// Whether every assigned partition has been read to its high watermark
/// (from librdkafka's statistics; asked of the broker only before the first
/// statistics arrive).
fn caught_up(consumer: &Consumer, topic: &str, assigned: &[i32], tracker: &Progress) -> bool {
    if assigned.is_empty() {
        return false;
    }
    let context = consumer.context();
    assigned.iter().all(|&p| {
        // A partition that delivered nothing yet (e.g. `latest-offset`, or
        // a group already at the end) is where it started.
        let Some(next) = tracker.next_offset(p).or_else(|| context.start_offset(p)) else {
            return false;
        };
        match at_end(next, context.high_watermark(p), context.leader_up(p)) {
            Some(at_end) => at_end,
            None => consumer
                .fetch_watermarks(topic, p, Timeout::After(Duration::from_secs(2)))
                .is_ok_and(|(low, high)| next >= high.max(low)),
        }
    })
}

/// Whether a partition read up to `next` is at its end by librdkafka's
/// statistics (its high watermark `high`, and whether its leader was
/// connected); `None` before the first statistics (ask the broker). While
/// the leader is unreachable the high watermark is the last one seen: a job
/// must not call its input exhausted (and stop, with `--until-idle`) on
/// what it cannot know.
fn at_end(next: i64, high: Option<i64>, leader_up: Option<bool>) -> Option<bool> {
    match (high, leader_up) {
        (Some(_), Some(false)) => Some(false),
        (Some(high), _) => Some(next >= high),
        (None, _) => None,
    }
}

/// How far each assigned partition has been read, against its end from
/// librdkafka's statistics.
fn progress(consumer: &Consumer, assigned: &[i32], tracker: &Progress) -> Vec<PartitionLag> {
    let context = consumer.context();
    assigned
        .iter()
        .map(|&p| PartitionLag {
            partition: p,
            next_offset: tracker.next_offset(p).or_else(|| context.start_offset(p)),
            high_watermark: context.high_watermark(p),
        })
        .collect()
}

/// Offsets seen per partition and when data last arrived.
#[derive(Debug, Default)]
struct Progress {
    next: BTreeMap<i32, i64>,
    /// The backlog last reported to the job, and when.
    backlog: Vec<i32>,
    progress_sent: Option<Instant>,
    last_data: Option<Instant>,
    last_check: Option<Instant>,
}

impl Progress {
    fn seen(&mut self, partition: i32, offset: i64, now: Instant) {
        self.next.insert(partition, offset + 1);
        self.last_data = Some(now);
    }

    fn next_offset(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }

    /// No record for a moment (or none yet): hand over what we have.
    fn quiet(&self, now: Instant) -> bool {
        self.last_data
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(20))
    }

    /// Progress goes to the job at least every second (lag metrics).
    fn progress_due(&self, now: Instant) -> bool {
        self.progress_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
    }

    /// Watermark look-ups cost a round trip: at most one per second.
    fn due_for_check(&self) -> bool {
        self.last_check
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
    }

    fn checked(&mut self) {
        self.last_check = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::at_end;

    #[test]
    fn a_partition_is_at_its_end_only_while_its_leader_is_reachable() {
        assert_eq!(at_end(100, Some(100), Some(true)), Some(true));
        assert_eq!(at_end(99, Some(100), Some(true)), Some(false));
        // A broker outage: the last high watermark seen proves nothing.
        assert_eq!(at_end(100, Some(100), Some(false)), Some(false));
        assert_eq!(at_end(100, None, None), None, "no statistics yet: ask");
    }
}
