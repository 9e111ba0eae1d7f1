//! The plant endpoints and the web dashboard on a live job: `spindle server`
//! with a token runs a job (the in-process simulator, no broker) that writes
//! windowed features and alert rows to the Parquet history. Through the API:
//! the alerts come back, are counted, and a reading is scored against the
//! machine's own history. In headless Chromium (`chromedriver`): the page asks
//! for the token, shows the running job, a chart of a machine with data and
//! alert markers, the latest alerts, runs a query and shows its table and
//! chart; a screenshot is kept under `test-artifacts/`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use spindle_tests::browser::{Browser, artifacts_dir};
use spindle_tests::http::request;
use spindle_tests::server::{Server, wait_for};

const TOKEN: &str = "dashboard-token-7d2e";

/// Five machines from now on at ten simulated seconds per wall second:
/// 10-second feature windows to `features`, Gaussian-limit alerts on
/// vibration (a loose limit, so there are plenty) to `alerts`.
fn plant_job(history: &Path) -> String {
    let start = humantime::format_rfc3339_seconds(SystemTime::now());
    format!(
        "CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL,
  temperature DOUBLE, vibration DOUBLE, power DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'simulator', 'machines' = '5', 'interval' = '1s', 'rate' = '50',
        'start' = '{start}');
CREATE TABLE features (
  machine_id VARCHAR NOT NULL, window_start TIMESTAMP(3) NOT NULL, readings BIGINT NOT NULL,
  temperature_avg DOUBLE, temperature_stddev DOUBLE, vibration_avg DOUBLE, vibration_stddev DOUBLE,
  vibration_max DOUBLE, power_avg DOUBLE, power_stddev DOUBLE
) WITH ('connector' = 'parquet', 'path' = '{features}', 'rolling.interval' = '1s');
CREATE TABLE alerts (
  machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL, model VARCHAR NOT NULL,
  score DOUBLE, threshold DOUBLE, reason VARCHAR
) WITH ('connector' = 'parquet', 'path' = '{alerts}', 'rolling.interval' = '1s');
INSERT INTO features
SELECT machine_id, window_start, count(*), avg(temperature), stddev(temperature),
  avg(vibration), stddev(vibration), max(vibration), avg(power), stddev(power)
FROM sensors GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
INSERT INTO alerts
SELECT machine_id, ts, 'vibration_limits', g['score'], g['threshold'], g['reason']
FROM (SELECT machine_id, ts, gaussian_anomaly(vibration, 0.9, 20) OVER w AS g
      FROM sensors WINDOW w AS (PARTITION BY machine_id ORDER BY ts)) scored
WHERE g['flag'];
",
        features = history.join("features").display(),
        alerts = history.join("alerts").display(),
    )
}

fn api(server: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string().into_bytes());
    let answer = request(
        &server.url,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_deref(),
    );
    (answer.status, answer.json())
}

/// The plant endpoints on the job's output, through the real binary.
fn check_plant_endpoints(server: &Server) -> String {
    let alerts = wait_for("alerts in the history", Duration::from_secs(90), || {
        let (status, body) = api(server, "GET", "/api/anomalies?since=1h&limit=5", None);
        assert_eq!(status, 200, "{body}");
        (!body["alerts"].as_array()?.is_empty()).then_some(body)
    });
    let first = &alerts["alerts"][0];
    assert_eq!(first["model"], "vibration_limits", "{alerts}");
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .starts_with("value out of limits")
    );
    let machine = first["machine_id"].as_str().unwrap().to_string();
    let (status, one) = api(
        server,
        "GET",
        &format!("/api/anomalies?machine={machine}"),
        None,
    );
    assert_eq!(status, 200);
    assert!(
        one["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["machine_id"] == machine.as_str())
    );
    let (status, counts) = api(server, "GET", "/api/anomalies/count?range=1h", None);
    assert_eq!(status, 200, "{counts}");
    assert!(counts["total"].as_u64().unwrap() >= 1, "{counts}");
    assert_eq!(counts["counts"][0]["model"], "vibration_limits");
    let (status, bad) = api(server, "GET", "/api/anomalies?since=last-tuesday", None);
    assert_eq!(status, 400, "{bad}");
    let unauthenticated = request(&server.url, "GET", "/api/anomalies", &[], None);
    assert_eq!(unauthenticated.status, 401);

    // A reading scored against the machine's own windows (100 readings needed).
    let reading = |vibration: f64| json!({"model": "gaussian", "reading": {"machine_id": machine, "vibration": vibration}});
    let normal = wait_for(
        "a baseline of 100 readings",
        Duration::from_secs(90),
        || {
            let (status, body) = api(server, "POST", "/api/predict", Some(&reading(2.0)));
            assert!(status == 200 || status == 422, "{body}");
            (status == 200).then_some(body)
        },
    );
    let mean = normal["sensors"][0]["mean"].as_f64().unwrap();
    let sd = normal["sensors"][0]["std_dev"].as_f64().unwrap();
    let (_, usual) = api(server, "POST", "/api/predict", Some(&reading(mean)));
    assert_eq!(usual["anomaly"], false, "{usual}");
    let (_, wild) = api(
        server,
        "POST",
        "/api/predict",
        Some(&reading(mean + 20.0 * sd)),
    );
    assert_eq!(wild["anomaly"], true, "{wild}");
    let (status, _) = api(
        server,
        "POST",
        "/api/predict",
        Some(
            &json!({"model": "no-such-model", "reading": {"machine_id": machine, "vibration": 1.0}}),
        ),
    );
    assert_eq!(status, 404);
    machine
}

