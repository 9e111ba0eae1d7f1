use arrow::datatypes::TimeUnit;

use super::*;
use crate::decode::Decoder;
use crate::decode::json::JsonDecoder;
use crate::decode::line_protocol::LineProtocolDecoder;
use crate::decode::test_support::{raw_batch, sensors, strings};

/// 2026-12-04T12:00:00Z.
const NOW_MS: i64 = 1_796_385_600_000;

fn checks() -> RecordChecks {
    RecordChecks {
        event_time: Some((3, "ts".into(), TimeUnit::Millisecond)),
        ..RecordChecks::default()
    }
}

fn json(machine: &str, ts: &str, temperature: &str) -> String {
    format!(r#"{{"machine_id":"{machine}","ts":"{ts}","temperature":{temperature}}}"#)
}

fn decode_json(records: &[String]) -> (RawBatch, Decoded) {
    let texts: Vec<&str> = records.iter().map(String::as_str).collect();
    let raw = raw_batch(1, 100, &texts);
    let decoded = JsonDecoder::new(sensors(TimeUnit::Millisecond)).decode(&raw);
    (raw, decoded)
}

#[test]
fn an_event_time_far_ahead_of_the_clock_is_rejected_with_its_place_and_reason() {
    let (raw, mut decoded) = decode_json(&[
        json("m-1", "2026-12-04T12:00:00Z", "20.0"),
        json("m-2", "2100-01-01T00:00:00Z", "21.0"),
        json("m-3", "2026-12-04T12:59:00Z", "22.0"),
    ]);
    checks().check(&raw, &mut decoded, NOW_MS).unwrap();
    assert_eq!(
        strings(&decoded.batch, "machine_id"),
        [Some("m-1".into()), Some("m-3".into())],
        "59 minutes ahead is within the default hour"
    );
    assert_eq!(decoded.row_records, [0, 2]);
    let [bad] = &decoded.bad[..] else {
        panic!("one bad record: {:?}", decoded.bad)
    };
    assert_eq!((bad.partition, bad.offset), (1, 101));
    assert!(bad.raw.starts_with(br#"{"machine_id":"m-2""#));
    assert_eq!(
        bad.error,
        "event time ts = 2100-01-01T00:00:00Z is ahead of the clock (2026-12-04T12:00:00Z) by \
         more than event-time.max-future (1h)"
    );
}

#[test]
fn a_past_limit_rejects_old_events_and_is_off_by_default() {
    let records = [
        json("m-1", "2001-09-09T01:46:40Z", "20.0"),
        json("m-2", "2026-01-01T00:00:00Z", "21.0"),
    ];
    let (raw, mut decoded) = decode_json(&records);
    checks().check(&raw, &mut decoded, NOW_MS).unwrap();
    assert!(decoded.bad.is_empty(), "no past limit by default");

    let (raw, mut decoded) = decode_json(&records);
    let limited = RecordChecks {
        max_past: Limit::parse("3650d").unwrap(),
        ..checks()
    };
    limited.check(&raw, &mut decoded, NOW_MS).unwrap();
    assert_eq!(strings(&decoded.batch, "machine_id"), [Some("m-2".into())]);
    assert_eq!(decoded.bad.len(), 1);
    assert_eq!(decoded.bad[0].offset, 100);
    assert!(
        decoded.bad[0].error.contains(
            "is behind the clock (2026-12-04T12:00:00Z) by more than event-time.max-past (3650d)"
        ),
        "{}",
        decoded.bad[0].error
    );
}

#[test]
fn nan_and_infinite_readings_are_rejected_unless_kept() {
    // arrow-json reads numbers written as strings, "NaN" and "inf" among
    // them, and 1e999 overflows to infinity.
    let records = [
        json("m-1", "2026-12-04T12:00:00Z", "\"NaN\""),
        json("m-2", "2026-12-04T12:00:00Z", "1e999"),
        json("m-3", "2026-12-04T12:00:00Z", "null"),
        json("m-4", "2026-12-04T12:00:00Z", "\"-inf\""),
        json("m-5", "2026-12-04T12:00:00Z", "20.5"),
    ];
    let (raw, mut decoded) = decode_json(&records);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    checks().check(&raw, &mut decoded, NOW_MS).unwrap();
    assert_eq!(
        strings(&decoded.batch, "machine_id"),
        [Some("m-3".into()), Some("m-5".into())],
        "a null reading is missing, not wrong"
    );
    let errors: Vec<(i64, &str)> = decoded
        .bad
        .iter()
        .map(|b| (b.offset, b.error.as_str()))
        .collect();
    let reason = |value: &str| {
        format!(
            "temperature is {value}: NaN and infinite readings are rejected ('non-finite' = \
             'keep' accepts them)"
        )
    };
    assert_eq!(
        errors,
        [
            (100, reason("NaN").as_str()),
            (101, reason("inf").as_str()),
            (103, reason("-inf").as_str())
        ]
    );

    let (raw, mut decoded) = decode_json(&records);
    let keep = RecordChecks {
        reject_non_finite: false,
        ..checks()
    };
    keep.check(&raw, &mut decoded, NOW_MS).unwrap();
    assert_eq!(decoded.batch.num_rows(), 5);
}

#[test]
fn a_record_with_one_bad_row_leaves_none_of_its_rows_behind() {
    let raw = raw_batch(
        0,
        7,
        &[
            "s,machine_id=m-1 temperature=1 1796385600000000000\n\
             s,machine_id=m-2 temperature=2 4102444800000000000",
            "s,machine_id=m-3 temperature=3 1796385600000000000",
        ],
    );
    let mut decoded = LineProtocolDecoder::new(sensors(TimeUnit::Millisecond), None).decode(&raw);
    assert_eq!(decoded.row_records, [0, 0, 1]);
    checks().check(&raw, &mut decoded, NOW_MS).unwrap();
    assert_eq!(strings(&decoded.batch, "machine_id"), [Some("m-3".into())]);
    assert_eq!(decoded.row_records, [1]);
    assert_eq!(decoded.bad.len(), 1);
    assert_eq!(decoded.bad[0].offset, 7);
}

#[test]
fn oversized_records_are_taken_out_before_decoding() {
    let big = format!(r#"{{"machine_id":"{}"}}"#, "x".repeat(200));
    let raw = raw_batch(3, 10, &["{}", &big, "[]"]);
    let limited = RecordChecks {
        max_bytes: 100,
        ..RecordChecks::default()
    };
    let (kept, bad) = limited.screen(raw);
    assert_eq!(kept.len(), 2);
    assert_eq!(kept.payload(1), b"[]");
    assert_eq!(
        kept.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [10, 12]
    );
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].partition, bad[0].offset), (3, 11));
    assert_eq!(
        bad[0].error,
        "record of 217 bytes exceeds record.max-bytes (100)"
    );
}
