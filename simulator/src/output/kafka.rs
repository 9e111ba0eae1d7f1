//! The Kafka destination: an rdkafka producer keyed by machine id.
//!
//! Defaults favour safety and throughput together: idempotent producer
//! (`acks=all`), lz4 compression, large batches with a short linger, and
//! Kafka's Java-compatible `murmur2_random` partitioner, so a machine's
//! readings land in the partition every Kafka client computes for its key.
//! Every delivery report is counted; failures are never silent.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;

use super::{DeliveryReport, Output};
use crate::error::{Result, SimError};

/// How to reach and write the topic.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Topic name.
    pub topic: String,
    /// Partitions when the topic has to be created.
    pub partitions: i32,
    /// `acks`: `all`, `1` or `0`.
    pub acks: String,
    /// `compression.type`: `lz4`, `zstd`, `gzip`, `snappy` or `none`.
    pub compression: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// Extra librdkafka properties (`key=value`), applied last.
    pub properties: Vec<(String, String)>,
}

/// Counts delivery reports from librdkafka's background thread.
#[derive(Debug, Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Default)]
struct CountingContext(Arc<DeliveryCounter>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

/// Produces records to one topic.
pub struct KafkaOutput {
    producer: ThreadedProducer<CountingContext>,
    counter: Arc<DeliveryCounter>,
    topic: String,
}

impl std::fmt::Debug for KafkaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOutput")
            .field("topic", &self.topic)
            .finish()
    }
}

fn kafka_error(context: String) -> impl FnOnce(KafkaError) -> SimError {
    move |source| SimError::Kafka { context, source }
}

impl KafkaOutput {
    /// Connects a producer (the topic must exist; see [`ensure_topic`]).
    pub fn connect(options: &KafkaOptions) -> Result<Self> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("acks", &options.acks)
            .set("enable.idempotence", (options.acks == "all").to_string())
            .set("compression.type", &options.compression)
            .set("linger.ms", options.linger_ms.to_string())
            .set("batch.size", "1000000")
            .set("batch.num.messages", "100000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("partitioner", "murmur2_random");
        for (key, value) in &options.properties {
            config.set(key, value);
        }
        let counter = Arc::new(DeliveryCounter::default());
        let producer = config
            .create_with_context(CountingContext(counter.clone()))
            .map_err(kafka_error(format!(
                "creating producer for {}",
                options.brokers
            )))?;
        Ok(Self {
            producer,
            counter,
            topic: options.topic.clone(),
        })
    }
}

impl Output for KafkaOutput {
    fn send(&mut self, key: &str, payload: &[u8], ts_ms: i64) -> Result<()> {
        let mut record = BaseRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .timestamp(ts_ms);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                // The local queue is full: the broker is slower than we are.
                // Wait for librdkafka's thread to drain it (backpressure).
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(kafka_error(format!("producing to {}", self.topic))(error));
                }
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<DeliveryReport> {
        let flushed = self
            .producer
            .flush(Timeout::After(Duration::from_secs(120)));
        let in_flight = self.producer.in_flight_count().max(0) as u64;
        let mut report = DeliveryReport {
            delivered: self.counter.delivered.load(Ordering::Relaxed),
            failed: self.counter.failed.load(Ordering::Relaxed) + in_flight,
            first_error: self.counter.first_error.lock().ok().and_then(|e| e.clone()),
        };
        if let Err(e) = flushed {
            report
                .first_error
                .get_or_insert_with(|| format!("flush timed out with {in_flight} in flight: {e}"));
        }
        Ok(report)
    }
}

/// The topic config that decides which time a record's Kafka timestamp is.
const TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// Its value for topics the simulator creates: the broker's append time.
const LOG_APPEND_TIME: &str = "LogAppendTime";

/// Creates `topic` with `partitions` partitions and broker-side timestamps
/// (`message.timestamp.type=LogAppendTime`) unless it exists; returns the
/// topic's partition count.
pub fn ensure_topic(options: &KafkaOptions) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SimError::io("starting the admin runtime", e))?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &options.brokers);
    for (key, value) in &options.properties {
        config.set(key, value);
    }
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(kafka_error(format!("connecting to {}", options.brokers)))?;
    if let Some(existing) = partition_count(&admin, &options.topic)? {
        return Ok(existing);
    }
    // Records carry simulated time (by default starting 2026-01-01, or a replay's
    // recorded time), usually far in the past. Under the broker's default
    // `CreateTime`, retention (7 days by default) and Kafka 4's
    // `message.timestamp.before/after.max.ms` checks judge records by that time:
    // the broker would delete a freshly filled topic at its next retention check
    // (minutes), or refuse readings stamped too far ahead. `LogAppendTime` makes
    // the broker stamp each record when it appends it, so the topic keeps the
    // broker's usual retention, counted from when the data was written; the
    // event time stays in the payload, where Spindle reads it. (`retention.ms=-1`
    // would keep the event time as the record timestamp too, but would keep
    // every topic forever and still fail on future timestamps.) Topics that
    // exist already are left as they are.
    let topic = NewTopic::new(
        &options.topic,
        options.partitions,
        TopicReplication::Fixed(1),
    )
    .set(TIMESTAMP_TYPE, LOG_APPEND_TIME);
    let admin_options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics([&topic], &admin_options))
        .map_err(kafka_error(format!("creating topic {}", options.topic)))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(kafka_error(format!("creating topic {name}"))(
                    KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(options.partitions)
}

fn partition_count(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<Option<i32>> {
    // Ask for all topics: a request naming the topic would let a broker with
    // auto.create.topics.enable create it with the default partition count.
    let metadata = admin
        .inner()
        .fetch_metadata(None, Timeout::After(Duration::from_secs(30)))
        .map_err(kafka_error(format!("reading metadata of {topic}")))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|&n| n > 0))
}
