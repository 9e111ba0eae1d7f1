//! `date_trunc` for history queries: DataFusion 55's own function with an
//! integer fast path for UTC.
//!
//! The history stores window bounds as `Timestamp(…, "UTC")`. For a
//! time-zoned array DataFusion 55 truncates to an hour or a day value by
//! value through chrono-tz (`general_date_trunc`: a zone lookup, a local
//! date-time rebuilt field by field, a string formatted per call) — about
//! 30 % of a per-machine daily-averages query (docs/BENCHMARKS.md, section
//! "History queries"). In UTC an hour and a day have a fixed length, so the
//! answer is `v - v.rem_euclid(step)` in the array's own unit, which is
//! exactly what DataFusion computes by the long way. Everything else (other
//! zones, calendar units, scalars, values whose nanoseconds overflow, which
//! DataFusion reports as errors) goes to DataFusion's implementation, so the
//! results never differ (the tests compare both on every unit and zone).

use std::sync::Arc;

use arrow::array::types::{
    ArrowTimestampType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{DataType, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions::datetime::date_trunc::DateTruncFunc;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// DataFusion's `date_trunc` (same name, aliases, signature, types and
/// results), faster on UTC timestamps truncated to a second, minute, hour or
/// day.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct UtcDateTrunc {
    inner: DateTruncFunc,
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(truncated) = utc_fast_path(&args.args) {
            return Ok(ColumnarValue::Array(truncated));
        }
        self.inner.invoke_with_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The truncated array when the fast path applies: a constant fixed-length
/// unit and a UTC timestamp array; `None` hands the call to DataFusion.
fn utc_fast_path(args: &[ColumnarValue]) -> Option<ArrayRef> {
    let [ColumnarValue::Scalar(unit), ColumnarValue::Array(array)] = args else {
        return None;
    };
    let step_ns = fixed_step_ns(unit)?;
    let DataType::Timestamp(time_unit, Some(tz)) = array.data_type() else {
        return None;
    };
    if !is_utc(tz) {
        return None;
    }
    match time_unit {
        TimeUnit::Second => truncate::<TimestampSecondType>(array, step_ns),
        TimeUnit::Millisecond => truncate::<TimestampMillisecondType>(array, step_ns),
        TimeUnit::Microsecond => truncate::<TimestampMicrosecondType>(array, step_ns),
        TimeUnit::Nanosecond => truncate::<TimestampNanosecondType>(array, step_ns),
    }
}

/// Nanoseconds in `unit` when it is a unit of fixed length in UTC.
fn fixed_step_ns(unit: &ScalarValue) -> Option<i64> {
    let (ScalarValue::Utf8(Some(text))
    | ScalarValue::Utf8View(Some(text))
    | ScalarValue::LargeUtf8(Some(text))) = unit
    else {
        return None;
    };
    match text.to_lowercase().as_str() {
        "second" => Some(NANOS_PER_SECOND),
        "minute" => Some(60 * NANOS_PER_SECOND),
        "hour" => Some(3_600 * NANOS_PER_SECOND),
        "day" => Some(86_400 * NANOS_PER_SECOND),
        _ => None,
    }
}

/// Zone names whose offset is zero at every instant, spelled as DataFusion
/// parses them (other spellings, e.g. "utc", take DataFusion's own path).
fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "+00:00" | "Etc/UTC")
}

/// `v - v.rem_euclid(step)` for every value, in the array's unit; `None`
/// when a valid value lies where DataFusion's nanosecond arithmetic would
/// overflow (it answers with an error there, which it should keep doing).
fn truncate<T: ArrowTimestampType>(array: &ArrayRef, step_ns: i64) -> Option<ArrayRef> {
    let values = array.as_primitive_opt::<T>()?;
    let per_unit = match T::UNIT {
        TimeUnit::Second => NANOS_PER_SECOND,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    // Every fixed step is a whole number of seconds: exact in every unit.
    let step = step_ns / per_unit;
    // DataFusion multiplies each value out to nanoseconds (an error when that
    // overflows) and converts the truncated instant back (an error below
    // i64::MIN nanoseconds): outside this range its answer is an error.
    let low = (i64::MIN + step_ns) / per_unit + 1;
    let high = i64::MAX / per_unit;
    let in_range = |v: &i64| (low..=high).contains(v);
    let all_in_range = match values.nulls() {
        Some(nulls) => nulls.valid_indices().all(|i| in_range(&values.value(i))),
        None => values.values().iter().all(in_range),
    };
    if !all_in_range {
        return None;
    }
    // Null slots hold arbitrary values: wrapping arithmetic keeps them harmless.
    let truncated = PrimitiveArray::<T>::from_iter_values_with_nulls(
        values
            .values()
            .iter()
            .map(|v| v.wrapping_sub(v.rem_euclid(step))),
        values.nulls().cloned(),
    )
    .with_timezone_opt(values.timezone().map(Arc::<str>::from));
    Some(Arc::new(truncated))
}

#[cfg(test)]
mod tests;
