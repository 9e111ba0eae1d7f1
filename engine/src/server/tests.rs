//! The router in process: the route table against the OpenAPI document,
//! the token, body limits, unknown ids, located job errors, masked secrets.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

const SECRET: &str = "s3cr3t-hunter2";

/// The environment jobs see in these tests.
fn env(name: &str) -> Option<String> {
    match name {
        "SPINDLE_TEST_SECRET" => Some(SECRET.into()),
        _ => None,
    }
}

pub(super) fn app(state_dir: &Path, token: Option<&str>, body_limit: usize) -> Router {
    let metrics = Arc::new(Metrics::new().unwrap());
    let manager = JobManager::new(state_dir, Arc::clone(&metrics), env).unwrap();
    let app = AppState {
        manager,
        metrics,
        history: Arc::from(state_dir.join("history").display().to_string().as_str()),
        limits: QueryLimits {
            max_rows: 100,
            timeout: Duration::from_secs(10),
            memory: 64 << 20,
        },
        plant: Arc::new(Plant::new(
            &state_dir.join("history").display().to_string(),
            &PlantConfig {
                alerts: "alerts".into(),
                features: "features".into(),
                models: Some(state_dir.join("models")),
            },
        )),
    };
    router(app, Token(token.map(Arc::from)), body_limit)
}

pub(super) async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

pub(super) fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(body));
    })
}

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let document: Value = serde_json::from_str(openapi::DOCUMENT).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(routed, documented);
}

