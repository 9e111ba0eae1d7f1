use std::sync::Arc;

use arrow::array::{
    Array, AsArray, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::datatypes::{Field, Float64Type, Int64Type, Schema, TimeUnit, UInt64Type};

use super::*;
use crate::decode::test_support::{floats, raw_batch, sensors, strings};

fn raw(records: &[&str]) -> RawBatch {
    raw_batch(4, 900, records)
}

fn decode(schema: SchemaRef, records: &[&str]) -> Decoded {
    OpenMetricsDecoder::new(schema, None).decode(&raw(records))
}

fn millis(batch: &RecordBatch) -> Vec<Option<i64>> {
    let ts = batch.column_by_name("ts").unwrap();
    ts.as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap()
        .iter()
        .collect()
}

/// What `OpenMetricsEncoder` writes for a labelled reading of machine
/// `m-0004` in an `overheating` fault, `rpm` missing (NaN is left out).
const FAULTY: &str = "\
# TYPE temperature gauge
temperature{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 71.25 1767225600.006
# TYPE vibration gauge
vibration{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 0.412 1767225600.006
# TYPE power gauge
power{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 12.5 1767225600.006
# TYPE load gauge
load{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 63.1 1767225600.006
# TYPE humidity gauge
humidity{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 41.2 1767225600.006
# TYPE noise_level gauge
noise_level{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 72.4 1767225600.006
# TYPE seq gauge
seq{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\"} 17 1767225600.006
# TYPE fault gauge
fault{machine_id=\"m-0004\",line=\"line-1\",provider=\"acme\",fault_kind=\"overheating\"} 1 1767225600.006
# EOF
";

/// The same for `m-0005` without a fault and without a `line`.
const HEALTHY: &str = "\
# TYPE temperature gauge
temperature{machine_id=\"m-0005\",provider=\"acme\"} 65.2 1767225600.123
# TYPE rpm gauge
rpm{machine_id=\"m-0005\",provider=\"acme\"} 1480 1767225600.123
# TYPE seq gauge
seq{machine_id=\"m-0005\",provider=\"acme\"} 18 1767225600.123
# TYPE fault gauge
fault{machine_id=\"m-0005\",provider=\"acme\",fault_kind=\"\"} 0 1767225600.123
# EOF
";

#[test]
fn the_simulators_labelled_readings_decode_to_one_row_each() {
    let decoded = decode(sensors(TimeUnit::Millisecond), &[FAULTY, HEALTHY]);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(b.num_rows(), 2);
    assert_eq!(
        strings(&b, "machine_id"),
        [Some("m-0004".into()), Some("m-0005".into())]
    );
    assert_eq!(strings(&b, "line"), [Some("line-1".into()), None]);
    assert_eq!(strings(&b, "provider")[1].as_deref(), Some("acme"));
    assert_eq!(
        millis(&b),
        [Some(1_767_225_600_006), Some(1_767_225_600_123)]
    );
    let seq: Vec<_> = b
        .column_by_name("seq")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(seq, [Some(17), Some(18)]);
    assert_eq!(floats(&b, "temperature"), [Some(71.25), Some(65.2)]);
    assert_eq!(floats(&b, "vibration"), [Some(0.412), None]);
    assert_eq!(floats(&b, "rpm"), [None, Some(1480.0)]);
    let fault: Vec<_> = b
        .column_by_name("fault")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(fault, [Some(true), Some(false)]);
    assert_eq!(
        strings(&b, "fault_kind"),
        [Some("overheating".into()), None]
    );
}

#[test]
fn label_escapes_are_undone() {
    // The simulator's awkward-names test layout, as it encodes it.
    let record = r#"temperature{machine_id="m \"1\",=\\x",line="line 1,a=b",provider="acme\nco"} 65.25 1767225600.123
seq{machine_id="m \"1\",=\\x",line="line 1,a=b",provider="acme\nco"} 42 1767225600.123
fault{machine_id="m \"1\",=\\x",line="line 1,a=b",provider="acme\nco",fault_kind="over \"heat\""} 1 1767225600.123
# EOF
"#;
    let decoded = decode(sensors(TimeUnit::Millisecond), &[record]);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(
        strings(&b, "machine_id")[0].as_deref(),
        Some(r#"m "1",=\x"#)
    );
    assert_eq!(strings(&b, "line")[0].as_deref(), Some("line 1,a=b"));
    assert_eq!(strings(&b, "provider")[0].as_deref(), Some("acme\nco"));
    assert_eq!(
        strings(&b, "fault_kind")[0].as_deref(),
        Some(r#"over "heat""#)
    );
}

#[test]
fn one_row_per_timestamp_in_order_of_first_appearance() {
    let record = "\
a{machine_id=\"m\"} 1 2
b{machine_id=\"m\"} 2 1
temperature{machine_id=\"m\"} 3 2
rpm{machine_id=\"m\"} 4 1
";
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("temperature", DataType::Float64, true),
        Field::new("rpm", DataType::Float64, true),
    ]));
    let decoded = decode(
        schema.clone(),
        &[record, "temperature{machine_id=\"n\"} 5\n# EOF"],
    );
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    let ts = b
        .column(1)
        .as_any()
        .downcast_ref::<TimestampSecondArray>()
        .unwrap();
    assert_eq!(ts.iter().collect::<Vec<_>>(), [Some(2), Some(1), None]);
    assert_eq!(floats(&b, "temperature"), [Some(3.0), None, Some(5.0)]);
    assert_eq!(floats(&b, "rpm"), [None, Some(4.0), None]);
    // A NOT NULL time column rejects samples without a timestamp.
    let decoded = decode(
        sensors(TimeUnit::Millisecond),
        &["temperature{machine_id=\"n\"} 5"],
    );
    assert_eq!(
        decoded.bad[0].error,
        r#"line 1: missing value for NOT NULL column "ts""#
    );
}

#[test]
fn malformed_records_are_rejected_whole_naming_the_line() {
    let good = "temperature{machine_id=\"m\"} 1 1";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{good}\ntemperature{{machine_id=\"m\"}}"),
            "line 2: expected a space and a value after \"temperature\"",
        ),
        (
            format!("# TYPE x gauge\n{good}\ntemperature{{machine_id=\"m\"}} "),
            "line 3: expected a space and a value after \"temperature\"",
        ),
        (
            format!("{good}\nrpm{{machine_id=\"m\"}} fast 1"),
            r#"line 2: invalid value "fast""#,
        ),
        (
            format!("{good}\nrpm{{machine_id=\"m\"}} 1 yesterday"),
            r#"line 2: invalid timestamp "yesterday""#,
        ),
        (
            format!("{good}\nrpm{{machine_id=\"m\"}} 1 1 2"),
            r#"line 2: unexpected "2" after the timestamp"#,
        ),
        (
            "rpm{machine_id=\"m} 1 1".into(),
            r#"line 1: label "machine_id": unterminated value"#,
        ),
        (
            r#"rpm{machine_id="m\t"} 1 1"#.into(),
            r#"line 1: label "machine_id": invalid escape "\\t" (only \\, \" and \n)"#,
        ),
        (
            "rpm{machine_id=m} 1 1".into(),
            r#"line 1: label "machine_id": expected '"' to open the value"#,
        ),
        (
            "rpm{machine_id} 1 1".into(),
            r#"line 1: expected '=' after label "machine_id""#,
        ),
        (
            "rpm{machine_id=\"m\" line=\"l\"} 1 1".into(),
            r#"line 1: expected ',' or '}' after label "machine_id""#,
        ),
        ("rpm{,} 1 1".into(), "line 1: expected a label name or '}'"),
        (
            "rpm{1a=\"x\"} 1 1".into(),
            "line 1: expected a label name or '}'",
        ),
        (
            "rpm{a=\"x\",a=\"x\"} 1 1".into(),
            r#"line 1: label "a" is given twice"#,
        ),
        ("1rpm 1 1".into(), "line 1: expected a metric name"),
        (
            "{\"machine_id\": \"m\"}".into(),
            "line 1: expected a metric name",
        ),
        (
            "rpm{machine_id=\"m\"".into(),
            r#"line 1: expected ',' or '}' after label "machine_id""#,
        ),
        (
            format!("{good}\n# EOF\n{good}"),
            "line 3: content after # EOF",
        ),
        (
            format!("{good}\nrpm{{machine_id=\"n\"}} 1 1"),
            r#"line 2: label "machine_id" is "n" here but "m" on line 1, at the same timestamp"#,
        ),
        (
            format!("{good}\ntemperature{{machine_id=\"m\"}} 2 1"),
            r#"line 2: metric "temperature" appears again at the same timestamp (first on line 1)"#,
        ),
        (
            format!("{good}\nmachine_id 2 1"),
            r#"line 2: "machine_id" is a metric here but a label on line 1"#,
        ),
        (
            format!("{good}\nx{{temperature=\"t\"}} 2 1"),
            r#"line 2: "temperature" is a label here but a metric on line 1"#,
        ),
        (
            format!("{good}\nseq{{machine_id=\"m\"}} 1.5 1"),
            r#"line 2: column "seq" (Int64) cannot take float 1.5: not a whole number"#,
        ),
        (
            "fault{machine_id=\"m\"} 2 1".into(),
            r#"line 1: column "fault" (Boolean) cannot take integer 2"#,
        ),
        (
            "temperature{line=\"l\"} 2 1".into(),
            r#"line 1: missing value for NOT NULL column "machine_id""#,
        ),
        (
            "temperature{machine_id=\"\"} 2 1".into(),
            r#"line 1: missing value for NOT NULL column "machine_id""#,
        ),
        (
            "# TYPE temperature gauge\n# EOF\n".into(),
            "record has no samples",
        ),
        ("".into(), "empty record"),
        ("\n  \n".into(), "empty record"),
    ];
    let records: Vec<&str> = cases
        .iter()
        .map(|(r, _)| r.as_str())
        .chain([good])
        .collect();
    let decoded = decode(sensors(TimeUnit::Millisecond), &records);
    assert_eq!(
        decoded.batch.num_rows(),
        1,
        "only the last record is good: {:?}",
        decoded.bad
    );
    assert_eq!(decoded.bad.len(), cases.len());
    for ((record, expected), (i, bad)) in cases.iter().zip(decoded.bad.iter().enumerate()) {
        assert_eq!(bad.error, *expected, "{record:?}");
        assert_eq!((bad.partition, bad.offset), (4, 900 + i as i64));
        assert_eq!(bad.raw, record.as_bytes());
    }
}

#[test]
fn lenient_forms_are_accepted() {
    let record = "\
# HELP temperature Temperature.\r
# UNIT temperature celsius
# a free comment
  temperature{ machine_id = \"m\" , line=\"l\", } 1.5 1767225600 # {trace_id=\"a b\"} 1.0 1
rpm{machine_id=\"m\"}\t2\t1767225600\r
seq{} 3 1767225600 # {} 1
";
    let decoded = decode(sensors(TimeUnit::Millisecond), &[record]);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(b.num_rows(), 1);
    assert_eq!(strings(&b, "line")[0].as_deref(), Some("l"));
    assert_eq!(floats(&b, "temperature"), [Some(1.5)]);
    assert_eq!(floats(&b, "rpm"), [Some(2.0)]);
    assert_eq!(millis(&b), [Some(1_767_225_600_000)]);
}

#[test]
fn values_keep_their_kind_per_column_type() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("big", DataType::UInt64, true),
        Field::new("count", DataType::Int64, true),
        Field::new("nan", DataType::Float64, true),
        Field::new("inf", DataType::Float64, true),
        Field::new("on", DataType::Boolean, true),
        Field::new("off", DataType::Boolean, true),
    ]));
    let record = "big 18446744073709551615\ncount 1e3\nnan NaN\ninf -Inf\non 1.0\noff 0\n# EOF";
    let decoded = decode(schema, &[record]);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(b.column(0).as_primitive::<UInt64Type>().value(0), u64::MAX);
    assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 1000);
    assert!(b.column(2).as_primitive::<Float64Type>().value(0).is_nan());
    assert_eq!(
        b.column(3).as_primitive::<Float64Type>().value(0),
        f64::NEG_INFINITY
    );
    assert!(b.column(4).as_boolean().value(0));
    assert!(!b.column(5).as_boolean().value(0));
    assert_eq!(
        number("9007199254740993"),
        Ok(Value::Int(9_007_199_254_740_993))
    );
}

#[test]
fn timestamps_parse_exactly() {
    let ok = [
        ("1767225600.123", 1_767_225_600_123_000_000),
        ("1767225600.006", 1_767_225_600_006_000_000),
        ("1767225600", 1_767_225_600_000_000_000),
        ("1767225600.", 1_767_225_600_000_000_000),
        (".5", 500_000_000),
        ("+1.25", 1_250_000_000),
        ("-1.5", -1_500_000_000),
        ("1767225600.1234567891", 1_767_225_600_123_456_789),
        ("1.5e9", 1_500_000_000_000_000_000),
        ("-1e-3", -1_000_000),
    ];
    for (text, nanos) in ok {
        assert_eq!(timestamp(text), Ok(nanos), "{text}");
    }
    let bad = [
        ("NaN", "invalid timestamp \"NaN\""),
        ("+Inf", "invalid timestamp \"+Inf\""),
        ("1e30", "timestamp \"1e30\" is out of range"),
        ("99999999999", "timestamp \"99999999999\" is out of range"),
        (
            "99999999999999999999",
            "timestamp \"99999999999999999999\" is out of range",
        ),
        (".", "invalid timestamp \".\""),
        ("-", "invalid timestamp \"-\""),
        ("1.2.3", "invalid timestamp \"1.2.3\""),
        ("0x10", "invalid timestamp \"0x10\""),
    ];
    for (text, error) in bad {
        assert_eq!(timestamp(text), Err(error.to_owned()), "{text}");
    }
}

#[test]
fn timestamps_land_in_s_ms_us_and_ns_columns() {
    let record = "temperature{machine_id=\"m\"} 1 1767225600.123456789";
    let batch = |unit| decode(sensors(unit), &[record]).batch;
    let s = batch(TimeUnit::Second);
    let s = s
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampSecondArray>();
    assert_eq!(s.unwrap().value(0), 1_767_225_600);
    assert_eq!(
        millis(&batch(TimeUnit::Millisecond)),
        [Some(1_767_225_600_123)]
    );
    let us = batch(TimeUnit::Microsecond);
    let us = us
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>();
    assert_eq!(us.unwrap().value(0), 1_767_225_600_123_456);
    let ns = batch(TimeUnit::Nanosecond);
    let ns = ns.column_by_name("ts").unwrap();
    assert_eq!(
        ns.data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let ns = ns.as_any().downcast_ref::<TimestampNanosecondArray>();
    assert_eq!(ns.unwrap().value(0), 1_767_225_600_123_456_789);
    // A named time column.
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Float64, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]));
    let decoded = OpenMetricsDecoder::new(schema, Some("at")).decode(&raw(&["ts 7 1.5"]));
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let at = decoded
        .batch
        .column(1)
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>();
    assert_eq!(at.unwrap().value(0), 1500);
}

#[test]
fn no_input_makes_it_panic() {
    // Every prefix of a valid exposition, and each with one byte
    // replaced by a character that matters to the syntax.
    let text = format!(
        "{}é{{a=\"\\\\\\n\\\"ü\"}} 1 1 # {{}} 1\n",
        FAULTY.trim_end_matches("# EOF\n")
    );
    let bytes = text.as_bytes();
    let mut records: Vec<Vec<u8>> = (0..=bytes.len()).map(|n| bytes[..n].to_vec()).collect();
    let specials = [
        b'\\', b'"', b' ', b',', b'=', b'\n', b'#', 0xff, b'{', b'}', b'.', b'-', 0xc3,
    ];
    for (i, special) in (0..bytes.len()).zip(specials.iter().cycle()) {
        let mut mutated = bytes.to_vec();
        mutated[i] = *special;
        records.push(mutated);
    }
    let mut raw = RawBatch::new(0);
    for (i, r) in records.iter().enumerate() {
        raw.push(i as i64, r);
    }
    let decoded = OpenMetricsDecoder::new(sensors(TimeUnit::Nanosecond), None).decode(&raw);
    assert!(decoded.bad.len() < records.len());
    assert!(decoded.batch.num_rows() >= records.len() - decoded.bad.len());
}
