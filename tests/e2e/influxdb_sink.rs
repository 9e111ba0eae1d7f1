//! The InfluxDB sink against a real InfluxDB 1.x (`scripts/influxdb.sh`,
//! or the server `SPINDLE_TEST_INFLUXDB` names), through `'api' = 'v1'`:
//!
//! - windowed features with awkward names and strings read back with
//!   `/query` equal, point for point (tags, fields, nanosecond times), the
//!   rows the same job prints through a console sink;
//! - a private server stopped mid-job and started again: the job waits and
//!   retries, and every reading arrives exactly once;
//! - the shipped `jobs/features_to_influxdb.sql` from a real Kafka topic.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spindle_tests::influxdb::{PrivateServer, count, create_database, query};
use spindle_tests::services::{influxdb, kafka, repo_root, unique};
use spindle_tests::spindle::{command, stderr};

const MEASUREMENT: &str = "machine features, v1";

/// Per machine and minute: features into InfluxDB (a measurement, tag keys,
/// field keys and values that need escaping), and the same values with the
/// window start in milliseconds to the console, as the oracle.
fn features_job(url: &str, db: &str) -> String {
    let values = "concat('line ', machine_id, ',x=1'), count(*), avg(temperature), \
                  max(CASE WHEN seq % 7 = 0 THEN rpm END), \
                  concat('say \"hi\" \\ ', machine_id, chr(10), 'end'), avg(temperature) > 65";
    let group = "GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id";
    format!(
        r#"CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE, rpm DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'simulator', 'machines' = '7', 'count' = '6000', 'interval' = '10s',
        'batch.max-records' = '700');
CREATE TABLE features (
  "machine id" VARCHAR NOT NULL, "line,a=b c" VARCHAR, window_start TIMESTAMP(3) NOT NULL,
  readings BIGINT NOT NULL, "temperature avg,°C=x" DOUBLE, rpm_sampled DOUBLE, note VARCHAR, hot BOOLEAN
) WITH ('connector' = 'influxdb', 'api' = 'v1', 'url' = '{url}', 'database' = '{db}',
        'measurement' = '{MEASUREMENT}', 'tags' = 'machine id,"line,a=b c"', 'batch.max-lines' = '100');
CREATE TABLE oracle (
  machine_id VARCHAR, line VARCHAR, start_ms BIGINT, readings BIGINT, temperature_avg DOUBLE,
  rpm_sampled DOUBLE, note VARCHAR, hot BOOLEAN
) WITH ('connector' = 'console');
INSERT INTO features SELECT machine_id, {values_with_start} FROM sensors {group};
INSERT INTO oracle SELECT machine_id, {values_with_start_ms} FROM sensors {group};
"#,
        values_with_start = values.replacen(", count(*)", ", window_start, count(*)", 1),
        values_with_start_ms =
            values.replacen(", count(*)", ", CAST(window_start AS BIGINT), count(*)", 1),
    )
}

/// `spindle run JOB --until-idle` with side outputs under `dir/side`.
pub(crate) fn run_until_idle(
    job: &std::path::Path,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut run = command([
        "run",
        job.to_str().unwrap(),
        "--until-idle",
        "--side-outputs",
    ]);
    run.arg(dir.join("side"));
    run
}

/// (machine, time in ns) → (tags, fields) as InfluxDB holds them.
type Points = BTreeMap<(String, i64), (Value, BTreeMap<String, Value>)>;

/// Every point of the measurement, grouped by series so tags and fields
/// come apart.
fn stored_points(url: &str, db: &str) -> Points {
    let answer = query(
        url,
        db,
        &format!("SELECT * FROM \"{MEASUREMENT}\" GROUP BY *"),
    );
    let mut points = Points::new();
    for series in answer["results"][0]["series"].as_array().expect("series") {
        let tags = series["tags"].clone();
        let columns: Vec<&str> = series["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for row in series["values"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let time = row[0].as_i64().unwrap();
            let fields = columns[1..]
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| !v.is_null())
                .map(|(c, v)| (c.to_string(), numbers_as_f64(v)))
                .collect();
            let machine = tags["machine id"].as_str().unwrap().to_string();
            let previous = points.insert((machine, time), (tags.clone(), fields));
            assert!(previous.is_none(), "two points at one time");
        }
    }
    points
}

/// Numbers as f64 (InfluxDB prints `63` for the float 63.0; the field
/// types are checked apart, with `SHOW FIELD KEYS`).
fn numbers_as_f64(value: &Value) -> Value {
    match value.as_f64() {
        Some(number) => json!(number),
        None => value.clone(),
    }
}

/// The console rows as the points they should have become.
fn expected_points(stdout: &str) -> Points {
    stdout
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            let machine = row["machine_id"].as_str().unwrap().to_string();
            let time = row["start_ms"].as_i64().unwrap() * 1_000_000;
            let tags = json!({"machine id": machine, "line,a=b c": row["line"]});
            let fields: BTreeMap<String, Value> = [
                ("readings", &row["readings"]),
                ("temperature avg,°C=x", &row["temperature_avg"]),
                ("rpm_sampled", &row["rpm_sampled"]),
                ("note", &row["note"]),
                ("hot", &row["hot"]),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_string(), numbers_as_f64(v)))
            .collect();
            ((machine, time), (tags, fields))
        })
        .collect()
}

