//! `spindle server` as a child process for tests: started on a free port
//! (the address it prints), stopped with SIGTERM like a service manager
//! would, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::spindle::command;

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stderr (logs), kept in a file.
    pub log: PathBuf,
}

impl Server {
    /// Starts `spindle server` with `state_dir`, `history` and extra
    /// arguments and environment; waits until it prints its address.
    pub fn start(state_dir: &Path, history: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = state_dir.with_extension(format!("{}.log", std::process::id()));
        let log = unique_log(&log);
        let mut command = command(["server", "--listen", "127.0.0.1:0", "--state-dir"]);
        command
            .arg(state_dir)
            .arg("--history")
            .arg(history)
            .args(args)
            .env("SPINDLE_LOG", "info")
            .env_remove("SPINDLE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting spindle server");
        let stdout = child.stdout.take().unwrap();
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = send.send(url.to_string());
                }
            }
        });
        let url = match receive.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "spindle server did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Self { child, url, log }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 90 s) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "spindle server ignored SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn unique_log(base: &Path) -> PathBuf {
    (0..)
        .map(|i| base.with_extension(format!("{i}.log")))
        .find(|p| !p.exists())
        .unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `timeout`
/// with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
