-- plant.sql — the job the compose deployment's workers run (docker/compose.yml).
--
-- One Kafka consumer group (GROUP_ID) over the simulator's readings, so
-- `docker compose up --scale worker=N` splits the topic's partitions between
-- N workers; checkpoints go to one shared folder (CHECKPOINTS) so a partition
-- moving to another worker resumes its window state there.
--   * features: per machine, 10-second windows of each sensor's mean, min,
--     max and standard deviation → Parquet history (HISTORY_PATH/features,
--     which the server's /api/query and the dashboard read) and InfluxDB
--     (measurement machine_features, which Grafana charts);
--   * alerts: the online detectors of jobs/anomaly_detection.sql → Parquet
--     history (HISTORY_PATH/alerts: /api/anomalies) and InfluxDB (measurement
--     machine_alerts: Grafana's anomaly panels).
--
-- Settings: KAFKA_BROKERS, SENSOR_TOPIC, GROUP_ID, HISTORY_PATH, CHECKPOINTS,
--           INFLUX_URL, INFLUX_DB, INFLUX_TOKEN (unset: no auth).

SET spindle.checkpoint.interval = '30s';
SET spindle.checkpoint.path = '${CHECKPOINTS:-/data/checkpoints/plant}';

CREATE TABLE sensors (
  machine_id  VARCHAR NOT NULL,
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
  'properties.bootstrap.servers' = '${KAFKA_BROKERS:-kafka:9092}',
  'properties.group.id' = '${GROUP_ID:-spindle-plant}',
  'scan.startup.mode' = 'group-offsets',
  'format' = 'json'
);

CREATE TABLE features (
  machine_id VARCHAR NOT NULL,
  window_start TIMESTAMP(3) NOT NULL,
  window_end TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL,
  temperature_avg DOUBLE, temperature_min DOUBLE, temperature_max DOUBLE, temperature_stddev DOUBLE,
  vibration_avg DOUBLE,   vibration_min DOUBLE,   vibration_max DOUBLE,   vibration_stddev DOUBLE,
  power_avg DOUBLE,       power_min DOUBLE,       power_max DOUBLE,       power_stddev DOUBLE,
  load_avg DOUBLE,        humidity_avg DOUBLE,    noise_level_avg DOUBLE, rpm_avg DOUBLE
) WITH (
  'connector' = 'parquet',
  'path' = '${HISTORY_PATH:-/data/history}/features'
);

CREATE TABLE machine_features (
  machine_id VARCHAR NOT NULL,
  window_start TIMESTAMP(3) NOT NULL,
  window_end TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL,
  temperature_avg DOUBLE, temperature_min DOUBLE, temperature_max DOUBLE, temperature_stddev DOUBLE,
  vibration_avg DOUBLE,   vibration_min DOUBLE,   vibration_max DOUBLE,   vibration_stddev DOUBLE,
  power_avg DOUBLE,       power_min DOUBLE,       power_max DOUBLE,       power_stddev DOUBLE,
  load_avg DOUBLE,        humidity_avg DOUBLE,    noise_level_avg DOUBLE, rpm_avg DOUBLE
) WITH (
  'connector' = 'influxdb',
  'url' = '${INFLUX_URL:-http://influxdb:8181}',
  'api' = 'v3',
  'database' = '${INFLUX_DB:-factory}',
  'token.env' = 'INFLUX_TOKEN',
  'measurement' = 'machine_features',
  'tags' = 'machine_id',
  'time.column' = 'window_start'
);

CREATE TABLE alerts (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  model VARCHAR NOT NULL,
  score DOUBLE,
  threshold DOUBLE,
  reason VARCHAR
) WITH (
  'connector' = 'parquet',
  'path' = '${HISTORY_PATH:-/data/history}/alerts'
);

CREATE TABLE machine_alerts (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  model VARCHAR NOT NULL,
  score DOUBLE,
  threshold DOUBLE,
  reason VARCHAR
) WITH (
  'connector' = 'influxdb',
  'url' = '${INFLUX_URL:-http://influxdb:8181}',
  'api' = 'v3',
  'database' = '${INFLUX_DB:-factory}',
  'token.env' = 'INFLUX_TOKEN',
  'measurement' = 'machine_alerts',
  'tags' = 'machine_id,model',
  'time.column' = 'ts'
);

CREATE VIEW detections AS
-- One alert per reading on which any detector fires, naming the first one.
SELECT machine_id, ts,
  CASE WHEN td THEN 'temperature_drift' WHEN tf THEN 'temperature_flatline'
       WHEN vf THEN 'vibration_fluctuation' WHEN vd THEN 'vibration_drift'
       ELSE 'power_fluctuation' END AS model,
  CASE WHEN td THEN t_drift['score'] WHEN tf THEN t_flat['score']
       WHEN vf THEN v_fluct['score'] WHEN vd THEN v_drift['score']
       ELSE p_fluct['score'] END AS score,
  CASE WHEN td THEN t_drift['threshold'] WHEN tf THEN t_flat['threshold']
       WHEN vf THEN v_fluct['threshold'] WHEN vd THEN v_drift['threshold']
       ELSE p_fluct['threshold'] END AS threshold,
  CASE WHEN td THEN t_drift['reason'] WHEN tf THEN t_flat['reason']
       WHEN vf THEN v_fluct['reason'] WHEN vd THEN v_drift['reason']
       ELSE p_fluct['reason'] END AS reason
FROM (
  SELECT *,
    coalesce(t_drift['flag'], false) AS td, coalesce(t_flat['flag'], false) AS tf,
    coalesce(v_fluct['flag'], false) AS vf, coalesce(v_drift['flag'], false) AS vd,
    coalesce(p_fluct['flag'], false) AS pf
  FROM (
    SELECT machine_id, ts,
      ewma_anomaly(temperature)      OVER w AS t_drift,
      flatline_anomaly(temperature)  OVER w AS t_flat,
      ew_variance_anomaly(vibration) OVER w AS v_fluct,
      ewma_anomaly(vibration)        OVER w AS v_drift,
      ew_variance_anomaly(power)     OVER w AS p_fluct
    FROM sensors
    WINDOW w AS (PARTITION BY machine_id ORDER BY ts)
  ) scored
) checked
WHERE td OR tf OR vf OR vd OR pf;

-- The same windows twice (a view cannot hold a window yet), once per sink.
INSERT INTO features
SELECT
  machine_id, window_start, window_end, count(*) AS readings,
  avg(temperature), min(temperature), max(temperature), stddev(temperature),
  avg(vibration), min(vibration), max(vibration), stddev(vibration),
  avg(power), min(power), max(power), stddev(power),
  avg(load), avg(humidity), avg(noise_level), avg(rpm)
FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;

INSERT INTO machine_features
SELECT
  machine_id, window_start, window_end, count(*) AS readings,
  avg(temperature), min(temperature), max(temperature), stddev(temperature),
  avg(vibration), min(vibration), max(vibration), stddev(vibration),
  avg(power), min(power), max(power), stddev(power),
  avg(load), avg(humidity), avg(noise_level), avg(rpm)
FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;

INSERT INTO alerts SELECT * FROM detections;
INSERT INTO machine_alerts SELECT * FROM detections;
