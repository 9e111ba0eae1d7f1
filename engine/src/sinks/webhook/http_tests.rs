//! The webhook sink against a local HTTP server (`sinks/test_http.rs`):
//! the message format, template escaping, the cool-down in event time and
//! on an injected clock, retry after 503 with `Retry-After`, no retry on 400.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde_json::{Value, json};

use super::WebhookSink;
use crate::sinks::Sink;
use crate::sinks::test_http::{Reply, Server, table};

const COLUMNS: &str = "machine_id VARCHAR, ts TIMESTAMP(3), model VARCHAR, score DOUBLE, \
                       threshold DOUBLE, reason VARCHAR";

/// The sink of a table with [`COLUMNS`] posting to `server` with `options`.
fn sink(server: &Server, options: &str, dir: &std::path::Path) -> WebhookSink {
    let sep = if options.is_empty() { "" } else { ", " };
    let (table, mut with, context) = table(
        &format!(
            "CREATE TABLE alerts ({COLUMNS}) WITH ('connector' = 'webhook', \
             'url' = '{}/hooks/abc'{sep}{options});",
            server.url
        ),
        dir,
    );
    let sink = WebhookSink::open(&table, &mut with, &context).unwrap();
    with.finish(super::OPTIONS).unwrap();
    sink
}

