//! Runs the `.slt` files under `tests/slt/` (sqllogictest): Spindle's SQL
//! surface — DDL, windows, functions, errors — specified as examples.
//!
//! How statements behave here:
//! - `CREATE TABLE …` declares a table; with a `'connector'` option its
//!   options are validated as a real job would (unknown options fail).
//! - `INSERT INTO source VALUES …` appends rows to a source table's input.
//! - `SET spindle.test.batch_rows = N` feeds sources in micro-batches of N
//!   rows (default 3, so state crosses batch boundaries); `SET
//!   spindle.models.dir = 'DIR'` points `anomaly_model` at DIR (relative to
//!   `tests/`); other `SET`s are
//!   job settings (e.g. `spindle.window.allowed_lateness`).
//! - A `SELECT` runs as a streaming job over the rows inserted so far, to the
//!   end of input (the watermark then passes every window), and returns what
//!   the job emitted. Rows that arrive behind the watermark are late and
//!   dropped from the results; `SELECT spindle_late()` returns how many there
//!   were in the previous query.

// Test code: a failed step panics, which is how a test reports it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod db;

use std::path::PathBuf;

fn main() {
    let root = spindle_tests::services::tests_dir().join("slt");
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut files: Vec<PathBuf> = walk(&root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let name = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let mut runner = sqllogictest::Runner::new(|| async { Ok(db::StreamingDb::new()) });
        match runtime.block_on(runner.run_file_async(&file)) {
            Ok(()) => {
                println!("ok     {name}");
                passed += 1;
            }
            Err(error) => {
                println!("FAILED {name}\n{error}\n");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}
