//! `'connector' = 'kafka'`: a consumer-group member reading one topic.
//!
//! librdkafka's `BaseConsumer` runs on the source thread and fills
//! micro-batches (bounded by records, bytes and wait), copying payloads
//! straight into the batch's contiguous buffer. Offsets are not committed
//! here: the job does that once its outputs are durable.
//!
//! Options: `topic` (required), `properties.bootstrap.servers` (required),
//! `properties.group.id` (required), `scan.startup.mode` =
//! `earliest-offset` | `latest-offset` | `group-offsets` (where the group has
//! no committed offset: earliest), and any other `properties.*` passed to
//! librdkafka as is (SASL, TLS, fetch sizes).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::util::Timeout;
use spindle_sql::ddl::Options;

use super::{BatchBuilder, SourceContext, SourceEvent};
use crate::error::EngineError;

/// How the consumer is configured, read from the table's options.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    topic: String,
    properties: Vec<(String, String)>,
}

impl KafkaSourceConfig {
    /// Pulls the Kafka source options.
    pub fn from_options(options: &mut Options) -> spindle_sql::Result<Self> {
        let topic = options.pull_required("topic")?;
        let reset = options
            .pull_parsed("scan.startup.mode", |mode| match mode {
                "earliest-offset" | "group-offsets" => Ok("earliest"),
                "latest-offset" => Ok("latest"),
                other => Err(format!(
                    "unknown mode {other:?}; expected earliest-offset, latest-offset or group-offsets"
                )),
            })?
            .unwrap_or("earliest");
        if options.peek("properties.bootstrap.servers").is_none() {
            options.pull_required("properties.bootstrap.servers")?;
        }
        if options.peek("properties.group.id").is_none() {
            options.pull_required("properties.group.id")?;
        }
        let mut properties = vec![
            ("auto.offset.reset".to_string(), reset.to_string()),
            ("enable.auto.commit".to_string(), "false".to_string()),
            ("enable.auto.offset.store".to_string(), "false".to_string()),
            ("enable.partition.eof".to_string(), "false".to_string()),
            ("fetch.min.bytes".to_string(), "1".to_string()),
        ];
        properties.extend(options.pull_prefixed("properties."));
        Ok(Self { topic, properties })
    }
}

/// The source thread.
pub fn run(config: KafkaSourceConfig, cx: SourceContext) {
    if let Err(error) = consume(&config, &cx) {
        cx.send(SourceEvent::Failed(error));
    }
}

fn consume(config: &KafkaSourceConfig, cx: &SourceContext) -> Result<(), EngineError> {
    let mut client = ClientConfig::new();
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    let consumer: BaseConsumer = client.create().map_err(EngineError::kafka(format!(
        "creating a consumer for {}",
        config.topic
    )))?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(EngineError::kafka(format!(
            "subscribing to {}",
            config.topic
        )))?;
    let mut builder = BatchBuilder::new(cx.limits);
    let mut tracker = Progress::default();
    let mut assigned: Vec<i32> = Vec::new();
    while !cx.stopped() {
        let poll_wait = if builder.is_empty() {
            cx.limits.max_wait
        } else {
            Duration::from_millis(5)
        };
        match consumer.poll(poll_wait) {
            Some(Ok(message)) => {
                let partition = message.partition();
                tracker.seen(partition, message.offset());
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
        let now_assigned = assignment(&consumer);
        if now_assigned != assigned {
            assigned = now_assigned;
            if !cx.send(SourceEvent::Assigned(assigned.clone())) {
                return Ok(());
            }
        }
        if builder.is_full() || (!builder.is_empty() && tracker.quiet()) {
            if !cx.send(SourceEvent::Batch(builder.take())) {
                return Ok(());
            }
        } else if builder.is_empty() && tracker.due_for_check() {
            tracker.checked();
            if caught_up(&consumer, &config.topic, &assigned, &tracker)
                && !cx.send(SourceEvent::CaughtUp)
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn assignment(consumer: &BaseConsumer) -> Vec<i32> {
    let mut partitions: Vec<i32> = consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    partitions.sort_unstable();
    partitions
}

/// Whether every assigned partition has been read to its high watermark.
fn caught_up(consumer: &BaseConsumer, topic: &str, assigned: &[i32], tracker: &Progress) -> bool {
    if assigned.is_empty() {
        return false;
    }
    assigned.iter().all(|&p| {
        match consumer.fetch_watermarks(topic, p, Timeout::After(Duration::from_secs(5))) {
            Ok((low, high)) => {
                high <= low || tracker.next_offset(p).is_some_and(|next| next >= high)
            }
            Err(_) => false,
        }
    })
}

/// Offsets seen per partition and when data last arrived.
#[derive(Debug, Default)]
struct Progress {
    next: BTreeMap<i32, i64>,
    last_data: Option<Instant>,
    last_check: Option<Instant>,
}

impl Progress {
    fn seen(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset + 1);
        self.last_data = Some(Instant::now());
    }

    fn next_offset(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }

    /// No record for a moment: hand over what we have.
    fn quiet(&self) -> bool {
        self.last_data
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(20))
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
