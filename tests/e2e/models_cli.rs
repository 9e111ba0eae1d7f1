//! Trained models through the real binary: `spindle train` writes a model
//! file (one version more each time), `spindle eval --model` measures it,
//! `spindle drift` compares and signals by exit status, and a running job
//! scores with a model retrained while it runs, without a restart.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use spindle_tests::spindle::{command, run, stderr};

const FEATURES: &str = "temperature,vibration,power";

fn simulate(dir: &std::path::Path, name: &str, seed: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = run([
        "simulate",
        "--labels",
        "--machines",
        "5",
        "--duration",
        "20m",
        "--seed",
        seed,
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    path
}

fn train(models: &std::path::Path, name: &str, input: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--models",
        models.to_str().unwrap(),
        "train",
        name,
        "--input",
        input.to_str().unwrap(),
        "--where",
        "NOT fault",
        "--features",
        FEATURES,
    ];
    args.extend(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn model_file(models: &std::path::Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(models.join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn train_eval_and_drift_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let training = simulate(dir.path(), "train.jsonl", "11");
    let labelled = simulate(dir.path(), "labelled.jsonl", "12");

    let printed = train(&models, "m", &training, &["--kind", "t2"]);
    assert!(printed.starts_with("model m v1 (t2) → "), "{printed}");
    assert!(
        printed.contains("SQL: anomaly_model('m', temperature, vibration, power)"),
        "{printed}"
    );
    let v1 = model_file(&models, "m");
    assert_eq!(v1["format"], "spindle-model/1");
    assert_eq!(v1["kind"], "t2");
    assert!(v1["training"]["rows"].as_u64().unwrap() > 1000);
    train(&models, "m", &training, &["--kind", "t2"]);
    assert_eq!(model_file(&models, "m")["version"], 2);

    let eval = |model: &str| {
        run([
            "--models",
            models.to_str().unwrap(),
            "eval",
            "--input",
            labelled.to_str().unwrap(),
            "--model",
            model,
            "--format",
            "json",
        ])
    };
    let out = eval("m");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let reports: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 1, "only the model runs: {text}");
    assert_eq!(reports[0]["detector"], "model:m");
    for field in ["precision", "recall", "f1", "false_alarms_per_machine_day"] {
        assert!(reports[0][field].is_number(), "{field}: {text}");
    }

    let drift = |threshold: &str| {
        run([
            "--models",
            models.to_str().unwrap(),
            "drift",
            "m",
            "--input",
            training.to_str().unwrap(),
            "--where",
            "NOT fault",
            &format!("--threshold={threshold}"),
        ])
    };
    let same = drift("0.25");
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let table = String::from_utf8_lossy(&same.stdout);
    assert_eq!(table.matches(" stable").count(), 3, "{table}");
    assert_eq!(drift("-1").status.code(), Some(3));

    let unknown = eval("nope");
    assert!(!unknown.status.success());
    let e = stderr(&unknown);
    assert!(
        e.contains("model nope: no file") && e.contains("(models there: m)"),
        "{e}"
    );
}

#[test]
fn a_running_job_scores_with_a_model_retrained_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let training = simulate(dir.path(), "train.jsonl", "21");
    train(&models, "live", &training, &["--kind", "t2"]);
    let job = dir.path().join("live.sql");
    std::fs::write(
        &job,
        "CREATE TABLE sensors (
           machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL,
           temperature DOUBLE, vibration DOUBLE, power DOUBLE
         ) WITH ('connector' = 'simulator', 'machines' = '2', 'rate' = '20');
         CREATE TABLE out (machine_id VARCHAR NOT NULL, version_threshold DOUBLE)
           WITH ('connector' = 'console');
         INSERT INTO out SELECT machine_id,
           anomaly_model('live', temperature, vibration, power)['threshold'] FROM sensors;",
    )
    .unwrap();
    let mut child = command([
        "--models",
        models.to_str().unwrap(),
        "run",
        job.to_str().unwrap(),
        "--side-outputs",
        dir.path().join("side").to_str().unwrap(),
    ])
    .env("SPINDLE_MODELS_RELOAD", "0.2")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let threshold = |line: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["version_threshold"].as_f64().unwrap()
    };
    let first = threshold(&lines.next().unwrap().unwrap());
    assert_eq!(
        first,
        model_file(&models, "live")["threshold"].as_f64().unwrap()
    );
    // Retrain with another limit while the job runs.
    train(
        &models,
        "live",
        &training,
        &["--kind", "t2", "--probability", "0.9"],
    );
    let second = model_file(&models, "live")["threshold"].as_f64().unwrap();
    assert!(second < first);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    for line in lines.by_ref() {
        if threshold(&line.unwrap()) == second {
            seen = true;
            break;
        }
        assert!(Instant::now() < deadline, "version 2 not picked up in 30 s");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen, "the job ended before scoring with version 2");
}
