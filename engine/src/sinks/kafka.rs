//! `'connector' = 'kafka'` as a sink: each row a JSON object (see
//! `sinks/json.rs`: nulls left out, timestamps in RFC 3339) in one record of
//! `'topic'`, keyed by `'key.column'` when given.
//!
//! librdkafka's `ThreadedProducer` queues and batches the records; its
//! polling thread serves delivery reports, which are counted here. `write`
//! only enqueues — when librdkafka's queue is full it waits for deliveries
//! to make room (backpressure to the job) instead of dropping. `flush` and
//! `commit` wait until every enqueued record is acknowledged or has failed,
//! and fail with the broker's error if any could not be delivered, so the
//! job commits its source offsets only behind delivered records.
//!
//! Defaults: `enable.idempotence=true` (so `acks=all` and no duplicates from
//! the producer's own retries within a run) and `partitioner=murmur2_random`
//! (a key lands on the partition the Java client and the simulator pick);
//! any `properties.*` overrides them and is passed to librdkafka as is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::util::display::ArrayFormatter;
use async_trait::async_trait;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use spindle_sql::ddl::{Options, TableDef};
use tokio::sync::Notify;

use super::Sink;
use super::json::{JsonRows, display_options};
use super::options::option_error;
use crate::error::{EngineError, Result};

/// Every option the sink reads (for "did you mean" hints).
pub const OPTIONS: &[&str] = &[
    "topic",
    "key.column",
    "format",
    "properties.bootstrap.servers",
    "properties.enable.idempotence",
    "properties.acks",
    "properties.partitioner",
];

/// librdkafka's default `message.timeout.ms` (a record's delivery deadline).
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Delivery reports of one producer, shared with its polling thread.
#[derive(Debug, Default)]
struct Deliveries {
    acknowledged: AtomicU64,
    failed: AtomicU64,
    /// The first failure: partition and the broker's (or librdkafka's) error.
    first_error: Mutex<Option<String>>,
    /// Woken on every report.
    reported: Notify,
}

impl Deliveries {
    fn done(&self) -> u64 {
        self.acknowledged.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire)
    }
}

/// Counts delivery reports.
struct DeliveryCounter(Arc<Deliveries>);

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acknowledged.fetch_add(1, Ordering::AcqRel);
            }
            Err((error, message)) => {
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| {
                        format!("partition {}: {error}", message.partition())
                    });
                }
                self.0.failed.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.0.reported.notify_waiters();
    }
}

/// Writes a table's rows as JSON records to a Kafka topic.
pub struct KafkaSink {
    name: String,
    topic: String,
    key_column: Option<usize>,
    producer: ThreadedProducer<DeliveryCounter>,
    deliveries: Arc<Deliveries>,
    /// Records handed to librdkafka.
    enqueued: u64,
    /// Times `write` waited because librdkafka's queue was full.
    queue_full_waits: u64,
    /// How long `flush` waits for the last report.
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .field("enqueued", &self.enqueued)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Reads and checks the options and creates the producer (librdkafka
    /// checks every property now; it connects in the background).
    pub fn open(table: &TableDef, options: &mut Options) -> Result<Self> {
        let topic = options.pull_required("topic")?;
        options.pull_parsed("format", |v| match v {
            "json" => Ok(()),
            other => Err(format!(
                "unknown format {other:?} for a kafka sink; expected json"
            )),
        })?;
        let key_column = match options.pull_str("key.column") {
            None => None,
            Some(name) => Some(table.schema().index_of(&name).map_err(|_| {
                option_error(
                    options,
                    "key.column",
                    &format!("no column {name:?} in the table"),
                )
            })?),
        };
        if options.peek("properties.bootstrap.servers").is_none() {
            options.pull_required("properties.bootstrap.servers")?;
        }
        let properties = producer_properties(options.pull_prefixed("properties."));
        let delivery_timeout = delivery_timeout(&properties);
        let deliveries = Arc::new(Deliveries::default());
        let producer = producer(&properties, &deliveries, options)?;
        Ok(Self {
            name: table.name.clone(),
            topic,
            key_column,
            producer,
            deliveries,
            enqueued: 0,
            queue_full_waits: 0,
            delivery_timeout,
        })
    }

    /// Fails if any record could not be delivered.
    fn check_failures(&self) -> Result<()> {
        let failed = self.deliveries.failed.load(Ordering::Acquire);
        if failed == 0 {
            return Ok(());
        }
        let first = self
            .deliveries
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_default();
        Err(self.error(&format!(
            "{failed} of {} records could not be delivered to topic {}; first: {first}",
            self.enqueued, self.topic
        )))
    }

    fn error(&self, message: &str) -> EngineError {
        EngineError::Sink {
            sink: self.name.clone(),
            message: message.to_string(),
        }
    }

    /// Waits for the next delivery report (or `limit`, whichever is first).
    async fn next_report(&self, limit: Duration) {
        let reported = self.deliveries.reported.notified();
        tokio::pin!(reported);
        reported.as_mut().enable();
        if self.deliveries.done() < self.enqueued {
            let _ = tokio::time::timeout(limit, reported).await;
        }
    }

    /// The message key of each row: the key column's value as text.
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<Option<String>>> {
        let Some(index) = self.key_column else {
            return Ok(vec![None; batch.num_rows()]);
        };
        let column = batch.column(index);
        let options = display_options();
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| self.error(&format!("formatting the key column: {e}")))?;
        Ok((0..batch.num_rows())
            .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
            .collect())
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    async fn enqueue(&mut self, payload: &[u8], key: Option<&[u8]>) -> Result<()> {
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(payload);
        record.key = key;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.enqueued += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.queue_full_waits += 1;
                    self.check_failures()?;
                    self.next_report(Duration::from_millis(100)).await;
                }
                Err((error, _)) => {
                    return Err(self.error(&format!("producing to topic {}: {error}", self.topic)));
                }
            }
        }
    }

    fn summary(&self) -> String {
        format!(
            "kafka sink {}: {} records to topic {}; acknowledged {}, failed {}; \
             waited {} times for room in the producer queue",
            self.name,
            self.enqueued,
            self.topic,
            self.deliveries.acknowledged.load(Ordering::Acquire),
            self.deliveries.failed.load(Ordering::Acquire),
            self.queue_full_waits,
        )
    }
}

