use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use axum::http::StatusCode;
use serde_json::json;

use crate::server::tests::{app, call, json_of};

/// `windows` 10-second windows of machine `m-1` (10 readings each):
/// temperature around 37.2 (σ about 0.5), vibration around 2.
fn write_features(table: &std::path::Path, windows: i64) {
    std::fs::create_dir_all(table).unwrap();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("window_start", utc, false),
        Field::new("readings", DataType::Int64, false),
        Field::new("temperature_avg", DataType::Float64, true),
        Field::new("temperature_stddev", DataType::Float64, true),
        Field::new("vibration_avg", DataType::Float64, true),
        Field::new("vibration_stddev", DataType::Float64, true),
    ]));
    let start = 1_767_225_600_000_000i64;
    let n = windows as usize;
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["m-1"; n])),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..windows).map(|i| start + i * 10_000_000),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![10; n])),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| 37.0 + (i % 5) as f64 * 0.1),
            )),
            Arc::new(Float64Array::from(vec![0.5; n])),
            Arc::new(Float64Array::from(vec![2.0; n])),
            Arc::new(Float64Array::from(vec![0.1; n])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(table.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn predict_body(model: &str, reading: serde_json::Value) -> Option<String> {
    Some(json!({"model": model, "reading": reading}).to_string())
}

#[tokio::test]
async fn the_gaussian_model_fits_the_machines_history_and_flags_what_lies_outside() {
    let dir = tempfile::tempdir().unwrap();
    write_features(&dir.path().join("history").join("features"), 50);
    let router = app(dir.path(), None, 1 << 20);
    let normal = json!({"machine_id": "m-1", "ts": "2026-01-01T00:10:00Z", "temperature": 37.4, "vibration": 2.05});
    let (status, body) = call(
        &router,
        "POST",
        "/api/predict",
        None,
        predict_body("gaussian", normal),
    )
    .await;
    let body = json_of(&body);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["model"], &body["kind"]),
        (&json!("gaussian"), &json!("gaussian_limits"))
    );
    assert_eq!(body["anomaly"], false, "{body}");
    assert_eq!(body["ignored"], json!(["ts"]));
    assert_eq!(body["baseline"]["windows"], 50);
    let temperature = &body["sensors"][0];
    assert_eq!(temperature["sensor"], "temperature");
    assert_eq!(temperature["readings"], 500.0);
    assert!(
        (temperature["mean"].as_f64().unwrap() - 37.2).abs() < 1e-9,
        "{temperature}"
    );

    let hot = json!({"machine_id": "m-1", "temperature": 60.0, "vibration": 2.0, "humidity": 40.0});
    let (status, body) = call(
        &router,
        "POST",
        "/api/predict",
        None,
        predict_body("gaussian", hot),
    )
    .await;
    let body = json_of(&body);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["anomaly"], true);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("temperature: value out of limits ("),
        "{body}"
    );
    assert!(body["score"].as_f64().unwrap() > body["threshold"].as_f64().unwrap());
    assert_eq!(body["unscored"][0]["sensor"], "humidity");

    // Options: a narrower probability flags a smaller deviation.
    let slightly = json!({"model": "gaussian", "reading": {"machine_id": "m-1", "temperature": 38.6},
                          "options": {"probability": 0.9, "baseline": "1h"}});
    let (status, body) = call(
        &router,
        "POST",
        "/api/predict",
        None,
        Some(slightly.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body)["anomaly"], true);
}

#[tokio::test]
async fn predict_says_clearly_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    write_features(&dir.path().join("history").join("features"), 5);
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(
        models.join("forest.json"),
        r#"{"kind": "isolation_forest", "trees": []}"#,
    )
    .unwrap();
    std::fs::write(models.join("broken.json"), "not json").unwrap();
    let router = app(dir.path(), None, 1 << 20);
    let cases = [
        (predict_body("nope", json!({"temperature": 1.0})), StatusCode::NOT_FOUND, "no model named \"nope\""),
        (predict_body("../etc/passwd", json!({"temperature": 1.0})), StatusCode::BAD_REQUEST, "model name"),
        (predict_body("gaussian", json!({"temperature": 1.0})), StatusCode::BAD_REQUEST, "reading.machine_id is needed"),
        (predict_body("gaussian", json!({"machine_id": "m-1", "line": "l-1"})), StatusCode::BAD_REQUEST, "no numeric sensor values"),
        (predict_body("gaussian", json!({"machine_id": 7, "temperature": 1.0})), StatusCode::BAD_REQUEST, "machine_id must be a string"),
        (predict_body("gaussian", json!({"machine_id": "m-9", "temperature": 1.0})), StatusCode::UNPROCESSABLE_ENTITY, "no baseline for machine \"m-9\""),
        (predict_body("gaussian", json!({"machine_id": "m-1", "temperature": 1.0})), StatusCode::UNPROCESSABLE_ENTITY, "baseline of 50 readings; needs 100"),
        (predict_body("forest", json!({"temperature": 1.0})), StatusCode::UNPROCESSABLE_ENTITY, "kind \"isolation_forest\", which /api/predict cannot score"),
        (predict_body("broken", json!({"temperature": 1.0})), StatusCode::UNPROCESSABLE_ENTITY, "is not JSON"),
        (Some(json!({"model": "gaussian", "reading": {"machine_id": "m-1", "temperature": 1.0}, "options": {"p": 1}}).to_string()), StatusCode::BAD_REQUEST, "unknown option \"p\""),
        (Some(json!({"model": "gaussian", "reading": {"machine_id": "m-1", "temperature": 1.0}, "options": {"probability": 1.5}}).to_string()), StatusCode::BAD_REQUEST, "probability must be in (0, 1)"),
        (Some(json!({"model": "gaussian", "reading": [1, 2]}).to_string()), StatusCode::BAD_REQUEST, "request body"),
        (Some(json!({"model": "gaussian"}).to_string()), StatusCode::BAD_REQUEST, "missing field `reading`"),
    ];
    for (body, status, expected) in cases {
        let (got, answer) = call(&router, "POST", "/api/predict", None, body.clone()).await;
        let message = json_of(&answer)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(got, status, "{body:?}: {message}");
        assert!(message.contains(expected), "{body:?}: {message}");
    }
}

