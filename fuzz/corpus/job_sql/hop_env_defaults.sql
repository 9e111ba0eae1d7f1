-- $${literal} and defaults
CREATE TABLE s (
  machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL, v DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '${DELAY:-5}' SECOND
) WITH ('connector' = 'simulator', 'format' = 'openmetrics', 'machines' = '${MACHINES:-3}', 'x' = '$${NOT_A_VAR}${EMPTY}${QUOTE:-q}');
CREATE TABLE p (machine_id VARCHAR, window_start TIMESTAMP(3), m DOUBLE)
WITH ('connector' = 'parquet', 'path' = '${PATH_OUT}/p');
INSERT INTO p SELECT machine_id, window_start, max(v) FROM s GROUP BY hop(ts, INTERVAL '5' SECOND, INTERVAL '1' MINUTE), machine_id HAVING max(v) > 1;
INSERT INTO p SELECT machine_id, ts, v - lag(v) OVER (PARTITION BY machine_id ORDER BY ts) FROM s;
