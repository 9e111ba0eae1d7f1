//! Talking to the InfluxDB 1.x test server with `curl` (which
//! `scripts/influxdb.sh` needs anyway), and private servers a test may stop
//! and restart without disturbing the shared one.

use std::process::Command;

use serde_json::Value;

use crate::services::{free_port, repo_root};

/// Runs InfluxQL `q` against database `db` (`epoch=ns`: times as integer
/// nanoseconds) and returns the JSON answer; panics on an HTTP error or an
/// error in the answer.
pub fn query(url: &str, db: &str, q: &str) -> Value {
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-G", &format!("{url}/query")])
        .args(["--data-urlencode", &format!("db={db}")])
        .args(["--data-urlencode", "epoch=ns"])
        .args(["--data-urlencode", &format!("q={q}")])
        .output()
        .expect("running curl");
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "query {q:?} at {url}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        answer["results"][0].get("error").is_none(),
        "query {q:?}: {body}"
    );
    answer
}

/// Creates database `db` (a no-op if it exists).
pub fn create_database(url: &str, db: &str) {
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-XPOST", &format!("{url}/query")])
        .args(["--data-urlencode", &format!("q=CREATE DATABASE \"{db}\"")])
        .output()
        .expect("running curl");
    assert!(
        output.status.success(),
        "creating {db}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `SELECT count(FIELD) FROM MEASUREMENT`: 0 when there is nothing yet.
pub fn count(url: &str, db: &str, measurement: &str, field: &str) -> u64 {
    let answer = query(
        url,
        db,
        &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
    );
    answer["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

/// An InfluxDB server of one test's own (`scripts/influxdb.sh` on free
/// ports, its own data folder), wiped when dropped.
#[derive(Debug)]
pub struct PrivateServer {
    /// Its HTTP port.
    pub port: u16,
    rpc_port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl PrivateServer {
    /// Starts a server on two free ports.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            rpc_port: free_port(),
            url: String::new(),
        };
        server.url = server.script(&["start"]);
        server
    }

    /// Stops it (data kept).
    pub fn stop(&self) {
        self.script(&["stop"]);
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&self) {
        self.script(&["start"]);
    }

    fn script(&self, args: &[&str]) -> String {
        let output = Command::new("bash")
            .arg(repo_root().join("scripts/influxdb.sh"))
            .args(args)
            .env("INFLUXDB_PORT", self.port.to_string())
            .env("INFLUXDB_RPC_PORT", self.rpc_port.to_string())
            .output()
            .expect("running scripts/influxdb.sh");
        assert!(
            output.status.success(),
            "influxdb.sh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().last().unwrap_or_default().trim().to_string()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/influxdb.sh"))
            .args(["stop", "--wipe"])
            .env("INFLUXDB_PORT", self.port.to_string())
            .env("INFLUXDB_RPC_PORT", self.rpc_port.to_string())
            .output();
    }
}
