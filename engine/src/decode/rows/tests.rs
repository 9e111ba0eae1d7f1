use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float32Array, Int8Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{Field, Schema};

use super::*;

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// Stages and commits one row into a single column of `data_type`,
/// returning the column or the error.
fn one(data_type: DataType, value: Value<'_>) -> Result<ArrayRef, String> {
    let mut rows = RowBuilder::new(schema(vec![Field::new("c", data_type, true)]));
    rows.stage([("c", value)]).map_err(|e| e.to_string())?;
    rows.commit();
    let batch = rows.finish().map_err(|e| e.to_string())?;
    Ok(batch.column(0).clone())
}

#[test]
fn numbers_convert_into_numeric_columns_when_they_fit() {
    use Value::*;
    let ok: Vec<(DataType, Value<'_>, f64)> = vec![
        (DataType::Float64, Int(-3), -3.0),
        (DataType::Float64, UInt(7), 7.0),
        (DataType::Float64, Float(65.2), 65.2),
        (DataType::Float64, Float(f64::NAN), f64::NAN),
        (DataType::Float32, Float(1.5), 1.5),
        (DataType::Int64, Float(42.0), 42.0),
        (DataType::Int64, Float(-0.0), 0.0),
        (DataType::Int64, UInt(9), 9.0),
        (DataType::Int8, Int(-128), -128.0),
        (DataType::Int8, Float(127.0), 127.0),
        (DataType::UInt8, Int(255), 255.0),
        (DataType::UInt64, Float(3.0), 3.0),
    ];
    for (data_type, value, expected) in ok {
        let column = one(data_type.clone(), value).unwrap();
        let got = match &data_type {
            DataType::Float64 => column
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(0),
            DataType::Float32 => column
                .as_primitive::<arrow::datatypes::Float32Type>()
                .value(0)
                .into(),
            DataType::Int64 => column
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0) as f64,
            DataType::Int8 => column
                .as_primitive::<arrow::datatypes::Int8Type>()
                .value(0)
                .into(),
            DataType::UInt8 => column
                .as_primitive::<arrow::datatypes::UInt8Type>()
                .value(0)
                .into(),
            DataType::UInt64 => column
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0) as f64,
            other => panic!("{other}"),
        };
        assert!(
            got == expected || (got.is_nan() && expected.is_nan()),
            "{data_type} {value}: {got}"
        );
    }
}

