SET spindle.checkpoint.interval = '10s';
CREATE TABLE clicks (user_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL, n INT, WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
WITH ('connector' = 'kafka', 'topic' = '${TOPIC}', 'properties.bootstrap.servers' = '${BROKERS}', 'format' = 'influx-lp');
CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), c BIGINT)
WITH ('connector' = 'console');
CREATE VIEW v AS SELECT user_id, ts, n FROM clicks WHERE n > 0;
INSERT INTO out SELECT user_id, window_start, window_end, count(*) FROM v GROUP BY session(ts, INTERVAL '10' SECOND), user_id;
