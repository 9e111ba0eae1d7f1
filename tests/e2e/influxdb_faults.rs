//! The InfluxDB sink behind a faulty network (`support::proxy` between the
//! job and the real InfluxDB 1.x): 503 with `Retry-After`, 413 for large
//! bodies, 400 for some requests, a slow link. Each run is reconciled
//! exactly: every reading `(machine_id, seq)` is stored once (InfluxDB
//! overwrites a point with the same series and time, so stored points are
//! distinct readings) or, for 400s, is in the dead-letter output instead —
//! never both, never neither — and the sink's own counters agree with what
//! the proxy saw. The black-holed connection (with backpressure and memory
//! measured) is in `influxdb_backpressure.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use spindle_tests::influxdb::{create_database, query};
use spindle_tests::proxy::{Fault, Proxy};
use spindle_tests::services::{influxdb, unique};
use spindle_tests::spindle::stderr;

use crate::influxdb_sink::{readings_job_with, run_until_idle};

/// A reading: machine and its sequence number.
pub(crate) type Reading = (String, i64);

/// Every reading stored in `db`'s `readings` measurement; panics if one
/// is there twice.
pub(crate) fn stored_readings(url: &str, db: &str) -> BTreeSet<Reading> {
    let answer = query(url, db, "SELECT seq FROM readings GROUP BY machine_id");
    let mut stored = BTreeSet::new();
    for series in answer["results"][0]["series"]
        .as_array()
        .unwrap_or(&Vec::new())
    {
        let machine = series["tags"]["machine_id"].as_str().unwrap().to_string();
        for row in series["values"].as_array().unwrap() {
            let seq = row[1].as_i64().unwrap();
            assert!(
                stored.insert((machine.clone(), seq)),
                "duplicated: {machine} seq {seq} stored twice"
            );
        }
    }
    stored
}

