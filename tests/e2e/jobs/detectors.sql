-- The detectors' oracle job: every online detector (and one stacked on
-- another) per machine over the real broker, scores to Parquet.
CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${SENSOR_TOPIC}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS}',
  'properties.group.id' = '${GROUP_ID}',
  'scan.startup.mode' = 'earliest-offset'
);

CREATE TABLE scores (
  machine_id VARCHAR, ts TIMESTAMP(3), gaussian DOUBLE, gaussian_flag BOOLEAN, ewma DOUBLE,
  ew_variance DOUBLE, cusum DOUBLE, flatline DOUBLE, likelihood DOUBLE, inter_arrival DOUBLE
) WITH ('connector' = 'parquet', 'path' = '${OUT}/scores', 'partitioning' = 'none');

INSERT INTO scores
SELECT machine_id, ts, g['score'], g['flag'], e['score'], v['score'], c['score'], f['score'],
       l['score'], gap
FROM (SELECT *, anomaly_likelihood(g['score'], 10, 200) OVER w AS l FROM (
  SELECT machine_id, ts,
    gaussian_anomaly(vibration, 0.9999, 50) OVER w AS g,
    ewma_anomaly(temperature, 10, 4, 100) OVER w AS e,
    ew_variance_anomaly(power, 10, 4, 100) OVER w AS v,
    cusum_anomaly(rpm, 0.5, 8, 100) OVER w AS c,
    flatline_anomaly(temperature) OVER w AS f,
    inter_arrival(ts) OVER w AS gap
  FROM sensors
  WINDOW w AS (PARTITION BY machine_id ORDER BY ts))
WINDOW w AS (PARTITION BY machine_id ORDER BY ts));
