use std::sync::Arc;

use arrow::array::{
    Array, AsArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, UInt32Type};

use super::*;
use crate::decode::test_support::{floats, raw_batch, sensors, strings};

fn raw(records: &[&str]) -> RawBatch {
    raw_batch(2, 500, records)
}

fn decode(schema: SchemaRef, records: &[&str]) -> Decoded {
    LineProtocolDecoder::new(schema, None).decode(&raw(records))
}

/// What `InfluxLpEncoder` writes for a labelled reading in a fault, and
/// for one without a fault and a missing `rpm` (NaN values are left out).
const SIMULATOR: [&str; 2] = [
    "sensors,machine_id=m-0004,line=line-1,provider=acme seq=17i,temperature=71.25,vibration=0.412,\
     power=12.5,load=63.1,humidity=41.2,noise_level=72.4,rpm=1480,fault=true,fault_kind=\"overheating\" \
     1767225600006000000\n",
    "sensors,machine_id=m-0005,line=line-2,provider=acme seq=18i,temperature=65.2,vibration=0.2,\
     power=11,load=60,humidity=40,noise_level=70,fault=false 1767225600123000000\n",
];

#[test]
fn the_simulators_labelled_readings_decode_to_one_row_each() {
    let decoded = decode(sensors(TimeUnit::Millisecond), &SIMULATOR);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(b.num_rows(), 2);
    assert_eq!(
        strings(&b, "machine_id"),
        [Some("m-0004".into()), Some("m-0005".into())]
    );
    assert_eq!(strings(&b, "line")[1].as_deref(), Some("line-2"));
    assert_eq!(strings(&b, "provider")[0].as_deref(), Some("acme"));
    let ts = b
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>();
    assert_eq!(
        ts.unwrap().values(),
        &[1_767_225_600_006, 1_767_225_600_123]
    );
    let seq: Vec<_> = b
        .column_by_name("seq")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(seq, [Some(17), Some(18)]);
    assert_eq!(floats(&b, "temperature"), [Some(71.25), Some(65.2)]);
    assert_eq!(floats(&b, "rpm"), [Some(1480.0), None]);
    assert_eq!(floats(&b, "power")[1], Some(11.0));
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
fn escapes_in_tags_measurements_and_strings_are_undone() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("measurement", DataType::Utf8, false),
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let record =
        r#"my\ sensors,machine_id=m\ "1"\,\=\\x,line=line\ 1\,a\=b note="say \"hi\"\\ \ ok""#;
    let decoded = decode(schema, &[record]);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let b = decoded.batch;
    assert_eq!(strings(&b, "measurement")[0].as_deref(), Some("my sensors"));
    assert_eq!(
        strings(&b, "machine_id")[0].as_deref(),
        Some(r#"m "1",=\x"#)
    );
    assert_eq!(strings(&b, "line")[0].as_deref(), Some("line 1,a=b"));
    assert_eq!(strings(&b, "note")[0].as_deref(), Some(r#"say "hi"\ \ ok"#));
}

#[test]
fn several_lines_per_record_become_rows_in_order_with_comments_and_blanks_skipped() {
    let records = [
        "# a comment\ns,machine_id=a seq=1i 1000000\n\n  \r\ns,machine_id=b seq=2i 2000000\r\n",
        "s,machine_id=c seq=3i,note=\"two\nlines\" 3000000\ns,machine_id=d seq=4i 4000000",
    ];
    let decoded = decode(sensors(TimeUnit::Millisecond), &records);
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let ids: Vec<_> = strings(&decoded.batch, "machine_id")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

#[test]
fn a_bad_line_rejects_its_whole_record_naming_the_line() {
    let good = "s,machine_id=ok seq=1i 1000000";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{good}\ns,machine_id=x temperature=\"hot\" 1"),
            r#"line 2: column "temperature" (Float64) cannot take string "hot""#,
        ),
        (
            format!("{good}\n\ns,machine_id=x seq=1.5 1"),
            r#"line 3: column "seq" (Int64) cannot take float 1.5: not a whole number"#,
        ),
        (
            format!("{good}\ns,line=l seq=1i 1"),
            r#"line 2: missing value for NOT NULL column "machine_id""#,
        ),
        (
            format!("s,machine_id=c note=\"two\nlines\" 1\n{good}\ns,machine_id=x seq=\"9\" 1"),
            r#"line 4: column "seq" (Int64) cannot take string "9""#,
        ),
        (
            "s,machine_id=x seq=1i".into(),
            r#"line 1: missing value for NOT NULL column "ts""#,
        ),
        (
            "s,machine_id=x fault=1i 1".into(),
            r#"line 1: column "fault" (Boolean) cannot take integer 1"#,
        ),
        (
            "s,machine_id=x seq=1i,seq=2i 1".into(),
            r#"line 1: column "seq" is given twice"#,
        ),
        (
            "s,machine_id=x,machine_id=y seq=1i 1".into(),
            r#"line 1: column "machine_id" is given twice"#,
        ),
        (
            "s,machine_id=x seq=12x 1".into(),
            "line 1: Could not parse entire line. Found trailing content: 'x 1'",
        ),
        ("s,machine_id=x 1".into(), "line 1: No fields were provided"),
        (
            "s,machine_id=x seq=1i 1 trailing".into(),
            "line 1: Could not parse entire line. Found trailing content: 'trailing'",
        ),
        (
            "s,machine_id=x seq=99999999999999999999i 1".into(),
            "line 1: Unable to parse integer value '99999999999999999999'",
        ),
        (
            "s,machine_id=x seq=1i 99999999999999999999".into(),
            "line 1: Unable to parse timestamp value '99999999999999999999'",
        ),
        ("s,machine_id seq=1i".into(), "line 1: Tag Set Malformed"),
        (
            "{\"machine_id\": \"m\"}".into(),
            "line 1: No fields were provided",
        ),
        (
            "# only a comment\n#another".into(),
            "record has no data lines, only comments",
        ),
        ("".into(), "empty record"),
        (" \n\t\r\n".into(), "empty record"),
    ];
    let records: Vec<&str> = cases
        .iter()
        .map(|(r, _)| r.as_str())
        .chain([good])
        .collect();
    let decoded = decode(sensors(TimeUnit::Millisecond), &records);
    assert_eq!(decoded.batch.num_rows(), 1, "only the last record is good");
    assert_eq!(decoded.bad.len(), cases.len());
    for ((record, expected), (i, bad)) in cases.iter().zip(decoded.bad.iter().enumerate()) {
        assert_eq!(bad.error, *expected, "{record:?}");
        assert_eq!((bad.partition, bad.offset), (2, 500 + i as i64));
        assert_eq!(bad.raw, record.as_bytes());
    }
}

#[test]
fn field_types_convert_into_column_types() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("u", DataType::UInt32, true),
        Field::new("f", DataType::Float64, true),
        Field::new("i", DataType::Int64, true),
    ]));
    let decoded = decode(schema, &["m u=7u,f=3i,i=4 1", "m u=-1i 1", "m i=5u,f=2.5"]);
    assert_eq!(decoded.bad.len(), 1);
    assert!(
        decoded.bad[0]
            .error
            .contains("cannot take integer -1: out of range")
    );
    let b = decoded.batch;
    let u: Vec<_> = b.column(0).as_primitive::<UInt32Type>().iter().collect();
    assert_eq!(u, [Some(7), None]);
    assert_eq!(floats(&b, "f"), [Some(3.0), Some(2.5)]);
    let i: Vec<_> = b.column(2).as_primitive::<Int64Type>().iter().collect();
    assert_eq!(i, [Some(4), Some(5)]);
}