/// The readings the dead-letter file holds (from each refused line's
/// `machine_id` tag and `seq` field), with the server's message of each.
fn dead_lettered(side: &Path) -> Vec<(Reading, String)> {
    let text = std::fs::read_to_string(side.join("dead-letter.jsonl")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            let raw = entry["raw"].as_str().expect("the refused line");
            let machine = raw
                .split([',', ' '])
                .find_map(|p| p.strip_prefix("machine_id="))
                .unwrap()
                .to_string();
            let seq = raw
                .split([',', ' '])
                .find_map(|p| p.strip_prefix("seq="))
                .and_then(|s| s.trim_end_matches('i').parse().ok())
                .unwrap();
            assert_eq!(entry["lines"], 1, "{line}");
            ((machine, seq), entry["error"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Checks that `readings` readings were produced: per machine, seq 1..=n,
/// `readings` in all, each in exactly one of `outputs`.
pub(crate) fn reconcile(readings: u64, outputs: &[(&str, &BTreeSet<Reading>)]) {
    let mut seen: BTreeMap<&Reading, &str> = BTreeMap::new();
    for (name, output) in outputs {
        for reading in output.iter() {
            if let Some(other) = seen.insert(reading, name) {
                panic!("duplicated: {reading:?} in {other} and {name}");
            }
        }
    }
    let mut per_machine: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (machine, seq) in seen.keys() {
        per_machine.entry(machine).or_default().push(*seq);
    }
    for (machine, seqs) in &per_machine {
        let max = *seqs.iter().max().unwrap();
        assert_eq!(
            seqs.len() as i64,
            max,
            "lost: {machine} has {} of seq 1..={max}",
            seqs.len()
        );
    }
    assert_eq!(seen.len() as u64, readings, "lost or unseen readings");
}

/// A number in the sink's summary line (`influxdb sink NAME: …`): the one
/// right after `before` (`"written "`) or right before `after` (`" retried"`).
pub(crate) fn sink_count(log: &str, before: &str, after: &str) -> u64 {
    let line = summary(log);
    let number = if before.is_empty() {
        let end = line.find(after).unwrap();
        line[..end].rsplit([' ', '(']).next().unwrap()
    } else {
        let start = line.find(before).unwrap() + before.len();
        line[start..].split([' ', ',']).next().unwrap()
    };
    number
        .parse()
        .unwrap_or_else(|_| panic!("{number:?} in {line}"))
}

/// The sink's summary line.
pub(crate) fn summary(log: &str) -> &str {
    let line = log.lines().find(|l| l.contains("influxdb sink readings:"));
    line.unwrap_or_else(|| panic!("no sink summary in {log}"))
}

/// A simulator job writing `readings` readings through `proxy` into a new
/// database; returns the database, the finished run's log and its folder.
fn run_through(proxy: &Proxy, readings: u64, extra: &str) -> (String, String, tempfile::TempDir) {
    let db = unique("faults");
    create_database(influxdb(), &db);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    std::fs::write(&job, readings_job_with(&proxy.url, &db, readings, extra)).unwrap();
    let output = run_until_idle(&job, dir.path())
        .env("SPINDLE_LOG", "info")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "spindle run: {log}");
    assert!(log.contains(&format!("rows_out={readings}")), "{log}");
    (db, log, dir)
}

#[test]
fn answers_503_with_retry_after_are_retried_until_everything_is_stored_once() {
    const READINGS: u64 = 6_000;
    const REFUSALS: u64 = 6;
    let proxy = Proxy::start(influxdb());
    proxy.set(Fault::Answer {
        status: 503,
        headers: vec![("Retry-After".into(), "1".into())],
        body: r#"{"error":"service unavailable (injected)"}"#.into(),
        times: REFUSALS,
    });
    let (db, log, _dir) = run_through(&proxy, READINGS, "");
    assert_eq!(proxy.fault(), Fault::PassThrough, "every 503 was given");
    eprintln!("503: {}", summary(&log));
    let stored = stored_readings(influxdb(), &db);
    reconcile(READINGS, &[("influxdb", &stored)]);
    // Each 503 is retried once, after the server's Retry-After.
    assert_eq!(sink_count(&log, "", " retried"), REFUSALS, "{log}");
    assert!(
        log.contains("HTTP 503: service unavailable (injected)"),
        "{log}"
    );
    assert!(
        log.contains("retry 1 in 1.0s"),
        "Retry-After honoured: {log}"
    );
    let stats = proxy.stats();
    assert_eq!(
        stats.answered.load(std::sync::atomic::Ordering::Relaxed),
        REFUSALS
    );
    assert_eq!(sink_count(&log, "written ", ""), READINGS);
    assert_eq!(sink_count(&log, "refused ", ""), 0);
}

#[test]
fn bodies_too_large_for_the_server_are_split_until_they_fit() {
    const READINGS: u64 = 4_000;
    let proxy = Proxy::start(influxdb());
    // Uncompressed, 500 lines are about 35 KB: every first request is
    // refused and halved twice or more before it fits.
    proxy.set(Fault::MaxBody(8_000));
    let (db, log, dir) = run_through(&proxy, READINGS, ", 'gzip' = 'false'");
    let stored = stored_readings(influxdb(), &db);
    reconcile(READINGS, &[("influxdb", &stored)]);
    let refused_413 = proxy
        .stats()
        .answered
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("413: {refused_413} bodies refused; {}", summary(&log));
    assert!(refused_413 >= 8, "the proxy refused {refused_413} bodies");
    assert_eq!(sink_count(&log, "", " split"), refused_413, "{log}");
    assert_eq!(sink_count(&log, "refused ", ""), 0, "{log}");
    assert!(!dir.path().join("side/dead-letter.jsonl").exists());
}

#[test]
fn requests_refused_with_400_go_to_the_dead_letter_output_without_retry() {
    const READINGS: u64 = 5_000;
    const REFUSALS: u64 = 3;
    let message = "unable to parse 'readings': injected refusal";
    let proxy = Proxy::start(influxdb());
    // InfluxDB 1.x's answer to lines it cannot parse.
    proxy.set(Fault::Answer {
        status: 400,
        headers: Vec::new(),
        body: format!(r#"{{"error":"{message}"}}"#),
        times: REFUSALS,
    });
    let (db, log, dir) = run_through(&proxy, READINGS, "");
    eprintln!("400: {}", summary(&log));
    let stored = stored_readings(influxdb(), &db);
    let refused = dead_lettered(&dir.path().join("side"));
    assert!(!refused.is_empty());
    assert!(
        refused.iter().all(|(_, error)| error == message),
        "the server's message for each line"
    );
    let refused: BTreeSet<Reading> = refused.into_iter().map(|(r, _)| r).collect();
    reconcile(
        READINGS,
        &[("influxdb", &stored), ("dead-letter", &refused)],
    );
    // in = stored + dead-letter, and the sink counted the same.
    assert_eq!(sink_count(&log, "written ", ""), stored.len() as u64);
    assert_eq!(sink_count(&log, "refused ", ""), refused.len() as u64);
    assert_eq!(sink_count(&log, "", " retried"), 0, "a 400 is not retried");
    let requests = proxy
        .stats()
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sink_count(&log, "", " requests"), requests, "{log}");
}

#[test]
fn a_slow_link_delivers_everything() {
    const READINGS: u64 = 5_000;
    const RATE: u64 = 64 * 1024;
    let proxy = Proxy::start(influxdb());
    proxy.set(Fault::Slow(RATE));
    let started = Instant::now();
    let (db, log, _dir) = run_through(&proxy, READINGS, ", 'gzip' = 'false'");
    let elapsed = started.elapsed().as_secs_f64();
    let stored = stored_readings(influxdb(), &db);
    reconcile(READINGS, &[("influxdb", &stored)]);
    let bytes = proxy
        .stats()
        .bytes_forwarded
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("slow link: {bytes} body bytes at {RATE} B/s in {elapsed:.1}s");
    // The throttle held: the bodies alone took bytes / rate seconds.
    assert!(
        elapsed >= bytes as f64 / RATE as f64,
        "{bytes} bytes in {elapsed:.1}s"
    );
    assert!(
        bytes as f64 / RATE as f64 > 2.0,
        "slow enough to matter: {bytes} bytes"
    );
    assert_eq!(sink_count(&log, "", " retried"), 0, "{log}");
}