#[test]
fn misfits_name_the_column_the_value_and_the_reason() {
    use Value::*;
    let long = "x".repeat(100);
    let long_error = format!("cannot take string \"{}\"…", "x".repeat(64));
    let bad: Vec<(DataType, Value<'_>, &str)> = vec![
        (
            DataType::Int64,
            Float(1.5),
            r#"column "c" (Int64) cannot take float 1.5: not a whole number"#,
        ),
        (
            DataType::Int64,
            Float(f64::INFINITY),
            "cannot take float inf: not a whole number",
        ),
        (
            DataType::Int64,
            Float(1e19),
            "cannot take float 1e19: out of range",
        ),
        (DataType::Int64, UInt(u64::MAX), "out of range"),
        (
            DataType::Int8,
            Int(128),
            r#"column "c" (Int8) cannot take integer 128: out of range"#,
        ),
        (
            DataType::UInt32,
            Int(-1),
            "(UInt32) cannot take integer -1: out of range",
        ),
        (
            DataType::Float32,
            Float(1e300),
            "cannot take float 1e300: out of range",
        ),
        (
            DataType::Float64,
            Str("hot"),
            r#"column "c" (Float64) cannot take string "hot""#,
        ),
        (DataType::Float64, Bool(true), "cannot take boolean true"),
        (
            DataType::Float64,
            TimestampNanos(5),
            "cannot take timestamp 5 ns",
        ),
        (DataType::Int64, Str("1"), r#"cannot take string "1""#),
        (DataType::Boolean, Int(1), "(Boolean) cannot take integer 1"),
        (DataType::Utf8, Float(1.0), "(Utf8) cannot take float 1.0"),
        (
            DataType::Timestamp(TimeUnit::Millisecond, None),
            Int(5),
            "cannot take integer 5",
        ),
        (
            DataType::Timestamp(TimeUnit::Second, None),
            Str("soon"),
            "not an RFC 3339 timestamp",
        ),
        (DataType::Date32, Str("2026-13-01"), "not a date"),
        (
            DataType::Decimal128(10, 2),
            Int(5),
            "not supported by this decoder",
        ),
        (DataType::Utf8View, Int(5), "cannot take integer 5"),
        (DataType::Int8, Str(&long), &long_error),
    ];
    for (data_type, value, expected) in bad {
        let error = one(data_type.clone(), value).unwrap_err();
        assert!(error.contains(expected), "{data_type} {value:?}: {error}");
    }
}

#[test]
fn strings_booleans_and_dates_land_in_their_columns() {
    let s = one(DataType::Utf8, Value::Str("m-0001")).unwrap();
    assert_eq!(s.as_string::<i32>().value(0), "m-0001");
    let s = one(DataType::LargeUtf8, Value::Str("é")).unwrap();
    assert_eq!(s.as_string::<i64>().value(0), "é");
    let s = one(
        DataType::Utf8View,
        Value::Str("a longer string than twelve bytes"),
    )
    .unwrap();
    assert_eq!(
        s.as_string_view().value(0),
        "a longer string than twelve bytes"
    );
    let b = one(DataType::Boolean, Value::Bool(true)).unwrap();
    assert!(b.as_any().downcast_ref::<BooleanArray>().unwrap().value(0));
    let d = one(DataType::Date32, Value::Str("2026-01-02")).unwrap();
    assert_eq!(
        d.as_any().downcast_ref::<Date32Array>().unwrap().value(0),
        20_455
    );
    let d = one(DataType::Date32, Value::TimestampNanos(-1)).unwrap();
    assert_eq!(
        d.as_any().downcast_ref::<Date32Array>().unwrap().value(0),
        -1
    );
}

#[test]
fn timestamps_convert_to_every_unit_rounding_down_and_keep_the_zone() {
    let nanos = 1_767_225_600_123_456_789;
    let utc = Some(Arc::<str>::from("UTC"));
    let cases: Vec<(TimeUnit, i64, i64)> = vec![
        (TimeUnit::Second, nanos, 1_767_225_600),
        (TimeUnit::Millisecond, nanos, 1_767_225_600_123),
        (TimeUnit::Microsecond, nanos, 1_767_225_600_123_456),
        (TimeUnit::Nanosecond, nanos, nanos),
        (TimeUnit::Millisecond, -1, -1),
        (TimeUnit::Second, -1_500_000_000, -2),
    ];
    for (unit, value, expected) in cases {
        let data_type = DataType::Timestamp(unit, utc.clone());
        let column = one(data_type.clone(), Value::TimestampNanos(value)).unwrap();
        assert_eq!(column.data_type(), &data_type);
        let got = match unit {
            TimeUnit::Second => column
                .as_any()
                .downcast_ref::<TimestampSecondArray>()
                .unwrap()
                .value(0),
            TimeUnit::Millisecond => column
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap()
                .value(0),
            TimeUnit::Microsecond => column
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .value(0),
            TimeUnit::Nanosecond => column
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap()
                .value(0),
        };
        assert_eq!(got, expected, "{unit:?} {value}");
    }
    let from_text = one(
        DataType::Timestamp(TimeUnit::Millisecond, None),
        Value::Str("2026-01-01T00:00:00.123Z"),
    )
    .unwrap();
    let ms = from_text
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    assert_eq!(ms.value(0), 1_767_225_600_123);
}

fn table() -> SchemaRef {
    schema(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("temperature", DataType::Float64, true),
        Field::new("seq", DataType::Int64, true),
    ])
}

#[test]
fn rows_fill_missing_nullable_columns_with_nulls_and_ignore_unknown_names() {
    let mut rows = RowBuilder::new(table());
    rows.stage([
        ("machine_id", Value::Str("m-1")),
        ("unknown", Value::Str("ignored")),
        ("unknown", Value::Int(2)),
        ("ts", Value::TimestampNanos(1_000_000)),
        ("seq", Value::Int(1)),
    ])
    .unwrap();
    rows.commit();
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.schema(), table());
    assert!(batch.column(2).is_null(0));
    let seq = batch
        .column(3)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(seq.value(0), 1);
}

