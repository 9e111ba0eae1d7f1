//! The sink against a local HTTP server (`sinks/test_http.rs`): each API's
//! request (method, path, query, headers, gzip body), retries, splitting on
//! 413, refusals, backpressure.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tokio::sync::Semaphore;

use super::InfluxDbSink;
use crate::sinks::Sink;
use crate::sinks::test_http::{Reply, Request, Server, table};

/// The sink of `CREATE TABLE t (machine_id VARCHAR, ts TIMESTAMP(3), v DOUBLE)`
/// with `options`, its dead letters under `dir`.
fn sink(options: &str, dir: &std::path::Path) -> InfluxDbSink {
    let (table, mut with, context) = table(
        &format!(
            "CREATE TABLE t (machine_id VARCHAR, ts TIMESTAMP(3), v DOUBLE) \
             WITH ('connector' = 'influxdb', 'measurement' = 'm', 'tags' = 'machine_id', {options});"
        ),
        dir,
    );
    let sink = InfluxDbSink::open(&table, &mut with, &context).unwrap();
    with.finish(super::OPTIONS).unwrap();
    sink
}

/// A v1 sink to `server`'s database `d` with `extra` options.
fn v1_sink(server: &Server, extra: &str, dir: &std::path::Path) -> InfluxDbSink {
    let sep = if extra.is_empty() { "" } else { ", " };
    sink(
        &format!(
            "'url' = '{}', 'api' = 'v1', 'database' = 'd'{sep}{extra}",
            server.url
        ),
        dir,
    )
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

fn rows(n: usize) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("v", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("m-{i}")),
        )),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            (0..n as i64).map(|i| 1_000 + i),
        )),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| i as f64 + 0.5),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn expected_lines(n: usize, ts_factor: i64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "m,machine_id=m-{i} v={} {}\n",
                i as f64 + 0.5,
                (1_000 + i as i64) * ts_factor
            )
        })
        .collect()
}

async fn write_all(sink: &mut InfluxDbSink, batch: RecordBatch) -> crate::error::Result<()> {
    sink.write(batch).await?;
    sink.commit().await
}

#[tokio::test]
async fn v1_posts_to_write_with_db_rp_precision_gzip_and_token() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut sink = sink(
        &format!(
            "'url' = '{}', 'api' = 'v1', 'database' = 'factory', 'retention-policy' = 'autogen', \
             'precision' = 'ms', 'token.file' = '{}'",
            server.url,
            token.display()
        ),
        dir.path(),
    );
    write_all(&mut sink, rows(3)).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/write?db=factory&rp=autogen&precision=ms");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("authorization"), Some("Token s3cret"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), expected_lines(3, 1));
    assert!(!format!("{sink:?}").contains("s3cret"));
}

#[tokio::test]
async fn v2_posts_to_api_v2_write_with_bucket_and_org() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    // Setting a variable needs `unsafe` (forbidden here); cargo sets this one
    // for every test process.
    let var = "CARGO_PKG_NAME";
    let mut sink = sink(
        &format!(
            "'url' = '{}/', 'api' = 'v2', 'bucket' = 'plant/b', 'org' = 'acme', \
             'gzip' = 'false', 'token.env' = '{var}'",
            server.url
        ),
        dir.path(),
    );
    write_all(&mut sink, rows(2)).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/api/v2/write?bucket=plant%2Fb&org=acme&precision=ns"
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("authorization"), Some("Token spindle-engine"));
    assert_eq!(r.text(), expected_lines(2, 1_000_000));
}

#[tokio::test]
async fn v3_posts_to_write_lp_with_bearer_token_and_partial_flags() {
    let server = Server::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok3").unwrap();
    let mut sink = sink(
        &format!(
            "'url' = '{}', 'database' = 'factory', 'no-sync' = 'true', 'precision' = 'us', \
             'token.file' = '{}'",
            server.url,
            token.display()
        ),
        dir.path(),
    );
    write_all(&mut sink, rows(2)).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        r.target,
        "/api/v3/write_lp?db=factory&precision=microsecond&accept_partial=true&no_sync=true"
    );
    assert_eq!(r.header("authorization"), Some("Bearer tok3"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.text(), expected_lines(2, 1_000));
}