#[tokio::test]
async fn every_route_answers_on_its_method() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    for (method, path, _) in routes() {
        let path = path
            .replace("{id}", "no-such-job")
            .replace("{file}", "app.js");
        let body = (method == Method::POST).then(|| "{}".to_string());
        let (status, _) = call(&router, method.as_str(), &path, None, body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        // An unknown id is the handler's 404 (with a JSON body), not a missing route.
        if status == StatusCode::NOT_FOUND {
            assert!(path.contains("no-such-job"), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn with_a_token_only_health_and_metrics_are_open() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), Some("let-me-in"), 1 << 20);
    let open = ["/healthz", "/metrics", "/", "/assets/{file}"];
    for path in open {
        let path = path.replace("{file}", "app.js");
        let (status, _) = call(&router, "GET", &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = call(&router, "GET", "/assets/other.js", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "only the shell's own files are open"
    );
    for (method, path, _) in routes() {
        if open.contains(&path) {
            continue;
        }
        for token in [None, Some("wrong"), Some("let-me-in-not"), Some("")] {
            let (status, body) = call(&router, method.as_str(), path, token, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert!(body.is_empty(), "a 401 carries no detail");
        }
    }
    let (status, body) = call(&router, "GET", "/api/jobs", Some("let-me-in"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body), json!([]));
    let (status, _) = call(&router, "GET", "/api/openapi.json", Some("let-me-in"), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1024);
    let big = json!({ "sql": format!("SELECT 1 -- {}", "x".repeat(2048)) }).to_string();
    for path in [
        "/api/jobs",
        "/api/jobs/validate",
        "/api/query",
        "/api/predict",
    ] {
        let (status, body) = call(&router, "POST", path, None, Some(big.clone())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(json_of(&body)["error"].is_string());
    }
}

#[tokio::test]
async fn unknown_ids_are_404_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    for (method, path) in [
        ("GET", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/stop"),
        ("POST", "/api/jobs/nope/restart"),
        ("DELETE", "/api/jobs/nope"),
    ] {
        let (status, body) = call(&router, method, path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(json_of(&body)["error"], "no job with id \"nope\"");
    }
}

#[tokio::test]
async fn bad_bodies_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    for body in ["not json", "{}", r#"{"sql": "x", "extra": 1}"#] {
        let (status, answer) = call(&router, "POST", "/api/jobs", None, Some(body.into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            json_of(&answer)["error"]
                .as_str()
                .unwrap()
                .contains("request body")
        );
    }
    let bad_name = json!({"sql": "x", "name": "no spaces please"}).to_string();
    let (status, _) = call(&router, "POST", "/api/jobs", None, Some(bad_name)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A job with a syntax error on line 3, after a substituted value on the
/// same line (so the column must be mapped back to the submitted text).
const BAD_JOB: &str = "CREATE TABLE s (machine_id VARCHAR NOT NULL)\n\
WITH ('connector' = 'simulator', 'seed' = '${SEED:-7}');\n\
INSERT INTO nowhere SELECT '${SEED:-7}', machine_id FROMM s;\n";

#[tokio::test]
async fn bad_sql_is_422_located_in_the_submitted_text() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    for path in ["/api/jobs/validate", "/api/jobs"] {
        let body = json!({ "sql": BAD_JOB }).to_string();
        let (status, answer) = call(&router, "POST", path, None, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let answer = json_of(&answer);
        let problem = &answer["errors"][0];
        assert_eq!(
            (&problem["line"], &problem["column"]),
            (&json!(3), &json!(59)),
            "{answer}"
        );
        assert!(
            problem["message"]
                .as_str()
                .unwrap()
                .contains("syntax error"),
            "{answer}"
        );
    }
    let (_, list) = call(&router, "GET", "/api/jobs", None, None).await;
    assert_eq!(json_of(&list), json!([]), "a refused job is not accepted");
}

#[tokio::test]
async fn secrets_from_the_environment_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    // The secret lands in an option whose bad value the error quotes.
    let job = "CREATE TABLE s (machine_id VARCHAR NOT NULL)\n\
               WITH ('connector' = 'simulator', 'bad_data' = '${SPINDLE_TEST_SECRET}');\n\
               CREATE TABLE out (machine_id VARCHAR NOT NULL) WITH ('connector' = 'console');\n\
               INSERT INTO out SELECT machine_id FROM s;\n";
    for path in ["/api/jobs/validate", "/api/jobs"] {
        let body = json!({ "sql": job }).to_string();
        let (status, answer) = call(&router, "POST", path, None, Some(body)).await;
        let text = String::from_utf8(answer).unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            text.contains("***"),
            "the value is masked, not dropped: {text}"
        );
        assert!(text.contains("\"line\":2"), "{text}");
    }
}

#[tokio::test]
async fn a_submitted_job_runs_to_the_end_and_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path(), None, 1 << 20);
    let out = dir.path().join("out");
    let job = format!(
        "CREATE TABLE s (machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL,\n\
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)\n\
         WITH ('connector' = 'simulator', 'machines' = '3', 'count' = '300', 'seed' = '1');\n\
         CREATE TABLE out (machine_id VARCHAR NOT NULL, n BIGINT NOT NULL)\n\
         WITH ('connector' = 'parquet', 'path' = '{}');\n\
         INSERT INTO out SELECT machine_id, count(*) FROM s GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id;\n",
        out.display()
    );
    let body = json!({ "sql": job, "name": "features", "until_idle": true }).to_string();
    let (status, answer) = call(&router, "POST", "/api/jobs", None, Some(body.clone())).await;
    let answer = json_of(&answer);
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let (status, _) = call(&router, "POST", "/api/jobs", None, Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let (_, view) = call(&router, "GET", &format!("/api/jobs/{id}"), None, None).await;
        let view = json_of(&view);
        if view["state"] != "running" || std::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["state"], "finished", "{finished}");
    assert_eq!(finished["counters"]["records_in"], 300);
    assert_eq!(finished["sql"], job);
    let (_, metrics) = call(&router, "GET", "/metrics", None, None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(r#"spindle_sink_rows_total{job="features",sink="out"}"#),
        "{metrics}"
    );
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("jobs"))
        .unwrap()
        .collect();
    assert_eq!(stored.len(), 1);
    let (status, _) = call(&router, "DELETE", &format!("/api/jobs/{id}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&router, "GET", &format!("/api/jobs/{id}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        std::fs::read_dir(dir.path().join("jobs")).unwrap().count(),
        0
    );
    let (_, metrics) = call(&router, "GET", "/metrics", None, None).await;
    assert!(
        !String::from_utf8(metrics)
            .unwrap()
            .contains(r#"job="features""#)
    );
}