#[test]
fn the_dashboard_shows_a_live_job_its_machines_alerts_and_a_query_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (state, history) = (dir.path().join("state"), dir.path().join("history"));
    let server = Server::start(&state, &history, &[], &[("SPINDLE_TOKEN", TOKEN)]);
    let (status, job) = api(
        &server,
        "POST",
        "/api/jobs",
        Some(&json!({"sql": plant_job(&history), "name": "plant"})),
    );
    assert_eq!(status, 201, "{job}");
    check_plant_endpoints(&server);

    // The page shell is open; its data calls need the token the user types.
    let shell = request(&server.url, "GET", "/", &[], None);
    assert_eq!(shell.status, 200);
    assert!(
        shell
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    let browser = Browser::start(dir.path(), 1400, 1500);
    browser.goto(&format!("{}/", server.url));
    let long = Duration::from_secs(90);
    browser.wait_until(
        "the page to ask for the token",
        long,
        "return !document.getElementById('token-form').classList.contains('hidden');",
    );
    browser.type_into("#token", TOKEN);
    browser.click("#token-save");
    browser.wait_until(
        "the running job in the jobs table",
        long,
        "return document.querySelector('#jobs tr[data-job=\"plant\"][data-state=\"running\"]') !== null;",
    );
    browser.wait_until(
        "a machine chart with data and alert markers",
        long,
        "return [...document.querySelectorAll('#charts .chart')]
           .some(c => Number(c.dataset.points) > 1 && Number(c.dataset.markers) > 0);",
    );
    browser.wait_until(
        "the latest alerts",
        long,
        "return document.querySelectorAll('#alerts tbody tr').length > 0;",
    );
    let rates = browser.wait_until(
        "a records rate",
        long,
        "const cell = document.querySelector('#jobs tr[data-job=\"plant\"] td:nth-child(3)');
         return cell && cell.textContent !== '' ? cell.textContent : null;",
    );
    assert!(rates.as_str().is_some());

    // A query: the result table and its chart.
    browser.type_into(
        "#sql",
        "SELECT machine_id, count(*) AS windows FROM features GROUP BY machine_id ORDER BY machine_id",
    );
    browser.click("#run");
    let first = browser.wait_until(
        "the query's result table",
        long,
        "const cell = document.querySelector('#result tbody tr td');
         return cell ? cell.textContent : null;",
    );
    assert!(first.as_str().unwrap().starts_with("m-"), "{first}");
    browser.wait_until(
        "the query's chart",
        long,
        "const chart = document.querySelector('#result-chart .chart');
         return chart !== null && Number(chart.dataset.points) === 5;",
    );
    for id in ["status", "sql-status"] {
        let shown = browser.script(&format!(
            "const e = document.getElementById('{id}'); return [e.className, e.textContent];"
        ));
        assert_eq!(shown[0], "muted", "#{id} shows no error: {shown}");
    }

    let screenshot = artifacts_dir().join("dashboard.png");
    browser.screenshot(&screenshot);
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("dashboard screenshot: {}", screenshot.display());
    drop(browser);
    assert!(server.terminate().success());
}