#[tokio::test]
async fn model_files_of_kind_gaussian_limits_score_and_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let file = json!({
        "kind": "gaussian_limits",
        "description": "line 1 temperature limits",
        "probability": 0.999,
        "sensors": {"temperature": {"mean": 40.0, "std_dev": 2.0}},
        "machines": {"m-7": {"temperature": {"mean": 30.0, "std_dev": 1.0}}}
    });
    std::fs::write(models.join("line1.json"), file.to_string()).unwrap();
    let router = app(dir.path(), None, 1 << 20);
    let score =
        |machine: &str| predict_body("line1", json!({"machine_id": machine, "temperature": 36.0}));
    let (status, body) = call(&router, "POST", "/api/predict", None, score("m-1")).await;
    let body = json_of(&body);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["anomaly"], &body["score"]),
        (&json!(false), &json!(2.0))
    );
    assert_eq!(body["baseline"]["machine_specific"], false);
    let (_, body) = call(&router, "POST", "/api/predict", None, score("m-7")).await;
    let body = json_of(&body);
    assert_eq!(
        (&body["anomaly"], &body["score"]),
        (&json!(true), &json!(6.0)),
        "{body}"
    );

    let (status, list) = call(&router, "GET", "/api/models", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let list = json_of(&list);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gaussian", "line1"]);
    assert_eq!(list[1]["description"], "line 1 temperature limits");
}

#[tokio::test]
async fn trained_models_score_a_reading_by_their_feature_names() {
    use spindle_anomaly::trained::Matrix;
    use spindle_anomaly::trained::model::{Fit, train};
    let dir = tempfile::tempdir().unwrap();
    let features: Vec<String> = ["temperature", "vibration", "power"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|i| {
            let spread = |k: usize| ((i * k) % 100) as f64 / 100.0 - 0.5;
            let temperature = 60.0 + 6.0 * spread(37);
            let power = 10.0 + 0.5 * (temperature - 60.0) + 0.4 * spread(71);
            vec![temperature, 1.0 + 0.4 * spread(53), power]
        })
        .collect();
    let data = Matrix::from_rows(&rows).unwrap();
    let file = train(
        "t2model",
        &features,
        &data,
        &Fit::T2 {
            probability: 0.999_999,
        },
        None,
    )
    .unwrap();
    file.save(&dir.path().join("models").join("t2model.json"))
        .unwrap();
    let router = app(dir.path(), None, 1 << 20);
    let score = |power: f64| {
        predict_body(
            "t2model",
            json!({"machine_id": "m-1", "temperature": 60.5, "vibration": 1.05, "power": power, "rpm": 1500.0}),
        )
    };
    let (status, body) = call(&router, "POST", "/api/predict", None, score(10.25)).await;
    let body = json_of(&body);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["kind"], &body["anomaly"]),
        (&json!("t2"), &json!(false)),
        "{body}"
    );
    assert_eq!(body["unused"], json!(["rpm"]));
    let (_, body) = call(&router, "POST", "/api/predict", None, score(14.0)).await;
    let body = json_of(&body);
    assert_eq!(body["anomaly"], true, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("power"), "{body}");
    let lacking = predict_body("t2model", json!({"temperature": 60.5, "power": 10.0}));
    let (status, body) = call(&router, "POST", "/api/predict", None, lacking).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("lacks vibration")
    );
    let (_, list) = call(&router, "GET", "/api/models", None, None).await;
    assert_eq!(json_of(&list)[1]["kind"], "t2");
}
