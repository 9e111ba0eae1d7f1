//! Starts the services tests need through `scripts/*.sh`, once per test
//! process. The scripts are idempotent: a service already running (for
//! example started by `scripts/test.sh`) is reused.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// This crate's folder, read when the tests run (cargo sets it) rather than
/// when they were compiled: clones at other paths share one target folder,
/// and a test binary built in one of them must not read another's files.
pub fn tests_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    tests_dir().parent().map(PathBuf::from).unwrap_or_default()
}

/// Runs `scripts/NAME.sh start` and returns the last line it printed (the
/// service's address).
fn start(script: &str) -> String {
    let path = repo_root().join("scripts").join(script);
    let output = Command::new("bash")
        .arg(&path)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{} start failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

/// The bootstrap address of the real Kafka broker, started on first use.
/// `SPINDLE_TEST_KAFKA` points the tests at another broker instead.
pub fn kafka() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS
        .get_or_init(|| std::env::var("SPINDLE_TEST_KAFKA").unwrap_or_else(|_| start("kafka.sh")))
}

/// A TCP port on 127.0.0.1 nothing listens on now, for a test's private
/// server.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A name no other test run uses (topics, groups).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The endpoint URL of the S3-compatible test server (moto), started on
/// first use. `SPINDLE_TEST_S3` points the tests at another server instead
/// (MinIO, or moto elsewhere); an unreachable one fails the tests.
pub fn s3() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| std::env::var("SPINDLE_TEST_S3").unwrap_or_else(|_| start("s3.sh")))
}

/// The URL of the real InfluxDB 1.x server (`scripts/influxdb.sh`), started
/// on first use. `SPINDLE_TEST_INFLUXDB` points the tests at another server.
pub fn influxdb() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("SPINDLE_TEST_INFLUXDB").unwrap_or_else(|_| start("influxdb.sh"))
    })
}

/// The URL of the real Prometheus server (`scripts/prometheus.sh`), started
/// on first use. `SPINDLE_TEST_PROMETHEUS` points the tests at another
/// server, whose file_sd folder `SPINDLE_TEST_PROMETHEUS_TARGETS` must name.
pub fn prometheus() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("SPINDLE_TEST_PROMETHEUS").unwrap_or_else(|_| start("prometheus.sh"))
    })
}

/// The folder whose `*.json` files (file_sd format) list what that
/// Prometheus scrapes every second.
pub fn prometheus_targets() -> PathBuf {
    if let Ok(dir) = std::env::var("SPINDLE_TEST_PROMETHEUS_TARGETS") {
        return PathBuf::from(dir);
    }
    prometheus();
    let path = repo_root().join("scripts").join("prometheus.sh");
    let output = Command::new("bash")
        .arg(&path)
        .arg("targets")
        .output()
        .unwrap();
    assert!(output.status.success(), "{} targets failed", path.display());
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}
