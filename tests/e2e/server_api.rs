//! `spindle server` as a user meets it: the real binary on a free port,
//! jobs submitted and managed through the REST API and the CLI (`spindle
//! submit`, `spindle jobs`, `spindle query --server`), the token, body
//! limits, located and masked errors, and a restart that resumes exactly the
//! jobs that should run. Sources are the in-process simulator: no broker.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use spindle_tests::http::{Response, request};
use spindle_tests::server::{Server, wait_for};
use spindle_tests::spindle::{command, stderr};

const TOKEN: &str = "e2e-token-5f0c";
const SECRET: &str = "e2e-secret-value-9a1d";

/// An endless job: 5 simulated machines paced at 500 readings/s, 10-second
/// windows into Parquet under `history/features`.
fn features_job(history: &Path) -> String {
    format!(
        "CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL, vibration DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'simulator', 'machines' = '5', 'interval' = '1s', 'rate' = '500');
CREATE TABLE features (
  machine_id VARCHAR NOT NULL, window_start TIMESTAMP(3) NOT NULL, readings BIGINT, vibration_max DOUBLE
) WITH ('connector' = 'parquet', 'path' = '{}', 'rolling.interval' = '1s');
INSERT INTO features
SELECT machine_id, window_start, count(*), max(vibration) FROM sensors
GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id;
",
        history.join("features").display()
    )
}

/// The same source into the console (a second, short-lived job).
const CONSOLE_JOB: &str = "CREATE TABLE sensors (machine_id VARCHAR NOT NULL)
WITH ('connector' = 'simulator', 'machines' = '2', 'rate' = '100');
CREATE TABLE out (machine_id VARCHAR NOT NULL) WITH ('connector' = 'console');
INSERT INTO out SELECT machine_id FROM sensors;
";

struct Api<'a> {
    server: &'a Server,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let auth = format!("Bearer {TOKEN}");
        let body = body.map(|b| b.to_string().into_bytes());
        request(
            &self.server.url,
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_deref(),
        )
    }

    fn job(&self, id: &str) -> Value {
        let answer = self.call("GET", &format!("/api/jobs/{id}"), None);
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    /// Waits until job `id` has read at least `records` records.
    fn wait_records(&self, id: &str, records: u64) -> Value {
        wait_for(
            &format!("job {id} to read {records} records"),
            Duration::from_secs(60),
            || {
                let job = self.job(id);
                assert_ne!(job["state"], "failed", "{job}");
                (job["counters"]["records_in"].as_u64()? >= records).then_some(job)
            },
        )
    }
}

/// Runs the CLI against `server` with the token in the environment.
fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    command(args)
        .args(["--server", &server.url])
        .env("SPINDLE_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {output}"))
}

