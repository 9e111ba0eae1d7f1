-- Readings per machine and 10-second window, for the offset-commit tests:
-- checkpoints (and commits) every second while it runs; the startup mode
-- comes from the test.
SET spindle.checkpoint.interval = '1s';

CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${SENSOR_TOPIC}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS}',
  'properties.group.id' = '${GROUP_ID}',
  'scan.startup.mode' = '${STARTUP_MODE}',
  'format' = 'json'
);

CREATE TABLE counts (
  machine_id VARCHAR NOT NULL,
  window_start TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL
) WITH ('connector' = 'parquet', 'path' = '${OUT}/counts');

INSERT INTO counts
SELECT machine_id, window_start, count(*) FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
