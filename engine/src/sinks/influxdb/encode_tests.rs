use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float32Array,
    Float64Array, Int8Array, Int32Array, Int64Array, StringArray, StringViewArray,
    TimestampMillisecondArray, TimestampSecondArray, UInt16Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use influxdb_line_protocol::{FieldValue, parse_lines};

use super::*;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// A layout over `batch`: measurement `m`, the named tags, every other
/// column but `time_column` a field.
fn layout(
    batch: &RecordBatch,
    measurement: Measurement,
    tags: &[&str],
    time_column: Option<&str>,
    escaping: Escaping,
) -> Layout {
    let schema = batch.schema();
    let index = |n: &str| schema.index_of(n).unwrap();
    let time = time_column.map(|n| match schema.field(index(n)).data_type() {
        DataType::Timestamp(unit, _) => (index(n), *unit),
        other => panic!("{other}"),
    });
    let measurement_column = match measurement {
        Measurement::Column(i) => Some(i),
        Measurement::Fixed(_) => None,
    };
    let fields = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            !tags.contains(&f.name().as_str())
                && Some(*i) != time.map(|t| t.0)
                && Some(*i) != measurement_column
        })
        .map(|(i, f)| (f.name().clone(), i, FieldKind::of(f.data_type()).unwrap()))
        .collect();
    Layout {
        measurement,
        tags: tags.iter().map(|t| (t.to_string(), index(t))).collect(),
        fields,
        time,
        precision: Precision::Nanoseconds,
        escaping,
    }
}

fn encode_with(layout: Layout, batch: &RecordBatch) -> (String, EncodeStats, Vec<Rejected>) {
    let encoder = LineEncoder::new(layout).unwrap();
    let mut lines = Lines::default();
    let mut stats = EncodeStats::default();
    let rejected = encoder.encode(batch, &mut lines, &mut stats).unwrap();
    assert_eq!(lines.len() as u64, stats.lines);
    (String::from_utf8(lines.body).unwrap(), stats, rejected)
}

fn fixed(name: &str) -> Measurement {
    Measurement::Fixed(name.to_string())
}

#[test]
fn field_types_have_their_suffixes_and_timestamps_are_nanoseconds() {
    let b = batch(vec![
        ("i", Arc::new(Int32Array::from(vec![-7])) as ArrayRef),
        ("small", Arc::new(Int8Array::from(vec![3]))),
        ("u", Arc::new(UInt64Array::from(vec![u64::MAX]))),
        ("u16", Arc::new(UInt16Array::from(vec![9]))),
        ("f", Arc::new(Float64Array::from(vec![0.1]))),
        ("whole", Arc::new(Float64Array::from(vec![3.0]))),
        ("f32", Arc::new(Float32Array::from(vec![1.5]))),
        ("ok", Arc::new(BooleanArray::from(vec![true]))),
        ("no", Arc::new(BooleanArray::from(vec![false]))),
        ("s", Arc::new(StringArray::from(vec!["x"]))),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![1_764_000_000_123])),
        ),
    ]);
    let (text, stats, _) = encode_with(layout(&b, fixed("m"), &[], Some("ts"), Escaping::Go), &b);
    assert_eq!(
        text,
        "m i=-7i,small=3i,u=18446744073709551615u,u16=9u,f=0.1,whole=3,f32=1.5,ok=true,no=false,s=\"x\" 1764000000123000000\n"
    );
    assert_eq!(stats.lines, 1);
}

#[test]
fn names_and_tag_values_are_escaped() {
    let b = batch(vec![
        (
            "tag key,=x",
            Arc::new(StringArray::from(vec!["v a,l=ue"])) as ArrayRef,
        ),
        ("field key, =", Arc::new(Int64Array::from(vec![1]))),
    ]);
    for escaping in [Escaping::Go, Escaping::Rust] {
        let (text, _, _) = encode_with(
            layout(
                &b,
                fixed("my meas,ure=ment"),
                &["tag key,=x"],
                None,
                escaping,
            ),
            &b,
        );
        assert_eq!(
            text,
            "my\\ meas\\,ure=ment,tag\\ key\\,\\=x=v\\ a\\,l\\=ue field\\ key\\,\\ \\==1i\n"
        );
    }
}

