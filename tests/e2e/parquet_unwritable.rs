//! The Parquet history's disk fills up in the middle of a checkpointed
//! Kafka job (a small tmpfs of the test's own, filled to the last byte:
//! every write fails with `ENOSPC`, as on a real full disk; `chmod` would
//! not stop root, who runs the tests). The job must stop with an error that
//! names the file and the OS error, leave every published file byte for
//! byte as it was, and — restarted once space is freed — finish with a
//! history that reconciles exactly with the batch oracle (the recovery
//! tests' `Deployment::reconcile`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use spindle_tests::disk::SmallDisk;

use crate::deployment::{Deployment, files_under, wait_for};

/// Every published history file (not staged ones) and its bytes.
fn published(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            files.extend(published(&path));
        } else if path.extension().is_some_and(|x| x == "parquet") {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Checks that every file of `before` is still there with the same bytes.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, when: &str) {
    for (path, bytes) in before {
        let now = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{when}: committed {} is gone: {e}", path.display()));
        assert!(
            &now == bytes,
            "{when}: committed {} changed ({} → {} bytes)",
            path.display(),
            bytes.len(),
            now.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_history_disk_stops_the_job_clearly_and_a_restart_reconciles_exactly() {
    const READINGS: usize = 200_000;
    let deployment = Deployment::new("full-disk");
    deployment.simulate("200000", "1000", "4");
    let disk = SmallDisk::mount(&deployment.history(), "64m");
    let features = deployment.history().join("features");
    let log = deployment.dir.path().join("filled.log");
    let mut child = deployment
        .command("filled")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("published history files", Duration::from_secs(60), || {
        files_under(&features, ".parquet") >= 8
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job ended before the disk filled: the replay is too short"
    );
    disk.fill();
    assert_eq!(disk.available(), 0, "the disk is full");
    let committed = published(&features);

    wait_for("the job to stop", Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "a full disk must stop the job: {log}");
    // The error names the file (under the history folder) and the OS error.
    let error = log
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_else(|| panic!("no OS error in: {log}"));
    eprintln!("full disk: {error}");
    let staging = format!("{}/_staging/", features.display());
    assert!(
        error.contains(&format!("completing {staging}")),
        "the error names the file, under {staging}: {error}"
    );
    assert_unchanged(&committed, "after the failure");

    disk.free();
    let output = deployment
        .command("fixed")
        .env("SPINDLE_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the restarted job: {log}");
    assert!(log.contains("restored from checkpoint"), "{log}");
    assert_unchanged(&committed, "after the restart");
    assert_eq!(
        files_under(&features.join("_staging"), ""),
        0,
        "nothing staged is left behind"
    );
    eprintln!(
        "full disk: {} files committed before the failure kept, {} in the end",
        committed.len(),
        published(&features).len()
    );
    deployment.reconcile(READINGS).await;
    drop(disk);
}
