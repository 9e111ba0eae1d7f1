//! `spindle eval` over labelled simulator output: the episodes it counts
//! equal an independent count over the same file, every detector reports
//! the documented fields, and `--scores` has one row per reading and
//! detector.

use std::collections::BTreeMap;

use spindle_tests::spindle::{command, stderr};

/// Runs of `fault = true` per machine, in time order.
fn count_episodes(jsonl: &str) -> usize {
    let mut by_machine: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        by_machine
            .entry(v["machine_id"].as_str().unwrap().to_string())
            .or_default()
            .push((
                v["ts"].as_str().unwrap().to_string(),
                v["fault"].as_bool().unwrap(),
            ));
    }
    by_machine
        .values_mut()
        .map(|rows| {
            rows.sort();
            rows.windows(2).filter(|w| !w[0].1 && w[1].1).count()
                + usize::from(rows.first().is_some_and(|r| r.1))
        })
        .sum()
}

#[test]
fn eval_counts_episodes_like_an_independent_pass_and_reports_every_detector() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("labelled.jsonl");
    let output = command([
        "simulate",
        "--labels",
        "--machines",
        "10",
        "--duration",
        "2h",
        "--fault-rate",
        "2",
        "--quiet",
        "--output",
    ])
    .arg(&input)
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&input).unwrap();
    let episodes = count_episodes(&text);
    assert!(episodes >= 10, "the test needs faults, got {episodes}");

    let scores = dir.path().join("scores.csv");
    let output = command([
        "eval",
        "--format",
        "json",
        "--detector",
        "gaussian",
        "--detector",
        "cusum",
        "--input",
    ])
    .arg(&input)
    .arg("--scores")
    .arg(&scores)
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["detector"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gaussian", "cusum"]);
    for r in &reports {
        assert_eq!(r["episodes"].as_u64().unwrap() as usize, episodes, "{r}");
        for field in ["precision", "recall", "f1"] {
            let v = r[field].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{field} = {v}");
        }
        assert!(r["false_alarms_per_machine_day"].as_f64().unwrap() >= 0.0);
        let days = r["machine_days"].as_f64().unwrap();
        assert!(
            (days - 10.0 * 2.0 / 24.0).abs() < 0.01,
            "machine-days {days}"
        );
        assert!(r.get("median_delay_s").is_some());
    }
    let rows = std::fs::read_to_string(&scores).unwrap().lines().count();
    assert_eq!(rows, 1 + 2 * text.lines().count());

    let unknown = command(["eval", "--detector", "magic", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("unknown detector \"magic\"; known: gaussian"),
        "{}",
        stderr(&unknown)
    );
}
