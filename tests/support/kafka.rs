//! Reading a topic back, and Kafka's default partitioner as an oracle.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its key.
    pub key: Vec<u8>,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Reads every record of `topic` from the beginning up to the high
/// watermarks taken at the start (assign, not subscribe: no group needed).
pub fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", crate::services::unique("reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(30);
    let (assignment, ends, mut remaining) = end_offsets(&consumer, topic, timeout);
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::with_capacity(remaining.max(0) as usize);
    let deadline = Instant::now() + Duration::from_secs(300);
    while remaining > 0 {
        assert!(
            Instant::now() < deadline,
            "timed out with {remaining} records unread"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("consume");
        let end = ends
            .iter()
            .find(|(p, _)| *p == message.partition())
            .map(|(_, h)| *h);
        if end.is_some_and(|high| message.offset() < high) {
            remaining -= 1;
            records.push(Record {
                partition: message.partition(),
                key: message.key().unwrap_or_default().to_vec(),
                payload: message.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    records
}

/// The topic's partitions, assigned from their start, with their end offsets
/// and the number of records between. Retries while the broker's metadata
/// for a new topic is still settling (no partitions or no leader yet).
fn end_offsets(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> (TopicPartitionList, Vec<(i32, i64)>, i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = (|| -> Option<_> {
            let metadata = consumer.fetch_metadata(Some(topic), timeout).ok()?;
            let partitions: Vec<i32> = metadata
                .topics()
                .first()?
                .partitions()
                .iter()
                .map(|p| p.id())
                .collect();
            if partitions.is_empty() {
                return None;
            }
            let mut assignment = TopicPartitionList::new();
            let (mut ends, mut remaining) = (Vec::new(), 0i64);
            for p in partitions {
                let (low, high) = consumer.fetch_watermarks(topic, p, timeout).ok()?;
                assignment
                    .add_partition_offset(topic, p, Offset::Offset(low))
                    .ok()?;
                remaining += high - low;
                ends.push((p, high));
            }
            Some((assignment, ends, remaining))
        })();
        match attempt {
            Some(found) if found.2 > 0 => return found,
            _ if Instant::now() > deadline => panic!("no records found in topic {topic}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Creates `topic` with `partitions` partitions and the topic-level
/// `config` (e.g. `max.message.bytes`).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32, config: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut topic_spec = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in config {
        topic_spec = topic_spec.set(key, value);
    }
    let results = std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(admin.create_topics([&topic_spec], &AdminOptions::new())))
            .join()
            .expect("create thread")
    });
    results.expect("create topic").into_iter().for_each(|r| {
        r.expect("topic created");
    });
}

/// Produces `records` (key, payload) to a new topic with `partitions`
/// partitions, keyed with Kafka's default partitioner; waits for every ack.
pub fn produce(brokers: &str, topic: &str, partitions: i32, records: &[(String, Vec<u8>)]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    create_topic(brokers, topic, partitions, &[]);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for (key, payload) in records {
        let mut record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(producer.in_flight_count(), 0, "every record acknowledged");
}

/// A Kafka broker of one test's own: `scripts/kafka.sh` on free ports with
/// its own data folder, to stop and start again without disturbing the
/// shared broker the other tests use. Stopped and wiped when dropped.
#[derive(Debug)]
pub struct PrivateBroker {
    port: u16,
    controller_port: u16,
    data_dir: std::path::PathBuf,
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
}

impl PrivateBroker {
    /// Starts a broker on two free ports (formatting its storage first).
    pub fn start() -> Self {
        let mut broker = Self {
            port: crate::services::free_port(),
            controller_port: crate::services::free_port(),
            data_dir: std::env::temp_dir().join(crate::services::unique("spindle-kafka")),
            bootstrap: String::new(),
        };
        broker.bootstrap = broker.script(&["start"]);
        broker
    }

    /// Stops it (Kafka's controlled shutdown), keeping its data.
    pub fn stop(&self) {
        self.script(&["stop"]);
    }

    /// Starts it again on the same ports with the same data.
    pub fn restart(&self) {
        self.script(&["start"]);
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new("bash");
        command
            .arg(crate::services::repo_root().join("scripts/kafka.sh"))
            .args(args)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("KAFKA_DATA_DIR", &self.data_dir);
        command
    }

    fn script(&self, args: &[&str]) -> String {
        let output = self
            .command(args)
            .output()
            .expect("running scripts/kafka.sh");
        assert!(
            output.status.success(),
            "kafka.sh {args:?} (port {}): {}",
            self.port,
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().last().unwrap_or_default().trim().to_string()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.command(&["stop", "--wipe"]).output();
    }
}

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`), written out
/// independently of librdkafka as the partitioning oracle.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