#[test]
fn jobs_are_managed_over_the_api_and_cli_and_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (state, history) = (dir.path().join("state"), dir.path().join("history"));
    let env = [("SPINDLE_TOKEN", TOKEN), ("SPINDLE_E2E_SECRET", SECRET)];
    let server = Server::start(&state, &history, &[], &env);
    let api = Api { server: &server };

    // Submit through the CLI: the job is planned, accepted and runs.
    let job_file = dir.path().join("features.sql");
    std::fs::write(&job_file, features_job(&history)).unwrap();
    let output = cli(&server, &["submit", job_file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(field(&out, "name"), "features");
    assert_eq!(field(&out, "state"), "running");
    let features = field(&out, "id").to_string();
    let running = api.wait_records(&features, 500);
    assert_eq!(running["sources"], json!(["sensors"]));
    assert_eq!(running["sinks"], json!(["features"]));

    // A second job through the API, then stopped: it stays stopped.
    let answer = api.call(
        "POST",
        "/api/jobs",
        Some(&json!({"sql": CONSOLE_JOB, "name": "console"})),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let console = answer.json()["id"].as_str().unwrap().to_string();
    api.wait_records(&console, 1);
    let output = cli(&server, &["jobs", "stop", &console]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        field(&String::from_utf8_lossy(&output.stdout), "state"),
        "stopped"
    );

    // `spindle jobs list` shows both.
    let output = cli(&server, &["jobs", "list"]);
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        listing.contains(&features) && listing.contains(&console),
        "{listing}"
    );

    // History through the server, as soon as the first files are committed.
    let rows = wait_for("features in the history", Duration::from_secs(60), || {
        let output = cli(
            &server,
            &[
                "query",
                "--format",
                "csv",
                "SELECT count(*) AS n FROM features",
            ],
        );
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let n: u64 = text.lines().nth(1)?.trim().parse().ok()?;
        (output.status.success() && n > 0).then_some(n)
    });
    assert!(rows > 0);

    // Restart the server: the running job resumes, the stopped one does not.
    assert!(server.terminate().success());
    let server = Server::start(&state, &history, &[], &env);
    let api = Api { server: &server };
    let resumed = api.job(&features);
    assert_eq!(resumed["state"], "running", "{resumed}");
    assert_eq!(api.job(&console)["state"], "stopped");
    api.wait_records(&features, 500);
    let log = server.log_text();
    assert!(log.contains("job resumed"), "{log}");

    // Restart, then delete through the CLI.
    let output = cli(&server, &["jobs", "restart", &features]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        field(&String::from_utf8_lossy(&output.stdout), "state"),
        "running"
    );
    for id in [&features, &console] {
        let output = cli(&server, &["jobs", "delete", id]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(api.call("GET", "/api/jobs", None).json(), json!([]));
    assert_eq!(
        api.call("GET", &format!("/api/jobs/{features}"), None)
            .status,
        404
    );
    assert_eq!(std::fs::read_dir(state.join("jobs")).unwrap().count(), 0);
    assert!(server.terminate().success());
}

#[test]
fn the_api_refuses_strangers_big_bodies_and_bad_sql_without_leaking_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (state, history) = (dir.path().join("state"), dir.path().join("history"));
    let env = [("SPINDLE_TOKEN", TOKEN), ("SPINDLE_E2E_SECRET", SECRET)];
    let server = Server::start(&state, &history, &["--body-limit", "16KiB"], &env);
    let api = Api { server: &server };

    // Open: health and metrics. Everything else needs the token.
    assert_eq!(
        request(&server.url, "GET", "/healthz", &[], None).status,
        200
    );
    let metrics = request(&server.url, "GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for auth in [None, Some("Bearer nope"), Some(TOKEN)] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let answer = request(&server.url, "GET", "/api/jobs", &headers, None);
        assert_eq!(answer.status, 401, "{auth:?}");
        assert!(answer.body.is_empty());
    }
    let document = api.call("GET", "/api/openapi.json", None).json();
    assert!(document["paths"]["/api/query"]["post"].is_object());

    // Oversized bodies.
    let big = json!({"sql": "x".repeat(20 << 10)});
    let answer = api.call("POST", "/api/jobs", Some(&big));
    assert_eq!(answer.status, 413, "{}", answer.text());

    // Unknown ids.
    for (method, path) in [
        ("GET", "/api/jobs/0000"),
        ("POST", "/api/jobs/0000/stop"),
        ("DELETE", "/api/jobs/0000"),
    ] {
        assert_eq!(api.call(method, path, None).status, 404, "{method} {path}");
    }

    // Bad SQL through the CLI: located in the file, the secret masked.
    let bad = dir.path().join("bad.sql");
    std::fs::write(
        &bad,
        "CREATE TABLE s (machine_id VARCHAR NOT NULL)\n\
         WITH ('connector' = 'simulator', 'bad_data' = '${SPINDLE_E2E_SECRET}');\n\
         CREATE TABLE out (machine_id VARCHAR NOT NULL) WITH ('connector' = 'console');\n\
         INSERT INTO out SELECT machine_id FROM s;\n",
    )
    .unwrap();
    for validate in [true, false] {
        let mut args = vec!["submit", bad.to_str().unwrap()];
        if validate {
            args.push("--validate");
        }
        let output = cli(&server, &args);
        let message = stderr(&output);
        assert!(!output.status.success());
        assert!(
            message.contains(&format!("{}:2:", bad.display())),
            "{message}"
        );
        assert!(
            message.contains("***") && !message.contains(SECRET),
            "{message}"
        );
    }
    let syntax = api.call(
        "POST",
        "/api/jobs/validate",
        Some(&json!({"sql": "-- a job\nINSERT INTO x SELEKT 1;"})),
    );
    assert_eq!(syntax.status, 422);
    let problem = &syntax.json()["errors"][0];
    assert_eq!(
        (&problem["line"], &problem["column"]),
        (&json!(2), &json!(15)),
        "{problem}"
    );

    // Queries: only SELECT.
    let copy = api.call(
        "POST",
        "/api/query",
        Some(&json!({"sql": format!("COPY (SELECT 1) TO '{}/x.csv'", dir.path().display())})),
    );
    assert_eq!(copy.status, 400, "{}", copy.text());
    assert!(!dir.path().join("x.csv").exists());

    let log = server.log_text();
    assert!(server.terminate().success());
    assert!(!log.contains(SECRET), "{log}");
}

/// Every job the project ships (`jobs/`, and `docker/jobs/` for the
/// compose deployment) parses and plans: validated through the API, which
/// plans without connecting to Kafka or InfluxDB.
#[test]
fn every_shipped_job_plans() {
    let dir = tempfile::tempdir().unwrap();
    let (state, history) = (dir.path().join("state"), dir.path().join("history"));
    let server = Server::start(&state, &history, &[], &[("SPINDLE_TOKEN", TOKEN)]);
    let api = Api { server: &server };
    let root = spindle_tests::services::repo_root();
    let mut planned = Vec::new();
    for folder in ["jobs", "docker/jobs"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "sql") {
                continue;
            }
            let sql = std::fs::read_to_string(&path).unwrap();
            let answer = api.call("POST", "/api/jobs/validate", Some(&json!({ "sql": sql })));
            assert_eq!(answer.status, 200, "{}: {}", path.display(), answer.text());
            assert!(answer.json()["pipelines"].as_u64().unwrap() >= 1);
            planned.push(path);
        }
    }
    assert!(planned.len() >= 5, "{planned:?}");
    assert!(planned.iter().any(|p| p.ends_with("docker/jobs/plant.sql")));
    assert!(server.terminate().success());
}
