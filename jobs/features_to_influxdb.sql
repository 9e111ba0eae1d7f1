-- features_to_influxdb.sql — the reference features, into InfluxDB.
--
-- Reads machine readings from Kafka and writes, per machine and 10-second
-- tumbling window on event time, the reading count and each sensor's mean,
-- minimum, maximum and sample standard deviation to InfluxDB as measurement
-- `machine_features`: tag `machine_id`, one field per feature (`readings` an
-- integer, the rest floats; `window_end` integer nanoseconds), time = the
-- window start. Empty statistics (a window of one reading has no standard
-- deviation) are left out of the point.
--
-- Run it:   spindle run jobs/features_to_influxdb.sql
-- Settings: KAFKA_BROKERS, SENSOR_TOPIC, GROUP_ID, INFLUX_URL, INFLUX_API
--           (v3, v2 or v1), INFLUX_DB (the database, or the bucket for v2),
--           INFLUX_TOKEN (the API token; unset for a server without auth).
--           Defaults below. The database must exist.

CREATE TABLE sensors (
  machine_id  VARCHAR NOT NULL,
  seq         BIGINT,
  line        VARCHAR,
  provider    VARCHAR,
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
  'properties.group.id' = '${GROUP_ID:-spindle-features-influxdb}',
  'scan.startup.mode' = 'group-offsets',
  'format' = 'json'
);

CREATE TABLE machine_features (
  machine_id VARCHAR NOT NULL,
  window_start TIMESTAMP(3) NOT NULL,
  window_end TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL,
  temperature_avg DOUBLE, temperature_min DOUBLE, temperature_max DOUBLE, temperature_stddev DOUBLE,
  vibration_avg DOUBLE,   vibration_min DOUBLE,   vibration_max DOUBLE,   vibration_stddev DOUBLE,
  power_avg DOUBLE,       power_min DOUBLE,       power_max DOUBLE,       power_stddev DOUBLE,
  load_avg DOUBLE,        load_min DOUBLE,        load_max DOUBLE,        load_stddev DOUBLE,
  humidity_avg DOUBLE,    humidity_min DOUBLE,    humidity_max DOUBLE,    humidity_stddev DOUBLE,
  noise_level_avg DOUBLE, noise_level_min DOUBLE, noise_level_max DOUBLE, noise_level_stddev DOUBLE,
  rpm_avg DOUBLE,         rpm_min DOUBLE,         rpm_max DOUBLE,         rpm_stddev DOUBLE
) WITH (
  'connector' = 'influxdb',
  'url' = '${INFLUX_URL:-http://127.0.0.1:8086}',
  'api' = '${INFLUX_API:-v3}',
  'database' = '${INFLUX_DB:-factory}',
  'token.env' = 'INFLUX_TOKEN',
  'measurement' = 'machine_features',
  'tags' = 'machine_id',
  'time.column' = 'window_start'
);

INSERT INTO machine_features
SELECT
  machine_id, window_start, window_end, count(*) AS readings,
  avg(temperature), min(temperature), max(temperature), stddev(temperature),
  avg(vibration),   min(vibration),   max(vibration),   stddev(vibration),
  avg(power),       min(power),       max(power),       stddev(power),
  avg(load),        min(load),        max(load),        stddev(load),
  avg(humidity),    min(humidity),    max(humidity),    stddev(humidity),
  avg(noise_level), min(noise_level), max(noise_level), stddev(noise_level),
  avg(rpm),         min(rpm),         max(rpm),         stddev(rpm)
FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