#[test]
fn missing_not_null_and_twice_given_columns_are_named() {
    let mut rows = RowBuilder::new(table());
    let e = rows.stage([("machine_id", Value::Str("m"))]).unwrap_err();
    assert_eq!(e.to_string(), r#"missing value for NOT NULL column "ts""#);
    assert_eq!(e.column(), "ts");
    let e = rows
        .stage([
            ("machine_id", Value::Str("m")),
            ("ts", Value::TimestampNanos(0)),
            ("seq", Value::Int(1)),
            ("seq", Value::Int(1)),
        ])
        .unwrap_err();
    assert_eq!(e.to_string(), r#"column "seq" is given twice"#);
    assert_eq!(rows.staged_rows(), 0);
}

#[test]
fn a_bad_row_leaves_nothing_and_rollback_drops_a_whole_record() {
    let mut rows = RowBuilder::new(table());
    let good = |id| {
        [
            ("machine_id", Value::Str(id)),
            ("ts", Value::TimestampNanos(0)),
        ]
    };
    rows.stage(good("a")).unwrap();
    rows.commit();
    // A record of two rows, the second bad: the first stays staged…
    rows.stage(good("b")).unwrap();
    let e = rows
        .stage([
            ("machine_id", Value::Str("c")),
            ("ts", Value::TimestampNanos(0)),
            ("temperature", Value::Str("hot")),
        ])
        .unwrap_err();
    assert_eq!(e.column(), "temperature");
    assert_eq!(rows.staged_rows(), 1);
    // …until the record is rolled back.
    rows.rollback();
    rows.stage(good("d")).unwrap();
    rows.stage(good("e")).unwrap();
    assert_eq!(rows.staged_rows(), 2);
    rows.commit();
    assert_eq!(rows.len(), 3);
    let batch = rows.finish().unwrap();
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["a", "d", "e"]);
    // The builder starts over.
    assert!(rows.is_empty());
    assert_eq!(rows.finish().unwrap().num_rows(), 0);
}

#[test]
fn unsupported_and_odd_schemas_still_build() {
    let mut rows = RowBuilder::new(schema(vec![
        Field::new("d", DataType::Decimal128(10, 2), true),
        Field::new("i", DataType::Int8, true),
        Field::new("u", DataType::UInt64, true),
        Field::new("f", DataType::Float32, true),
    ]));
    rows.stage([
        ("i", Value::Int(-5)),
        ("u", Value::UInt(u64::MAX)),
        ("f", Value::Int(2)),
    ])
    .unwrap();
    rows.stage([]).unwrap();
    rows.commit();
    assert_eq!(rows.data_type("i"), Some(&DataType::Int8));
    assert_eq!(rows.data_type("nope"), None);
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.column(0).null_count(), 2);
    assert_eq!(
        batch
            .column(1)
            .as_any()
            .downcast_ref::<Int8Array>()
            .unwrap()
            .value(0),
        -5
    );
    assert_eq!(
        batch
            .column(2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(0),
        u64::MAX
    );
    assert_eq!(
        batch
            .column(3)
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap()
            .value(0),
        2.0
    );
    assert!(batch.column(1).is_null(1));

    let mut empty = RowBuilder::new(schema(vec![]));
    empty.stage([("x", Value::Int(1))]).unwrap();
    empty.stage([]).unwrap();
    assert_eq!(empty.staged_rows(), 2);
    empty.commit();
    assert_eq!(empty.finish().unwrap().num_rows(), 2);
}

#[test]
fn time_column_defaults_to_ts_then_time() {
    let both = table();
    assert_eq!(resolve_time_column(&both, None).as_deref(), Some("ts"));
    assert_eq!(
        resolve_time_column(&both, Some("at")).as_deref(),
        Some("at")
    );
    let time = schema(vec![Field::new("time", DataType::Int64, true)]);
    assert_eq!(resolve_time_column(&time, None).as_deref(), Some("time"));
    assert_eq!(resolve_time_column(&schema(vec![]), None), None);
}

#[test]
fn the_decode_loop_keeps_record_order_and_rejects_empty_and_non_utf8_records() {
    let mut raw = RawBatch::new(7);
    for (offset, payload) in [
        (10, &b"a"[..]),
        (11, b" \n\t"),
        (12, b"\xff\xfe"),
        (13, b"b"),
        (14, b"boom"),
    ] {
        raw.push(offset, payload);
    }
    let mut rows = RowBuilder::new(schema(vec![Field::new("v", DataType::Utf8, false)]));
    let decoded = decode_records(&raw, &mut rows, |rows, text| {
        for part in text.split(',') {
            rows.stage([("v", Value::Str(part))])
                .map_err(|e| e.to_string())?;
        }
        if text == "boom" {
            return Err("boom".into());
        }
        Ok(())
    });
    let values = decoded
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(values.iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
    let bad: Vec<_> = decoded
        .bad
        .iter()
        .map(|b| (b.partition, b.offset, b.error.as_str()))
        .collect();
    assert_eq!(bad[0], (7, 11, "empty record"));
    assert_eq!((bad[1].1, bad[2]), (12, (7, 14, "boom")));
    assert!(
        bad[1].2.starts_with("record is not valid UTF-8"),
        "{}",
        bad[1].2
    );
    assert_eq!(decoded.bad[2].raw, b"boom");
}