#[tokio::test]
async fn network_errors_429_and_5xx_are_retried_with_the_same_body() {
    let server = Server::start(vec![
        Reply::Hang,
        Reply::Status(503, "Retry-After: 0\r\n", "{\"error\":\"busy\"}"),
        Reply::Status(429, "", ""),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = v1_sink(&server, "'retry.initial-delay' = '1ms'", dir.path());
    write_all(&mut sink, rows(4)).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests
            .iter()
            .all(|r| r.text() == expected_lines(4, 1_000_000))
    );
    let c = sink.writer.counters();
    assert_eq!(count(&c.retries), 3);
    assert_eq!(count(&c.written), 4);
}

#[tokio::test]
async fn a_batch_too_large_is_split_until_it_fits() {
    let server = Server::start(vec![
        Reply::Status(413, "", "{\"error\":\"Request Entity Too Large\"}"),
        Reply::Status(413, "", ""),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = v1_sink(&server, "'gzip' = 'false'", dir.path());
    write_all(&mut sink, rows(5)).await.unwrap();
    let sizes: Vec<usize> = server
        .requests()
        .iter()
        .map(|r| r.text().lines().count())
        .collect();
    // 5 → 413 → 2 (413 → 1 + 1) + 3.
    assert_eq!(sizes, [5, 2, 1, 1, 3]);
    let written: String = server.requests()[2..].iter().map(Request::text).collect();
    assert_eq!(written, expected_lines(5, 1_000_000));
}

#[tokio::test]
async fn refused_lines_go_to_the_dead_letter_output_with_the_reason() {
    let body = "{\"error\":\"partial write of line protocol occurred\",\"data\":[{\"original_line\":\"m,machine_id=m-1 v=1.5 1001000000\",\"line_number\":2,\"error_message\":\"invalid column type for column 'v'\"}]}";
    let server = Server::start(vec![Reply::Status(400, "", body)]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(
        &format!("'url' = '{}', 'database' = 'd'", server.url),
        dir.path(),
    );
    write_all(&mut sink, rows(3)).await.unwrap();
    assert_eq!(server.requests().len(), 1, "a refusal is not retried");
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["sink"], "t");
    assert_eq!(entries[0]["raw"], "m,machine_id=m-1 v=1.5 1001000000");
    assert_eq!(entries[0]["error"], "invalid column type for column 'v'");
    let c = sink.writer.counters();
    assert_eq!(count(&c.refused), 1);
    assert_eq!(count(&c.written), 2);
}

#[tokio::test]
async fn unauthorized_fails_at_once_with_the_server_message_and_no_token() {
    let server = Server::start(vec![Reply::Status(
        401,
        "",
        "{\"error\":\"authorization failed\"}",
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret").unwrap();
    let mut sink = v1_sink(
        &server,
        &format!("'token.file' = '{}'", token.display()),
        dir.path(),
    );
    let error = write_all(&mut sink, rows(1)).await.unwrap_err().to_string();
    assert_eq!(server.requests().len(), 1, "no retry on 401");
    assert!(error.contains("sink t"), "{error}");
    assert!(error.contains("HTTP 401: authorization failed"), "{error}");
    assert!(error.contains("token from"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[tokio::test]
async fn a_server_that_stays_down_fails_the_batch_after_the_retry_budget() {
    let server = Server::start(vec![]).await;
    server.state.lock().unwrap().then = Some(Reply::Status(503, "", "down"));
    let dir = tempfile::tempdir().unwrap();
    let mut sink = v1_sink(
        &server,
        "'retry.initial-delay' = '5ms', 'retry.max-delay' = '20ms', 'retry.max-time' = '300ms'",
        dir.path(),
    );
    let error = write_all(&mut sink, rows(1)).await.unwrap_err().to_string();
    assert!(error.contains("'retry.max-time'"), "{error}");
    assert!(error.contains("HTTP 503: down"), "{error}");
    assert!(server.requests().len() > 3, "retried several times");
}

/// A server that holds every answer until the test adds permits to the
/// returned gate, and a v1 sink to it with `extra` options.
async fn held_answers(
    extra: &str,
    dir: &std::path::Path,
) -> (Server, Arc<Semaphore>, InfluxDbSink) {
    let server = Server::start(vec![]).await;
    let answered = Arc::clone(&server.gate);
    answered.forget_permits(Semaphore::MAX_PERMITS);
    let sink = v1_sink(&server, extra, dir);
    (server, answered, sink)
}

#[tokio::test]
async fn a_full_set_of_requests_in_flight_makes_write_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (server, answered, mut sink) =
        held_answers("'max-in-flight' = '2', 'batch.max-lines' = '1'", dir.path()).await;
    let mut writing = tokio::spawn(async move { sink.write(rows(5)).await.map(|()| sink) });
    server.await_requests(2).await;
    // Two requests unanswered: the third line cannot be handed over.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut writing)
            .await
            .is_err(),
        "write returned while every request was in flight"
    );
    assert_eq!(server.requests().len(), 2);
    answered.add_permits(100);
    let mut sink = writing.await.unwrap().unwrap();
    sink.commit().await.unwrap();
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn flush_sends_a_due_batch_without_waiting_for_requests_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let (server, answered, mut sink) = held_answers(
        "'batch.max-lines' = '2', 'batch.interval' = '50ms'",
        dir.path(),
    )
    .await;
    // Two full batches go out at once; the fifth line waits for its interval.
    let started = std::time::Instant::now();
    sink.write(rows(5)).await.unwrap();
    server.await_requests(2).await;
    loop {
        tokio::time::timeout(Duration::from_secs(1), sink.flush())
            .await
            .expect("flush waited for the unanswered requests")
            .unwrap();
        if server.requests().len() == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the due line was never sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "sent before its interval"
    );
    // commit waits for every answer.
    let mut committing = tokio::spawn(async move { sink.commit().await.map(|()| sink) });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut committing)
            .await
            .is_err(),
        "commit returned with requests unanswered"
    );
    answered.add_permits(100);
    let sink = committing.await.unwrap().unwrap();
    assert_eq!(count(&sink.writer.counters().written), 5);
}
