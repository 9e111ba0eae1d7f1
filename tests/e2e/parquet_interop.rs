//! The Parquet history reads back in DuckDB (from PyPI) with the same rows
//! DataFusion sees, and with timestamps Spark can read (microseconds UTC).

use spindle_tests::spindle::{command, stderr};

fn python_has_duckdb() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn duckdb_reads_the_history_with_the_same_rows() {
    assert!(
        python_has_duckdb(),
        "duckdb missing: scripts/setup.sh installs it (pip install duckdb)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let demo = command([
        "demo",
        "--duration",
        "4s",
        "--machines",
        "20",
        "--data",
        data,
    ])
    .output()
    .unwrap();
    assert!(demo.status.success(), "demo: {}", stderr(&demo));

    let history = format!("{data}/history");
    let ours = command([
        "query", "--history", &history, "--format", "csv",
        "SELECT count(*) AS n, sum(readings) AS r, round(sum(temperature_avg), 6) AS t FROM features",
    ])
    .output()
    .unwrap();
    assert!(ours.status.success(), "query: {}", stderr(&ours));
    let ours = String::from_utf8(ours.stdout).unwrap();
    let ours = ours.lines().nth(1).expect("a result row").to_string();

    let script = format!(
        "import duckdb\n\
         con = duckdb.connect()\n\
         rel = \"read_parquet('{history}/features/**/*.parquet', hive_partitioning=true)\"\n\
         print(','.join(str(v) for v in con.execute(f'SELECT count(*), sum(readings), round(sum(temperature_avg), 6) FROM {{rel}}').fetchone()))\n\
         print(con.execute(f'SELECT typeof(window_start) FROM {{rel}} LIMIT 1').fetchone()[0])\n\
         print(con.execute(f'SELECT count(DISTINCT date) FROM {{rel}}').fetchone()[0])\n"
    );
    let theirs = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let theirs = String::from_utf8(theirs.stdout).unwrap();
    let lines: Vec<&str> = theirs.lines().collect();
    assert_eq!(lines[0], ours, "DuckDB and DataFusion disagree");
    assert!(!ours.starts_with("0,"), "the demo wrote rows");
    assert_eq!(
        lines[1], "TIMESTAMP WITH TIME ZONE",
        "microsecond UTC timestamps"
    );
    assert!(
        lines[2].parse::<u32>().unwrap() >= 1,
        "hive partitions read as columns"
    );
}
