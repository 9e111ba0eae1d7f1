//! Prometheus scraping `spindle server`: Debian's Prometheus
//! (`scripts/prometheus.sh`) gets the server as a file_sd target, a job
//! runs, and Prometheus' own HTTP query API must see the job's counters
//! move — and, once the job is stopped, settle on exactly what the job
//! service reports.

use std::time::Duration;

use serde_json::{Value, json};
use spindle_tests::http::{encode, request};
use spindle_tests::server::{Server, wait_for};
use spindle_tests::services::{prometheus, prometheus_targets, unique};

/// One number from an instant query (`None` while there is no series).
fn instant(prometheus: &str, query: &str) -> Option<f64> {
    let answer = request(
        prometheus,
        "GET",
        &format!("/api/v1/query?query={}", encode(query)),
        &[],
        None,
    );
    assert_eq!(answer.status, 200, "{query}: {}", answer.text());
    let value = answer.json();
    let result = value["data"]["result"].as_array()?.first()?.clone();
    result["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_sees_a_jobs_counters_move_and_settle_on_the_servers_totals() {
    let prometheus = prometheus();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &dir.path().join("history"),
        &[],
        &[],
    );
    let address = server.url.trim_start_matches("http://").to_string();
    let name = unique("prom").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let target = prometheus_targets().join(format!("{name}.json"));
    std::fs::write(&target, json!([{ "targets": [address] }]).to_string()).unwrap();

    let job = "CREATE TABLE sensors (machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'simulator', 'machines' = '4', 'interval' = '1s', 'rate' = '400');
CREATE TABLE counts (machine_id VARCHAR NOT NULL, n BIGINT) WITH ('connector' = 'console');
INSERT INTO counts SELECT machine_id, count(*) FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
";
    let body = json!({ "sql": job, "name": name }).to_string();
    let answer = request(
        &server.url,
        "POST",
        "/api/jobs",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();

    let records = format!(r#"sum(spindle_source_records_total{{job="{name}"}})"#);
    let rows = format!(r#"spindle_sink_rows_total{{job="{name}",sink="counts"}}"#);
    let batches = format!(r#"spindle_micro_batch_duration_seconds_count{{job="{name}"}}"#);
    let first = wait_for(
        "Prometheus to scrape the job",
        Duration::from_secs(90),
        || instant(prometheus, &records).filter(|v| *v > 0.0),
    );
    wait_for(
        "the records counter to move",
        Duration::from_secs(60),
        || instant(prometheus, &records).filter(|v| *v > first),
    );
    wait_for("windows to reach the sink", Duration::from_secs(60), || {
        instant(prometheus, &rows).filter(|v| *v > 0.0)
    });
    assert!(instant(prometheus, &batches).unwrap() > 0.0);
    assert_eq!(
        instant(
            prometheus,
            &format!(r#"spindle_job_running{{job="{name}"}}"#)
        ),
        Some(1.0)
    );

    // Stopped, the counters stop: Prometheus settles on the server's totals.
    let stopped = request(
        &server.url,
        "POST",
        &format!("/api/jobs/{id}/stop"),
        &[],
        None,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    let counters: Value = stopped.json()["counters"].clone();
    let total_in = counters["records_in"].as_f64().unwrap();
    let total_out = counters["rows_out"].as_f64().unwrap();
    // The gauge drops after the counters' last move, so a scrape can fall in
    // between: wait for all three.
    let running = format!(r#"spindle_job_running{{job="{name}"}}"#);
    wait_for(
        "Prometheus to see the final totals and the job stopped",
        Duration::from_secs(30),
        || {
            let seen = (
                instant(prometheus, &records)?,
                instant(prometheus, &rows)?,
                instant(prometheus, &running)?,
            );
            (seen == (total_in, total_out, 0.0)).then_some(())
        },
    );
    std::fs::remove_file(&target).unwrap();
    assert!(server.terminate().success());
}
