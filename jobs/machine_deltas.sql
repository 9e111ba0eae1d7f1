-- machine_deltas.sql — per-machine, per-reading delta and rolling features.
--
-- Reads the same readings as factory_features.sql and writes, for every
-- reading in event-time order per machine:
--   * each sensor's change since the machine's previous reading
--     (ΔG = G(n) − G(n−1)), and the seconds since that reading (a stalled
--     or bursting sensor shows up here);
--   * rolling 5-minute means and standard deviations of the sensors that
--     drift first when a machine starts to fail.
-- State (each machine's previous reading and its last 5 minutes) carries
-- across micro-batches; rows arriving after the watermark passed them go to
-- the late-data output.
--
-- Run it:   spindle run jobs/machine_deltas.sql
-- Settings: KAFKA_BROKERS, SENSOR_TOPIC, GROUP_ID, HISTORY_PATH (defaults below).

CREATE TABLE sensors (
  machine_id  VARCHAR NOT NULL,
  seq         BIGINT,
  ts          TIMESTAMP(3) NOT NULL,
  temperature DOUBLE,
  vibration   DOUBLE,
  power       DOUBLE,
  load        DOUBLE,
  humidity    DOUBLE,
  noise_level DOUBLE,
  rpm         DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${SENSOR_TOPIC:-factory.sensors}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS:-127.0.0.1:9092}',
  'properties.group.id' = '${GROUP_ID:-spindle-deltas}',
  'scan.startup.mode' = 'group-offsets',
  'format' = 'json'
);

CREATE TABLE deltas (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  seq BIGINT,
  seconds_since_last DOUBLE,
  temperature_delta DOUBLE,
  vibration_delta DOUBLE,
  power_delta DOUBLE,
  load_delta DOUBLE,
  humidity_delta DOUBLE,
  noise_level_delta DOUBLE,
  rpm_delta DOUBLE,
  temperature_avg_5m DOUBLE,
  vibration_avg_5m DOUBLE,
  vibration_stddev_5m DOUBLE,
  power_avg_5m DOUBLE,
  readings_5m BIGINT
) WITH (
  'connector' = 'parquet',
  'path' = '${HISTORY_PATH:-data/history}/deltas'
);

INSERT INTO deltas
SELECT
  machine_id,
  ts,
  seq,
  CAST(CAST(ts AS BIGINT) - CAST(lag(ts) OVER previous AS BIGINT) AS DOUBLE) / 1000.0 AS seconds_since_last,
  temperature - lag(temperature) OVER previous AS temperature_delta,
  vibration   - lag(vibration)   OVER previous AS vibration_delta,
  power       - lag(power)       OVER previous AS power_delta,
  load        - lag(load)        OVER previous AS load_delta,
  humidity    - lag(humidity)    OVER previous AS humidity_delta,
  noise_level - lag(noise_level) OVER previous AS noise_level_delta,
  rpm         - lag(rpm)         OVER previous AS rpm_delta,
  avg(temperature)  OVER last_5m AS temperature_avg_5m,
  avg(vibration)    OVER last_5m AS vibration_avg_5m,
  stddev(vibration) OVER last_5m AS vibration_stddev_5m,
  avg(power)        OVER last_5m AS power_avg_5m,
  count(*)          OVER last_5m AS readings_5m
FROM sensors
WINDOW
  previous AS (PARTITION BY machine_id ORDER BY ts),
  last_5m  AS (PARTITION BY machine_id ORDER BY ts
               RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW);