#[test]
fn strings_keep_quotes_backslashes_and_newlines() {
    let text = "say \"hi\"\\ then\nbye\\";
    let b = batch(vec![(
        "s",
        Arc::new(StringArray::from(vec![text])) as ArrayRef,
    )]);
    let (lines, _, _) = encode_with(layout(&b, fixed("m"), &[], None, Escaping::Go), &b);
    assert_eq!(lines, "m s=\"say \\\"hi\\\"\\\\ then\nbye\\\\\"\n");
    let parsed = parse_lines(&lines).next().unwrap().unwrap();
    assert_eq!(
        parsed.field_value("s"),
        Some(&FieldValue::String(text.into()))
    );
}

#[test]
fn null_nan_and_infinite_fields_are_skipped_and_counted() {
    let b = batch(vec![
        (
            "t",
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])) as ArrayRef,
        ),
        (
            "f",
            Arc::new(Float64Array::from(vec![
                Some(f64::NAN),
                Some(f64::INFINITY),
                None,
            ])),
        ),
        (
            "g",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(f64::NEG_INFINITY),
                Some(2.5),
            ])),
        ),
    ]);
    let (text, stats, rejected) =
        encode_with(layout(&b, fixed("m"), &["t"], None, Escaping::Go), &b);
    // Row 2 has no field left; row 3 has no tag value (tags are optional).
    assert_eq!(text, "m,t=a g=1\nm g=2.5\n");
    assert_eq!(stats.rows, 3);
    assert_eq!(stats.lines, 2);
    assert_eq!(stats.non_finite_fields, 3);
    assert_eq!(stats.null_fields, 1);
    assert_eq!(stats.rows_without_fields, 1);
    assert!(rejected.is_empty());
}

#[test]
fn precision_divides_and_rounds_down() {
    let b = batch(vec![
        ("f", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![1_500, -1_500])),
        ),
    ]);
    let mut l = layout(&b, fixed("m"), &[], Some("ts"), Escaping::Go);
    l.precision = Precision::Seconds;
    let (text, _, _) = encode_with(l, &b);
    assert_eq!(text, "m f=1i 1\nm f=2i -2\n");
    assert_eq!(
        to_precision(5, TimeUnit::Second, Precision::Microseconds),
        5_000_000
    );
    assert_eq!(
        to_precision(1_234_567, TimeUnit::Nanosecond, Precision::Milliseconds),
        1
    );
}

#[test]
fn rows_without_time_or_measurement_are_counted_not_sent() {
    let b = batch(vec![
        (
            "name",
            Arc::new(StringArray::from(vec![Some("a"), None, Some("")])) as ArrayRef,
        ),
        ("f", Arc::new(Int64Array::from(vec![1, 2, 3]))),
        (
            "ts",
            Arc::new(TimestampSecondArray::from(vec![Some(1), Some(2), Some(3)])),
        ),
    ]);
    let (text, stats, _) = encode_with(
        layout(&b, Measurement::Column(0), &[], Some("ts"), Escaping::Go),
        &b,
    );
    assert_eq!(text, "a f=1i 1000000000\n");
    assert_eq!(stats.rows_without_measurement_or_time, 2);

    let b = batch(vec![
        ("f", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampSecondArray::from(vec![None, Some(2)])),
        ),
    ]);
    let (text, stats, _) = encode_with(layout(&b, fixed("m"), &[], Some("ts"), Escaping::Go), &b);
    assert_eq!(text, "m f=2i 2000000000\n");
    assert_eq!(stats.rows_without_measurement_or_time, 1);
}

