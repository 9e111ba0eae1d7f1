//! Runs the real `spindle` binary, built from this workspace.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::services::repo_root;

/// Path of the `spindle` binary next to this test binary.
///
/// `scripts/test.sh` builds every target before running tests
/// (`cargo build --workspace --all-targets`). Calling cargo from inside a
/// test process would see a different environment and rebuild dependencies,
/// so it is done only when the binary is missing altogether.
pub fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/e2e-… → target/<profile>/spindle
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let binary = profile_dir.join("spindle");
        if !binary.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "--workspace", "--all-targets"])
                .current_dir(repo_root())
                .status()
                .expect("running cargo build");
            assert!(status.success(), "building spindle failed");
        }
        assert!(
            binary.exists(),
            "{} missing: run cargo build --workspace --all-targets",
            binary.display()
        );
        binary
    })
}

/// A `spindle` command with the given arguments.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(binary());
    command.args(args).env("SPINDLE_LOG", "warn");
    command
}

/// Runs `spindle ARGS` to completion.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    command(args).output().expect("running spindle")
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `key=value` pairs of the simulator's summary line.
pub fn summary_field(output: &Output, key: &str) -> Option<u64> {
    let text = stderr(output);
    let line = text.lines().find(|l| l.starts_with("simulate:"))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim_end_matches("/s").parse().ok())
}