#[test]
fn features_written_through_v1_read_back_point_for_point() {
    let url = influxdb();
    let db = unique("features");
    create_database(url, &db);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    std::fs::write(&job, features_job(url, &db)).unwrap();
    let output = run_until_idle(&job, dir.path()).output().unwrap();
    assert!(output.status.success(), "spindle run: {}", stderr(&output));

    let expected = expected_points(&String::from_utf8(output.stdout).unwrap());
    // 7 machines × 6000/7 readings 10 s apart: about 143 minutes each.
    assert!(
        (990..=1010).contains(&expected.len()),
        "{} windows",
        expected.len()
    );
    let some_null = expected
        .values()
        .filter(|(_, f)| !f.contains_key("rpm_sampled"));
    assert!(some_null.count() > 0, "some windows have a null field");
    let types = query(url, &db, &format!("SHOW FIELD KEYS FROM \"{MEASUREMENT}\""));
    assert_eq!(
        types["results"][0]["series"][0]["values"],
        json!([
            ["hot", "boolean"],
            ["note", "string"],
            ["readings", "integer"],
            ["rpm_sampled", "float"],
            ["temperature avg,°C=x", "float"]
        ])
    );
    let stored = stored_points(url, &db);
    assert_eq!(stored.len(), expected.len(), "points in InfluxDB");
    for (key, want) in &expected {
        assert_eq!(stored.get(key), Some(want), "point {key:?}");
    }
    let note = &stored.values().next().unwrap().1["note"];
    assert_eq!(note.as_str().unwrap(), "say \"hi\" \\ m-0001\nend");
    assert!(
        !dir.path().join("side/dead-letter.jsonl").exists(),
        "nothing refused"
    );
}

/// Raw readings, paced so the job runs for several seconds.
fn readings_job(url: &str, db: &str, readings: u64) -> String {
    readings_job_with(url, db, readings, "")
}

/// The same with more sink options (`extra` starts with a comma).
pub(crate) fn readings_job_with(url: &str, db: &str, readings: u64, extra: &str) -> String {
    format!(
        "CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP(3) NOT NULL, temperature DOUBLE
) WITH ('connector' = 'simulator', 'machines' = '10', 'count' = '{readings}', 'rate' = '2500',
        'batch.max-records' = '250');
CREATE TABLE readings (machine_id VARCHAR, seq BIGINT, ts TIMESTAMP(3), temperature DOUBLE)
WITH ('connector' = 'influxdb', 'api' = 'v1', 'url' = '{url}', 'database' = '{db}',
      'measurement' = 'readings', 'tags' = 'machine_id', 'batch.max-lines' = '500',
      'retry.initial-delay' = '100ms', 'retry.max-delay' = '1s'{extra});
INSERT INTO readings SELECT machine_id, seq, ts, temperature FROM sensors;
"
    )
}

/// Polls `condition` every 50 ms until it holds; panics after `limit`.
fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_server_stopped_mid_job_and_restarted_loses_nothing() {
    let server = PrivateServer::start();
    let db = unique("restart");
    create_database(&server.url, &db);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    let readings = 25_000;
    std::fs::write(&job, readings_job(&server.url, &db, readings)).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = run_until_idle(&job, dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let mut before_stop = 0;
    wait_for("the first points", Duration::from_secs(60), || {
        before_stop = count(&server.url, &db, "readings", "seq");
        before_stop > 0
    });
    server.stop();
    wait_for("the sink to retry", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).unwrap().contains("retry")
    });
    server.restart();
    wait_for("the job to finish", Duration::from_secs(120), || {
        child.try_wait().unwrap().is_some()
    });
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "spindle run: {log}");
    assert!(before_stop < readings, "the server was stopped mid-job");
    assert!(log.contains(&format!("rows_out={readings}")), "{log}");
    assert_eq!(count(&server.url, &db, "readings", "seq"), readings);
    let per_machine = query(
        &server.url,
        &db,
        "SELECT count(seq), sum(seq) FROM readings GROUP BY machine_id",
    );
    let series = per_machine["results"][0]["series"].as_array().unwrap();
    assert_eq!(series.len(), 10, "every machine");
    let total: u64 = series
        .iter()
        .map(|s| s["values"][0][1].as_u64().unwrap())
        .sum();
    assert_eq!(total, readings, "each reading once");
}

#[test]
fn the_shipped_features_job_writes_every_window_to_influxdb() {
    let url = influxdb();
    let db = unique("factory");
    create_database(url, &db);
    let topic = unique("influx-features");
    let simulate = command([
        "simulate",
        "--brokers",
        kafka(),
        "--topic",
        &topic,
        "--partitions",
        "2",
        "--count",
        "20000",
        "--machines",
        "50",
        "--quiet",
    ])
    .output()
    .unwrap();
    assert!(simulate.status.success(), "simulate: {}", stderr(&simulate));
    let dir = tempfile::tempdir().unwrap();
    let job = repo_root().join("jobs/features_to_influxdb.sql");
    let output = run_until_idle(&job, dir.path())
        .env("SENSOR_TOPIC", &topic)
        .env("KAFKA_BROKERS", kafka())
        .env("GROUP_ID", unique("group"))
        .env("INFLUX_URL", url)
        .env("INFLUX_API", "v1")
        .env("INFLUX_DB", &db)
        .env_remove("INFLUX_TOKEN")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "spindle run: {log}");
    let windows: u64 = log
        .lines()
        .find(|l| l.starts_with("run:"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("rows_out="))
        })
        .and_then(|v| v.parse().ok())
        .expect("rows_out in the summary");
    assert!(windows > 1000, "{windows} windows");
    assert_eq!(count(url, &db, "machine_features", "readings"), windows);
    let readings = query(url, &db, "SELECT sum(readings) FROM machine_features");
    assert_eq!(
        readings["results"][0]["series"][0]["values"][0][1],
        json!(20000)
    );
    let machines = query(
        url,
        &db,
        "SHOW TAG VALUES FROM machine_features WITH KEY = machine_id",
    );
    assert_eq!(
        machines["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}