#[test]
fn values_a_target_cannot_carry_are_rejected_with_the_reason() {
    let b = batch(vec![
        (
            "t",
            Arc::new(StringArray::from(vec!["ok", "line\nbreak", "trailing\\"])) as ArrayRef,
        ),
        ("f", Arc::new(Int64Array::from(vec![1, 2, 3]))),
    ]);
    let (text, stats, rejected) =
        encode_with(layout(&b, fixed("m"), &["t"], None, Escaping::Go), &b);
    assert_eq!(text, "m,t=ok f=1i\n");
    assert_eq!(stats.rows_unrepresentable, 2);
    assert_eq!(rejected.len(), 2);
    assert!(rejected[0].error.contains("newline"), "{rejected:?}");
    assert!(rejected[1].error.contains("backslash"), "{rejected:?}");
    // InfluxDB 3 refuses a trailing backslash even escaped.
    let (text, _, rejected) = encode_with(layout(&b, fixed("m"), &["t"], None, Escaping::Rust), &b);
    assert_eq!(text, "m,t=ok f=1i\n");
    assert_eq!(rejected.len(), 2);
}

#[test]
fn influxdb3_output_parses_back_to_the_same_values() {
    let tags = ["a,b c=d", "back\\slash", "\\,", "\\\\x"];
    let strings = ["q\"uote", "b\\s", "new\nline", "\\\""];
    let b = batch(vec![
        (
            "tag, k=",
            Arc::new(StringArray::from(tags.to_vec())) as ArrayRef,
        ),
        ("s f=", Arc::new(StringArray::from(strings.to_vec()))),
        ("n", Arc::new(Int64Array::from(vec![-1, 0, 1, i64::MAX]))),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3, 4])),
        ),
    ]);
    let (text, stats, rejected) = encode_with(
        layout(&b, fixed("m e,a"), &["tag, k="], Some("ts"), Escaping::Rust),
        &b,
    );
    assert!(rejected.is_empty());
    let parsed: Vec<_> = parse_lines(&text).map(|l| l.unwrap()).collect();
    assert_eq!(parsed.len() as u64, stats.lines);
    for (i, line) in parsed.iter().enumerate() {
        assert_eq!(line.series.measurement.to_string(), "m e,a");
        let tag_set = line.series.tag_set.as_ref().unwrap();
        assert_eq!(tag_set[0].0.to_string(), "tag, k=");
        assert_eq!(tag_set[0].1.to_string(), tags[i], "line {i}: {text}");
        assert_eq!(
            line.field_value("s f="),
            Some(&FieldValue::String(strings[i].into()))
        );
        assert_eq!(line.timestamp, Some((i as i64 + 1) * 1_000_000));
    }
}

#[test]
fn other_engine_types_are_written_as_their_nearest_line_protocol_type() {
    let dict: DictionaryArray<Int32Type> = vec!["x", "y"].into_iter().collect();
    let b = batch(vec![
        (
            "view",
            Arc::new(StringViewArray::from(vec!["v1", "v2"])) as ArrayRef,
        ),
        ("dict", Arc::new(dict)),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![12345, -5])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("day", Arc::new(Date32Array::from(vec![0, 20_000]))),
        (
            "at",
            Arc::new(TimestampSecondArray::from(vec![1, 2]).with_timezone("UTC")),
        ),
    ]);
    let (text, _, _) = encode_with(layout(&b, fixed("m"), &["dict"], None, Escaping::Go), &b);
    assert_eq!(
        text,
        "m,dict=x view=\"v1\",dec=123.45,day=\"1970-01-01\",at=1000000000i\n\
         m,dict=y view=\"v2\",dec=-0.05,day=\"2024-10-04\",at=2000000000i\n"
    );
}

#[test]
fn unsupported_types_have_no_field_kind() {
    assert_eq!(FieldKind::of(&DataType::Binary), None);
    assert_eq!(
        FieldKind::of(&DataType::List(Arc::new(Field::new(
            "x",
            DataType::Int32,
            true
        )))),
        None
    );
    assert_eq!(FieldKind::of(&DataType::Utf8View), Some(FieldKind::Str));
}
