//! `spindle simulate` as a user runs it: files, formats, seeds, bad input.

use spindle_tests::spindle::{run, stderr, summary_field};

fn simulate_to_file(dir: &std::path::Path, name: &str, extra: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let mut args = vec!["simulate", "--count", "30000", "--quiet", "--output"];
    let path_text = path.to_string_lossy().into_owned();
    args.push(&path_text);
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary_field(&output, "records"), Some(30_000));
    std::fs::read(&path).expect("output file")
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--labels", "--late-fraction", "0.05", "--fault-rate", "3"];
    for format in ["json", "influx-lp", "openmetrics"] {
        let with = |seed: &str| {
            let mut extra = flags.to_vec();
            extra.extend_from_slice(&["--format", format, "--seed", seed]);
            simulate_to_file(dir.path(), &format!("{format}-{seed}.out"), &extra)
        };
        let a = with("7");
        assert_eq!(a, with("7").clone(), "{format}: same seed, different bytes");
        assert_ne!(a, with("8"), "{format}: different seeds, same bytes");
    }
}

#[test]
fn stdout_json_records_follow_the_design_brief() {
    let output = run(["simulate", "--count", "500", "--labels", "--quiet"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 500);
    let keys = [
        "machine_id",
        "seq",
        "line",
        "provider",
        "ts",
        "temperature",
        "vibration",
        "power",
        "load",
        "humidity",
        "noise_level",
        "rpm",
        "fault",
        "fault_kind",
    ];
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = v.as_object().unwrap();
        assert_eq!(object.keys().collect::<Vec<_>>().len(), keys.len());
        assert!(keys.iter().all(|k| object.contains_key(*k)), "{line}");
    }
}

#[test]
fn a_malformed_profile_names_file_line_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("broken.toml");
    let text = include_str!("../../simulator/profiles/packing_line.toml")
        .replace("recalibration = 0.3", "recalibration = 3.0");
    std::fs::write(&profile, &text).unwrap();
    let out = dir.path().join("out.json");
    let output = run([
        "simulate",
        "--profile",
        profile.to_str().unwrap(),
        "--count",
        "10",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("broken.toml:"), "{message}");
    assert!(
        message.contains("sensor `noise_level`: field `recalibration`"),
        "{message}"
    );
    assert!(!out.exists(), "nothing half-written");
}

#[test]
fn replay_streams_a_csv_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("recorded.csv");
    std::fs::write(
        &csv,
        "machine_id,ts,temp\nb,2026-01-01T00:00:01Z,2\na,2026-01-01T00:00:00Z,1\n",
    )
    .unwrap();
    let output = run(["simulate", "--replay", csv.to_str().unwrap(), "--quiet"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["machine_id"].as_str(), lines[0]["temp"].as_f64()),
        (Some("a"), Some(1.0))
    );
    assert_eq!(lines[1]["ts"], "2026-01-01T00:00:01.000Z");
}

#[test]
fn rate_caps_readings_per_second() {
    let output = run(["simulate", "--count", "600", "--rate", "2000", "--quiet"]);
    assert!(output.status.success());
    let rate = summary_field(&output, "rate").expect("rate");
    assert!(rate <= 2_100, "rate {rate}/s above the cap");
}
