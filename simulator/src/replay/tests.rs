use std::io::Write;

use super::*;
use crate::error::SimError;

fn csv_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn drain(replay: &mut Replay) -> Vec<Reading> {
    let mut out = Reading::with_fields(replay.layout().fields.len());
    std::iter::from_fn(|| replay.next_into(&mut out).then(|| out.clone())).collect()
}

fn csv_error_of(text: &str) -> (u64, String, String) {
    let file = csv_file(text);
    match Replay::load(file.path(), None) {
        Err(SimError::Csv {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected a CSV error, got {other:?}"),
    }
}

#[test]
fn replays_in_time_order_with_per_machine_sequence_numbers() {
    let file = csv_file(
        "machine_id,ts,temperature,rpm\n\
         a,2026-01-01T00:00:02Z,10.5,100\n\
         b,2026-01-01 00:00:01,11,\n\
         a,1767225600,9.5,90\n",
    );
    let mut replay = Replay::load(file.path(), None).unwrap();
    let fields: Vec<&str> = replay
        .layout()
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(fields, ["temperature", "rpm"]);
    let rows = drain(&mut replay);
    let ids: Vec<(&str, u64, i64)> = rows
        .iter()
        .map(|r| {
            (
                replay.layout().machines[r.machine as usize].id.as_str(),
                r.seq,
                r.ts_ms,
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("a", 1, 1_767_225_600_000),
            ("b", 1, 1_767_225_601_000),
            ("a", 2, 1_767_225_602_000)
        ]
    );
    assert_eq!(rows[0].values, vec![9.5, 90.0]);
    assert!(
        rows[1].values[1].is_nan(),
        "an empty cell is a missing value"
    );
}

#[test]
fn without_machine_column_everything_is_one_machine() {
    let file = csv_file("time,x\n1700000000000,1\n1700000001000,2\n");
    let mut replay = Replay::load(file.path(), None).unwrap();
    assert_eq!(replay.layout().machines[0].id, DEFAULT_MACHINE);
    let rows = drain(&mut replay);
    assert_eq!(
        rows.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
        [1_700_000_000_000, 1_700_000_001_000]
    );
}

#[test]
fn a_bad_number_names_its_line_and_column() {
    let (line, field, message) = csv_error_of("ts,temperature,rpm\n1,2,3\n2,4,fast\n");
    assert_eq!((line, field.as_str()), (3, "rpm"));
    assert!(message.contains("\"fast\" is not a number"), "{message}");
}

#[test]
fn a_bad_timestamp_names_its_line_and_column() {
    let (line, field, _) = csv_error_of("timestamp,x\n2026-13-01,1\n");
    assert_eq!((line, field.as_str()), (2, "timestamp"));
}

#[test]
fn non_finite_values_and_missing_time_column_are_refused() {
    assert!(
        csv_error_of("ts,x\n1,inf\n")
            .2
            .contains("not a finite number")
    );
    assert!(csv_error_of("when,x\n1,2\n").2.contains("no time column"));
    assert_eq!(
        csv_error_of("ts,x\n1,2,3\n").0,
        2,
        "a ragged row names its line"
    );
}
