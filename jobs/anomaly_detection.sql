-- anomaly_detection.sql — alerts on failing machines.
--
-- Reads the same readings as factory_features.sql and, per machine in
-- event-time order, scores every reading with the online detectors of
-- docs/models.md: EWMA (drift) and EW variance (fluctuation) charts on the
-- sensors that carry the plant's failure modes, a flatline check on the
-- temperature probe, and the time since the machine's previous reading.
-- Rows where a detector fires are alerts: machine, time, model, score,
-- threshold and reason, written to the Kafka topic ALERT_TOPIC (keyed by
-- machine), to the Parquet history under HISTORY_PATH/alerts (what
-- `spindle server`'s GET /api/anomalies and the dashboard read) and, when
-- ALERT_WEBHOOK_URL is set, posted to that webhook at most once per machine
-- every 5 minutes of event time.
--
-- Run it:   spindle run jobs/anomaly_detection.sql
-- Settings: KAFKA_BROKERS, SENSOR_TOPIC, GROUP_ID, ALERT_TOPIC, HISTORY_PATH,
--           ALERT_WEBHOOK_URL (defaults below).

CREATE TABLE sensors (
  machine_id  VARCHAR NOT NULL,
  seq         BIGINT,
  ts          TIMESTAMP(3) NOT NULL,
  temperature DOUBLE,
  vibration   DOUBLE,
  power       DOUBLE,
  noise_level DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${SENSOR_TOPIC:-factory.sensors}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS:-127.0.0.1:9092}',
  'properties.group.id' = '${GROUP_ID:-spindle-anomalies}',
  'scan.startup.mode' = 'group-offsets',
  'format' = 'json'
);

CREATE TABLE alerts (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  model VARCHAR NOT NULL,
  score DOUBLE,
  threshold DOUBLE,
  reason VARCHAR
) WITH (
  'connector' = 'kafka',
  'topic' = '${ALERT_TOPIC:-factory.alerts}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS:-127.0.0.1:9092}',
  'key.column' = 'machine_id'
);

CREATE TABLE alert_history (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  model VARCHAR NOT NULL,
  score DOUBLE,
  threshold DOUBLE,
  reason VARCHAR
) WITH (
  'connector' = 'parquet',
  'path' = '${HISTORY_PATH:-data/history}/alerts'
);

CREATE TABLE alert_hook (
  machine_id VARCHAR NOT NULL,
  ts TIMESTAMP(3) NOT NULL,
  model VARCHAR NOT NULL,
  score DOUBLE,
  threshold DOUBLE,
  reason VARCHAR
) WITH (
  'connector' = 'webhook',
  'url' = '${ALERT_WEBHOOK_URL:-}',
  'key.column' = 'machine_id',
  'time.column' = 'ts',
  'cooldown' = '5m',
  'template' = '{"text": "{machine_id}: {reason} ({model}, score {score} > {threshold}) at {ts}"}'
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

INSERT INTO alerts SELECT * FROM detections;

INSERT INTO alert_history SELECT * FROM detections;

INSERT INTO alert_hook SELECT * FROM detections;