#[test]
fn timestamps_land_in_ms_us_and_ns_columns_and_the_named_time_column() {
    let line = "s,machine_id=m seq=1i 1767225600123456789";
    let ms = decode(sensors(TimeUnit::Millisecond), &[line]).batch;
    let ms = ms
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>();
    assert_eq!(ms.unwrap().value(0), 1_767_225_600_123);
    let us = decode(sensors(TimeUnit::Microsecond), &[line]).batch;
    let us = us
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>();
    assert_eq!(us.unwrap().value(0), 1_767_225_600_123_456);
    let ns = decode(sensors(TimeUnit::Nanosecond), &[line]).batch;
    let ns_column = ns.column_by_name("ts").unwrap();
    assert_eq!(
        ns_column.data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let ns = ns_column
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>();
    assert_eq!(ns.unwrap().value(0), 1_767_225_600_123_456_789);

    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
    ]));
    let mut decoder = LineProtocolDecoder::new(schema, Some("at"));
    let decoded = decoder.decode(&raw(&["m ts=\"x\" 1500000000", "m ts=\"y\""]));
    assert!(decoded.bad.is_empty(), "{:?}", decoded.bad);
    let at = decoded
        .batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::TimestampSecondArray>();
    let at: Vec<_> = at.unwrap().iter().collect();
    assert_eq!(at, [Some(1), None]);
}

#[test]
fn the_decoder_is_reusable_across_batches() {
    let mut decoder = LineProtocolDecoder::new(sensors(TimeUnit::Millisecond), None);
    let first = decoder.decode(&raw(&[SIMULATOR[0], "garbage"]));
    assert_eq!((first.batch.num_rows(), first.bad.len()), (1, 1));
    let second = decoder.decode(&raw(&[SIMULATOR[1]]));
    assert_eq!((second.batch.num_rows(), second.bad.len()), (1, 0));
    assert_eq!(
        strings(&second.batch, "machine_id")[0].as_deref(),
        Some("m-0005")
    );
    let empty = decoder.decode(&RawBatch::new(0));
    assert_eq!((empty.batch.num_rows(), empty.batch.num_columns()), (0, 14));
}

#[test]
fn no_input_makes_it_panic() {
    // Every prefix of valid records, and each with one byte replaced by
    // a character that matters to the syntax.
    let text = format!(
        "{}{}",
        SIMULATOR[0], "m,a=\\ b f=\"x\\\"y\",g=-1.5e3,h=t 12\n"
    );
    let bytes = text.as_bytes();
    let mut records: Vec<Vec<u8>> = (0..=bytes.len()).map(|n| bytes[..n].to_vec()).collect();
    for (i, special) in (0..bytes.len()).zip(
        [b'\\', b'"', b' ', b',', b'=', b'\n', b'#', 0xff, b'i']
            .iter()
            .cycle(),
    ) {
        let mut mutated = bytes.to_vec();
        mutated[i] = *special;
        records.push(mutated);
    }
    let mut raw = RawBatch::new(0);
    for (i, r) in records.iter().enumerate() {
        raw.push(i as i64, r);
    }
    let decoded = LineProtocolDecoder::new(sensors(TimeUnit::Nanosecond), None).decode(&raw);
    assert!(decoded.bad.len() < records.len());
    assert!(decoded.batch.num_rows() >= records.len() - decoded.bad.len());
}