/// Alerts: (machine, event time in ms, reason).
fn alerts(rows: &[(&str, i64, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("model", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, true),
    ]);
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            rows.iter().map(|r| r.1),
        )),
        Arc::new(StringArray::from_iter_values(vec!["ewma"; n])),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| 4.5 + i as f64),
        )),
        Arc::new(Float64Array::from_iter_values(vec![3.0; n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn bodies(server: &Server) -> Vec<Value> {
    server
        .requests()
        .iter()
        .map(|r| serde_json::from_str(&r.text()).unwrap())
        .collect()
}

const MINUTE: i64 = 60_000;
/// 2026-01-01T00:00:00Z in ms.
const T0: i64 = 1_767_225_600_000;

#[tokio::test]
async fn each_row_is_posted_as_a_json_object_with_rfc3339_time() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(&server, "", dir.path());
    let batch = alerts(&[("m-1", T0 + 250, "vibration"), ("m-2", T0, "temp")]);
    sink.write(batch).await.unwrap();
    sink.flush().await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/hooks/abc");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let mut got = bodies(&server);
    got.sort_by_key(|b| b["machine_id"].as_str().unwrap().to_string());
    assert_eq!(
        got[0],
        json!({"machine_id": "m-1", "ts": "2026-01-01T00:00:00.250Z", "model": "ewma",
               "score": 4.5, "threshold": 3.0, "reason": "vibration"})
    );
    assert_eq!(got[1]["ts"], "2026-01-01T00:00:00Z");
    assert_eq!(
        sink.sender
            .as_ref()
            .unwrap()
            .counters()
            .sent
            .load(Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn template_values_are_json_escaped() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let template = r#"{"text": "{machine_id} {reason} (score {score} > {threshold}) at {ts}"}"#;
    let mut sink = sink(&server, &format!("'template' = '{template}'"), dir.path());
    let machine = "line \"A\" \\ m-1";
    let reason = "hot\nand\tloud {score}";
    sink.write(alerts(&[(machine, T0, reason)])).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        bodies(&server),
        [json!({"text": format!(
            "{machine} {reason} (score 4.5 > 3.0) at 2026-01-01T00:00:00Z"
        )})]
    );
}

#[tokio::test]
async fn cooldown_in_event_time_suppresses_and_counts_then_sends_again() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = "'key.column' = 'machine_id', 'time.column' = 'ts', 'cooldown' = '5m'";
    let mut sink = sink(&server, options, dir.path());
    let first = alerts(&[
        ("m-1", T0, "a"),
        ("m-2", T0, "b"),
        ("m-1", T0 + MINUTE, "c"),
        ("m-1", T0 + 5 * MINUTE - 1, "d"),
    ]);
    sink.write(first).await.unwrap();
    // The cool-down holds across batches.
    let second = alerts(&[
        ("m-2", T0 + 2 * MINUTE, "e"),
        ("m-1", T0 + 5 * MINUTE, "f"),
        ("m-1", T0 + 9 * MINUTE, "g"),
        ("m-2", T0 + 5 * MINUTE, "h"),
    ]);
    sink.write(second).await.unwrap();
    sink.flush().await.unwrap();
    let mut sent: Vec<String> = bodies(&server)
        .iter()
        .map(|b| b["reason"].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    assert_eq!(sent, ["a", "b", "f", "h"]);
    assert_eq!(sink.cooldown.suppressed, 4);
    assert!(sink.summary().contains("4 suppressed by the cool-down"));
}

static NOW: AtomicI64 = AtomicI64::new(0);

fn test_clock() -> i64 {
    NOW.load(Ordering::SeqCst)
}

#[tokio::test]
async fn cooldown_on_the_wall_clock_uses_the_time_rows_arrive() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = "'key.column' = 'machine_id', 'cooldown' = '5m'";
    let mut sink = sink(&server, options, dir.path()).with_clock(test_clock);
    // Event times are all equal: only the (injected) arrival time counts.
    let row = |reason| alerts(&[("m-1", T0, reason)]);
    for (now, reason) in [
        (0, "a"),
        (4 * MINUTE, "b"),
        (5 * MINUTE, "c"),
        (6 * MINUTE, "d"),
    ] {
        NOW.store(now, Ordering::SeqCst);
        sink.write(row(reason)).await.unwrap();
    }
    sink.flush().await.unwrap();
    let sent: Vec<Value> = bodies(&server)
        .iter()
        .map(|b| b["reason"].clone())
        .collect();
    assert_eq!(sent, [json!("a"), json!("c")]);
    assert_eq!(sink.cooldown.suppressed, 2);
}

#[tokio::test]
async fn a_503_is_retried_after_retry_after() {
    let server = Server::start(vec![
        Reply::Status(503, "Retry-After: 1\r\n", "busy"),
        Reply::Status(200, "", "ok"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    // Backoff alone would wait at most 1 ms: a 1 s pause is Retry-After's.
    let options = "'retry.initial-delay' = '1ms', 'retry.max-delay' = '1ms'";
    let mut sink = sink(&server, options, dir.path());
    let started = Instant::now();
    sink.write(alerts(&[("m-1", T0, "a")])).await.unwrap();
    sink.flush().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same message again");
    let c = sink.sender.as_ref().unwrap().counters();
    assert_eq!(
        (
            c.sent.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_the_message_is_dead_lettered() {
    let server = Server::start(vec![Reply::Status(400, "", "invalid_payload")]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(&server, "", dir.path());
    sink.write(alerts(&[("m-1", T0, "a"), ("m-2", T0, "b")]))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        server.requests().len(),
        2,
        "one request per message, no retry"
    );
    let c = sink.sender.as_ref().unwrap().counters();
    assert_eq!(c.refused.load(Ordering::Relaxed), 1);
    assert_eq!(c.sent.load(Ordering::Relaxed), 1);
    assert_eq!(c.retries.load(Ordering::Relaxed), 0);
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
    let entry: Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    let text = entry.to_string();
    assert!(text.contains("HTTP 400: invalid_payload"), "{text}");
    assert!(text.contains("alerts"), "names the sink: {text}");
}

#[tokio::test]
async fn an_empty_url_turns_the_sink_off() {
    let dir = tempfile::tempdir().unwrap();
    let (table, mut with, context) = table(
        &format!(
            "CREATE TABLE alerts ({COLUMNS}) WITH ('connector' = 'webhook', 'url' = '', \
             'cooldown' = '1m', 'timeout' = '1s');"
        ),
        dir.path(),
    );
    let mut sink = WebhookSink::open(&table, &mut with, &context).unwrap();
    with.finish(super::OPTIONS).unwrap();
    sink.write(alerts(&[("m-1", T0, "a")])).await.unwrap();
    sink.close().await.unwrap();
    assert!(
        sink.summary().contains("1 rows; not sent"),
        "{}",
        sink.summary()
    );
}

#[tokio::test]
async fn a_404_stops_the_job_without_showing_the_path() {
    let server = Server::start(vec![Reply::Status(404, "", "no such hook")]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(&server, "", dir.path());
    sink.write(alerts(&[("m-1", T0, "a")])).await.unwrap();
    let error = sink.flush().await.unwrap_err().to_string();
    assert!(error.contains("sink alerts"), "{error}");
    assert!(error.contains("HTTP 404: no such hook"), "{error}");
    assert!(!error.contains("abc"), "the URL's path stays out: {error}");
}
