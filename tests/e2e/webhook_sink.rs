//! The webhook sink through the real `spindle` binary, posting to an HTTP
//! server inside the test: windowed rows become templated messages, and
//! the per-machine cool-down in event time lets through exactly the rows an
//! independent pass over the console sink's rows picks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use spindle_tests::spindle::{command, stderr};

/// Answers every POST with 200 and keeps the bodies.
fn server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hooks/T0/B0/secret",
        listener.local_addr().unwrap()
    );
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            kept.lock().unwrap().push(String::from_utf8(body).unwrap());
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

const MINUTE_MS: i64 = 60_000;

#[test]
fn templated_alerts_pass_the_event_time_cooldown_per_machine() {
    let (url, bodies) = server();
    let columns =
        "machine_id VARCHAR NOT NULL, window_start TIMESTAMP(3) NOT NULL, readings BIGINT";
    let select = "SELECT machine_id, window_start, count(*) FROM sensors \
                  GROUP BY tumble(ts, INTERVAL '1' MINUTE), machine_id";
    let template = r#"{"text": "{machine_id}: {readings} readings", "at": "{window_start}"}"#;
    let job = format!(
        r#"CREATE TABLE sensors (
  machine_id VARCHAR NOT NULL, ts TIMESTAMP(3) NOT NULL, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'simulator', 'machines' = '5', 'count' = '3000', 'interval' = '10s');
CREATE TABLE hook ({columns}) WITH ('connector' = 'webhook', 'url' = '{url}',
  'key.column' = 'machine_id', 'time.column' = 'window_start', 'cooldown' = '5m',
  'template' = '{template}');
CREATE TABLE oracle ({columns}) WITH ('connector' = 'console');
INSERT INTO hook {select};
INSERT INTO oracle {select};
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.sql");
    std::fs::write(&file, job).unwrap();
    let output = command(["run", "--until-idle", "--side-outputs"])
        .arg(dir.path().join("side"))
        .arg(&file)
        .env("SPINDLE_LOG", "info")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "spindle run: {log}");
    assert!(!log.contains("secret"), "the hook's path stays out of logs");

    // The oracle: per machine in window order, a row is sent when none was
    // sent within the last 5 minutes.
    let mut windows: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let start = row["window_start"].as_str().unwrap();
        let ms = chrono_ms(start);
        let machine = row["machine_id"].as_str().unwrap().to_string();
        windows.entry(machine).or_default().push((ms, row));
    }
    let mut expected = Vec::new();
    let mut total = 0;
    for (machine, rows) in &mut windows {
        rows.sort_by_key(|(ms, _)| *ms);
        total += rows.len();
        let mut last: Option<i64> = None;
        for (ms, row) in rows.iter() {
            if last.is_none_or(|l| ms - l >= 5 * MINUTE_MS) {
                last = Some(*ms);
                let text = format!("{machine}: {} readings", row["readings"]);
                expected.push((text, row["window_start"].as_str().unwrap().to_string()));
            }
        }
    }
    let mut got: Vec<(String, String)> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).unwrap();
            (
                v["text"].as_str().unwrap().into(),
                v["at"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert!(total > 5 * 90, "{total} windows");
    assert!(expected.len() * 4 < total, "the cool-down suppresses most");
    assert_eq!(got, expected);
    let summary = format!(
        "{total} rows; {} suppressed by the cool-down; {} messages sent",
        total - expected.len(),
        expected.len()
    );
    assert!(log.contains(&summary), "{summary} in {log}");
}

/// Milliseconds since the epoch of an RFC 3339 UTC time without fractions
/// (`2026-01-01T00:05:00Z`), computed by hand to stay independent.
fn chrono_ms(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000
}
