-- The recovery tests' job: the features job's tumbling windows, checkpointed
-- every half second to a store shared by every run (and every worker).
SET spindle.checkpoint.interval = '500ms';
SET spindle.checkpoint.path = '${CHECKPOINTS}';

CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${SENSOR_TOPIC}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS}',
  'properties.group.id' = '${GROUP_ID}',
  'scan.startup.mode' = 'earliest-offset',
  -- A killed worker loses its partitions after 6 s (librdkafka default: 45 s).
  'properties.session.timeout.ms' = '6000',
  'batch.max-records' = '${BATCH_RECORDS:-5000}',
  'watermark.idle-timeout' = '${IDLE_TIMEOUT:-10s}',
  'record.max-bytes' = '${MAX_RECORD_BYTES:-1MiB}',
  'event-time.max-past' = '${MAX_PAST:-off}'
);

CREATE TABLE features (
  machine_id VARCHAR NOT NULL, window_start TIMESTAMP(3) NOT NULL, window_end TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL, temperature_avg DOUBLE, temperature_stddev DOUBLE, vibration_max DOUBLE,
  rpm_avg DOUBLE
) WITH ('connector' = 'parquet', 'path' = '${HISTORY_PATH}/features');

INSERT INTO features
SELECT machine_id, window_start, window_end, count(*), avg(temperature), stddev(temperature),
       max(vibration), avg(rpm)
FROM sensors GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
