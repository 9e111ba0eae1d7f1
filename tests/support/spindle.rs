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

/// A side output (`late`, `dead-letter`) of a job whose side outputs went
/// to `dir`, as one JSON lines file: the single file of a job without
/// checkpoints (`dir/late.jsonl`) plus the per-partition epoch files a
/// checkpointed job publishes (`dir/late/*.jsonl`; pending ones excluded).
pub fn side_output(dir: &std::path::Path, name: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(dir.join(name)) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        for file in files {
            text.push_str(&std::fs::read_to_string(file).unwrap());
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let merged = dir.join(format!("{name}.all.jsonl"));
    std::fs::write(&merged, text).unwrap();
    merged
}