/// The producer's librdkafka properties: Spindle's defaults, then the
/// table's `properties.*` (which win).
fn producer_properties(given: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut properties: Vec<(String, String)> = [
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("partitioner", "murmur2_random"),
    ]
    .into_iter()
    .filter(|(key, _)| !given.iter().any(|(k, _)| k == key))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    properties.extend(given);
    properties
}

/// A record's delivery deadline (`message.timeout.ms`, alias
/// `delivery.timeout.ms`) plus a margin: `flush` gives up after that.
fn delivery_timeout(properties: &[(String, String)]) -> Duration {
    properties
        .iter()
        .rev()
        .find(|(k, _)| k == "message.timeout.ms" || k == "delivery.timeout.ms")
        .and_then(|(_, v)| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_DELIVERY_TIMEOUT)
        + Duration::from_secs(30)
}

fn producer(
    properties: &[(String, String)],
    deliveries: &Arc<Deliveries>,
    options: &Options,
) -> Result<ThreadedProducer<DeliveryCounter>> {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    config
        .create_with_context(DeliveryCounter(Arc::clone(deliveries)))
        .map_err(|e| match e {
            KafkaError::ClientConfig(_, description, key, _) => option_error(
                options,
                &format!("properties.{key}"),
                &format!("librdkafka refuses it: {description}"),
            ),
            other => option_error(
                options,
                "properties.bootstrap.servers",
                &format!("creating the producer: {other}"),
            ),
        })
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.check_failures()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = JsonRows::encode(&batch, &self.name)?;
        let keys = self.keys(&batch)?;
        for (i, key) in keys.iter().enumerate() {
            self.enqueue(rows.row(i), key.as_deref().map(str::as_bytes))
                .await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.delivery_timeout;
        while self.deliveries.done() < self.enqueued {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.error(&format!(
                    "{} of {} records to topic {} still unacknowledged after {:?}",
                    self.enqueued - self.deliveries.done(),
                    self.enqueued,
                    self.topic,
                    self.delivery_timeout
                )));
            }
            self.next_report(Duration::from_millis(100).min(deadline - now))
                .await;
        }
        self.check_failures()
    }

    async fn close(&mut self) -> Result<()> {
        let result = self.flush().await;
        tracing::info!("{}", self.summary());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_idempotent_and_keyed_like_java_and_give_way_to_properties() {
        let given = vec![("acks".to_string(), "1".to_string())];
        let properties = producer_properties(given);
        let value = |key: &str| {
            properties
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(value("enable.idempotence"), ["true"]);
        assert_eq!(value("partitioner"), ["murmur2_random"]);
        assert_eq!(value("acks"), ["1"]);
    }

    #[test]
    fn flush_waits_as_long_as_librdkafka_may_take_to_report() {
        assert_eq!(delivery_timeout(&[]), Duration::from_secs(330));
        let given = [("delivery.timeout.ms".to_string(), "5000".to_string())];
        assert_eq!(delivery_timeout(&given), Duration::from_secs(35));
    }
}
