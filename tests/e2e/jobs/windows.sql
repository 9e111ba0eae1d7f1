-- The oracle test's job: one Kafka source read once, three pipelines.
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
  'watermark.idle-timeout' = '2s'
);

CREATE TABLE hopping (
  machine_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), readings BIGINT,
  vibration_max DOUBLE, power_avg DOUBLE
) WITH ('connector' = 'parquet', 'path' = '${OUT}/hopping', 'partitioning' = 'none');

CREATE TABLE sessions (
  machine_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), readings BIGINT, rpm_avg DOUBLE
) WITH ('connector' = 'parquet', 'path' = '${OUT}/sessions', 'partition_by' = 'machine_id');

INSERT INTO hopping
SELECT machine_id, window_start, window_end, count(*), max(vibration), avg(power)
FROM sensors GROUP BY hop(ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND), machine_id;

INSERT INTO sessions
SELECT machine_id, window_start, window_end, count(*), avg(rpm)
FROM sensors GROUP BY session(ts, INTERVAL '30' SECOND), machine_id;
