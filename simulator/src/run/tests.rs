use std::sync::atomic::AtomicBool;

use super::*;
use crate::factory::FactoryOptions;
use crate::profiles::{DEFAULT_PROFILE, built_in};
use crate::stream::Disorder;

fn config(seed: u64, path: &std::path::Path) -> SimulationConfig {
    let spec = built_in(DEFAULT_PROFILE).unwrap().unwrap();
    let options = FactoryOptions {
        seed,
        start_ms: 1_767_225_600_000,
        machines: Some(20),
        interval_ms: None,
        fault_rate: Some(5.0),
    };
    SimulationConfig {
        source: SourceConfig::Factory(Box::new(spec), options),
        limits: Limits {
            count: Some(5_000),
            until_ms: None,
        },
        disorder: Some(Disorder {
            fraction: 0.05,
            max_delay_ms: 10_000,
            seed,
        }),
        format: Format::Json,
        labels: true,
        pacing: Pacing::default(),
        destination: Destination::File(path.to_path_buf()),
        progress: false,
    }
}

fn run_to_bytes(seed: u64, dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join(format!("run-{seed}-{}.json", rand::random::<u32>()));
    let summary = simulate(&config(seed, &path), &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.records, 5_000);
    assert_eq!(summary.delivery.delivered, 5_000);
    std::fs::read(path).unwrap()
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_to_bytes(1, dir.path());
    assert_eq!(a, run_to_bytes(1, dir.path()));
    assert_ne!(a, run_to_bytes(2, dir.path()));
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 5_000);
}

#[test]
fn a_bad_replay_csv_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "ts,x\n1,2\n2,oops\n").unwrap();
    let out = dir.path().join("out.json");
    let mut config = config(1, &out);
    config.source = SourceConfig::Replay(csv, None);
    let error = simulate(&config, &AtomicBool::new(false)).unwrap_err();
    assert!(
        error.to_string().contains("bad.csv:3: field `x`"),
        "{error}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the CSV"
    );
}

#[test]
fn a_stopped_run_still_finishes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let summary = simulate(&config(1, &out), &AtomicBool::new(true)).unwrap();
    assert!(summary.records < 5_000);
    let lines = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert_eq!(lines, summary.records);
}

#[test]
fn writing_to_dev_null_leaves_the_device_alone() {
    let mut config = config(1, std::path::Path::new("/dev/null"));
    config.limits.count = Some(100);
    let summary = simulate(&config, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.records, 100);
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null is still a device");
}
