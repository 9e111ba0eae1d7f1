use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Field, Schema, TimeUnit};

use super::*;

const LIMITS: QueryLimits = QueryLimits {
    max_rows: 1000,
    timeout: Duration::from_secs(30),
    memory: 128 << 20,
};

/// Alert rows as `jobs/anomaly_detection.sql` writes them, Hive-partitioned
/// by date and hour like the Parquet sink does.
pub(crate) fn write_alerts(table: &std::path::Path, rows: &[(&str, DateTime<Utc>, &str, f64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("model", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, true),
    ]));
    for (i, (machine, at, model, score)) in rows.iter().enumerate() {
        let dir = table.join(format!(
            "date={}/hour={}",
            at.format("%Y-%m-%d"),
            at.format("%H")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec![*machine])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![at.timestamp_micros()])
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![*model])),
                Arc::new(Float64Array::from(vec![*score])),
                Arc::new(Float64Array::from(vec![4.0])),
                Arc::new(StringArray::from(vec!["value out of limits (1, 2)"])),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(dir.join(format!("part-{i}.parquet"))).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}

fn ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(minutes)
}

#[tokio::test]
async fn the_latest_alerts_come_newest_first_filtered_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("alerts");
    write_alerts(
        &table,
        &[
            ("m-1", ago(5), "temperature_drift", 6.0),
            ("m-2", ago(10), "vibration_fluctuation", 9.0),
            ("m-1", ago(30), "temperature_drift", 5.0),
            ("m-1", ago(26 * 60), "temperature_drift", 7.0),
        ],
    );
    let location = table.display().to_string();
    let (alerts, truncated) = latest_alerts(&location, LIMITS, ago(60), None, None, 10)
        .await
        .unwrap();
    let machines: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["machine_id"].as_str().unwrap())
        .collect();
    assert_eq!((machines, truncated), (vec!["m-1", "m-2", "m-1"], false));
    assert_eq!(alerts[0]["model"], "temperature_drift");
    assert_eq!(alerts[0]["reason"], "value out of limits (1, 2)");
    assert!(alerts[0]["ts"].as_str().unwrap().ends_with('Z'), "{alerts}");

    let (alerts, truncated) = latest_alerts(&location, LIMITS, ago(60), None, None, 2)
        .await
        .unwrap();
    assert_eq!((alerts.as_array().unwrap().len(), truncated), (2, true));

    let (alerts, _) = latest_alerts(
        &location,
        LIMITS,
        ago(2 * 24 * 60),
        Some("m-1".into()),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        alerts.as_array().unwrap().len(),
        3,
        "yesterday's partition is read too"
    );
    let (alerts, _) = latest_alerts(
        &location,
        LIMITS,
        ago(60),
        None,
        Some("vibration_fluctuation".into()),
        10,
    )
    .await
    .unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn alerts_are_counted_by_machine_and_model() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("alerts");
    write_alerts(
        &table,
        &[
            ("m-1", ago(5), "temperature_drift", 6.0),
            ("m-1", ago(6), "temperature_drift", 8.0),
            ("m-2", ago(10), "vibration_fluctuation", 9.0),
            ("m-2", ago(90), "vibration_fluctuation", 9.0),
        ],
    );
    let location = table.display().to_string();
    let (counts, truncated) = count_alerts(&location, LIMITS, ago(60), None)
        .await
        .unwrap();
    assert!(!truncated);
    let counts = counts.as_array().unwrap().clone();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!(
        (
            &counts[0]["machine_id"],
            &counts[0]["model"],
            &counts[0]["count"]
        ),
        (&json!("m-1"), &json!("temperature_drift"), &json!(2))
    );
    assert_eq!(counts[0]["max_score"], 8.0);
    assert_eq!(counts[1]["count"], 1);
    let (only, _) = count_alerts(&location, LIMITS, ago(120), Some("m-2".into()))
        .await
        .unwrap();
    assert_eq!(only[0]["count"], 2);
}

#[tokio::test]
async fn no_alerts_table_yet_means_no_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("alerts").display().to_string();
    let (alerts, truncated) = latest_alerts(&location, LIMITS, ago(60), None, None, 10)
        .await
        .unwrap();
    assert_eq!((alerts, truncated), (json!([]), false));
    let (counts, _) = count_alerts(&location, LIMITS, ago(60), None)
        .await
        .unwrap();
    assert_eq!(counts, json!([]));
}

#[tokio::test]
async fn a_table_without_the_alert_columns_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("alerts");
    std::fs::create_dir_all(&table).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Float64Array::from(vec![1.0]))],
    )
    .unwrap();
    let file = std::fs::File::create(table.join("p.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let error = latest_alerts(
        &table.display().to_string(),
        LIMITS,
        ago(60),
        None,
        None,
        10,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("no column machine_id, ts, model"), "{error}");
}

#[test]
fn since_takes_durations_and_times_and_names_what_it_refuses() {
    let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let at = |s: Option<&str>| parse_since("since", s, now).map(|t| t.to_rfc3339());
    assert_eq!(at(None).unwrap(), "2026-03-01T11:00:00+00:00");
    assert_eq!(at(Some("15m")).unwrap(), "2026-03-01T11:45:00+00:00");
    assert_eq!(at(Some("1h30m")).unwrap(), "2026-03-01T10:30:00+00:00");
    assert_eq!(
        at(Some("2026-02-28T00:00:00+01:00")).unwrap(),
        "2026-02-27T23:00:00+00:00"
    );
    let error = at(Some("yesterday")).unwrap_err();
    assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
    assert!(
        error
            .message
            .starts_with("since=\"yesterday\" is neither a duration"),
        "{}",
        error.message
    );
    assert!(at(Some("100000000000000000000y")).is_err());
}

#[tokio::test]
async fn the_routes_answer_json_and_refuse_bad_parameters_with_400() {
    use crate::server::tests::{app, call, json_of};
    let dir = tempfile::tempdir().unwrap();
    write_alerts(
        &dir.path().join("history").join("alerts"),
        &[("m-1", ago(5), "temperature_drift", 6.0)],
    );
    let router = app(dir.path(), None, 1 << 20);
    let (status, body) = call(
        &router,
        "GET",
        "/api/anomalies?since=1h&machine=m-1",
        None,
        None,
    )
    .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let body = json_of(&body);
    assert_eq!(body["alerts"][0]["machine_id"], "m-1", "{body}");
    assert_eq!(body["truncated"], false);
    let (status, body) = call(&router, "GET", "/api/anomalies/count?range=2h", None, None).await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(json_of(&body)["total"], 1);
    for (path, expected) in [
        (
            "/api/anomalies?since=soon",
            "since=\"soon\" is neither a duration",
        ),
        ("/api/anomalies?limit=0", "limit must be at least 1"),
        ("/api/anomalies?limit=many", "limit"),
        ("/api/anomalies?machines=m-1", "unknown field `machines`"),
        ("/api/anomalies/count?range=-1h", "range=\"-1h\""),
        ("/api/anomalies/count?since=1h", "unknown field `since`"),
    ] {
        let (status, body) = call(&router, "GET", path, None, None).await;
        assert_eq!(status, axum::http::StatusCode::BAD_REQUEST, "{path}");
        let message = json_of(&body)["error"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{path}: {message}");
    }
}
