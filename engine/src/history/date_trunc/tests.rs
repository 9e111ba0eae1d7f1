//! The fast path answers exactly as DataFusion's `date_trunc` does: both are
//! called on the same arrays for every time unit, zone spelling and
//! truncation unit, and compared value by value (errors included).

use std::sync::Arc;

use arrow::array::types::{
    ArrowTimestampType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::array::{Array, ArrayRef, PrimitiveArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::functions::datetime::date_trunc::DateTruncFunc;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};

use super::{UtcDateTrunc, utc_fast_path};

const UNITS: [&str; 10] = [
    "second",
    "minute",
    "hour",
    "day",
    "DAY",
    "week",
    "month",
    "year",
    "millisecond",
    "microsecond",
];
const ZONES: [Option<&str>; 6] = [
    Some("UTC"),
    Some("+00:00"),
    Some("Etc/UTC"),
    None,
    Some("Europe/Berlin"),
    Some("+05:30"),
];

/// Values around the epoch, negative ones, a leap day, whole hours and days,
/// and (for the coarse units) values near the edges of what nanoseconds hold.
fn values(per_unit: i64) -> Vec<Option<i64>> {
    let mut v: Vec<Option<i64>> = vec![
        Some(0),
        Some(1),
        Some(-1),
        None,
        Some(86_399_999_999_999 / per_unit),
        Some(-86_400_000_000_001 / per_unit),
        // 2024-02-29T23:59:59.999999999Z, 2026-11-23T18:41:07.123456789Z
        Some(1_709_251_199_999_999_999 / per_unit),
        Some(1_795_545_667_123_456_789 / per_unit),
        Some(3_600_000_000_000 / per_unit),
        Some(-3_600_000_000_000 / per_unit),
        None,
        Some(i64::MAX / per_unit),
        Some(i64::MIN / per_unit + 1),
    ];
    // A dense sweep over two days of 2026 in odd steps.
    let start = 1_767_225_600_000_000_000_i64 / per_unit;
    let step = (7_777_777_777_i64 / per_unit).max(1);
    v.extend((0..50).map(|k| Some(start + k * step)));
    v
}

fn call(
    f: &dyn ScalarUDFImpl,
    unit: &str,
    array: ArrayRef,
) -> datafusion::common::Result<ArrayRef> {
    let rows = array.len();
    let field = Arc::new(Field::new("t", array.data_type().clone(), true));
    let args = ScalarFunctionArgs {
        args: vec![
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit.to_string()))),
            ColumnarValue::Array(array),
        ],
        arg_fields: vec![
            Arc::new(Field::new("u", DataType::Utf8, false)),
            field.clone(),
        ],
        number_rows: rows,
        return_field: field,
        config_options: Arc::new(ConfigOptions::default()),
    };
    f.invoke_with_args(args)?.into_array(rows)
}

fn compare<T: ArrowTimestampType>(per_unit: i64) {
    let all = values(per_unit);
    // In range only, and with the edge values too (DataFusion errors on some).
    let in_range: Vec<Option<i64>> = all[..11].iter().chain(&all[13..]).copied().collect();
    for zone in ZONES {
        for unit in UNITS {
            // DataFusion's own fine-unit path (no zone, or units up to a
            // minute) overflows on the edge values instead of reporting them.
            let coarse = ["hour", "day", "DAY", "week", "month", "year"].contains(&unit);
            let samples = if coarse && zone.is_some() {
                vec![&in_range, &all]
            } else {
                vec![&in_range]
            };
            for sample in samples {
                let array: ArrayRef = Arc::new(
                    sample
                        .iter()
                        .copied()
                        .collect::<PrimitiveArray<T>>()
                        .with_timezone_opt(zone),
                );
                let ours = call(&UtcDateTrunc::default(), unit, Arc::clone(&array));
                let theirs = call(&DateTruncFunc::new(), unit, array);
                match (ours, theirs) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.data_type(), b.data_type(), "{zone:?} {unit}");
                        assert_eq!(&a, &b, "{:?} {zone:?} {unit}", T::DATA_TYPE);
                    }
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("{:?} {zone:?} {unit}: {a:?} vs {b:?}", T::DATA_TYPE),
                }
            }
        }
    }
}

#[test]
fn equals_datafusion_for_every_unit_zone_and_precision() {
    compare::<TimestampSecondType>(1_000_000_000);
    compare::<TimestampMillisecondType>(1_000_000);
    compare::<TimestampMicrosecondType>(1_000);
    compare::<TimestampNanosecondType>(1);
}

#[test]
fn takes_the_fast_path_only_for_utc_and_fixed_units() {
    let utc: ArrayRef = Arc::new(
        PrimitiveArray::<TimestampMillisecondType>::from(vec![Some(90_061_001), None])
            .with_timezone("UTC"),
    );
    let unit = |u: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(u.into())));
    let fast = utc_fast_path(&[unit("day"), ColumnarValue::Array(Arc::clone(&utc))]);
    let fast = fast.expect("UTC day takes the fast path");
    assert_eq!(
        fast.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        fast.as_any()
            .downcast_ref::<PrimitiveArray<TimestampMillisecondType>>()
            .expect("ms")
            .iter()
            .collect::<Vec<_>>(),
        vec![Some(86_400_000), None]
    );
    assert!(utc_fast_path(&[unit("month"), ColumnarValue::Array(Arc::clone(&utc))]).is_none());
    let berlin: ArrayRef = Arc::new(
        PrimitiveArray::<TimestampMillisecondType>::from(vec![Some(0)])
            .with_timezone("Europe/Berlin"),
    );
    assert!(utc_fast_path(&[unit("day"), ColumnarValue::Array(berlin)]).is_none());
    let naive: ArrayRef = Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(vec![
        Some(0),
    ]));
    assert!(utc_fast_path(&[unit("day"), ColumnarValue::Array(naive)]).is_none());
}

#[test]
fn keeps_datafusions_name_aliases_and_signature() {
    let ours = UtcDateTrunc::default();
    let theirs = DateTruncFunc::new();
    assert_eq!(ours.name(), theirs.name());
    assert_eq!(ours.aliases(), theirs.aliases());
    assert_eq!(ours.signature(), theirs.signature());
}
