//! SQL column types → Arrow types.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::DataType as SqlType;

/// The time zone every timestamp column carries: event times are instants.
pub(crate) const UTC: &str = "UTC";

/// Maps a column type; `TIMESTAMP(p)` picks the unit from the precision
/// (≤ 3 milliseconds, ≤ 6 microseconds, else nanoseconds; default 3).
pub fn sql_to_arrow(sql: &SqlType) -> Result<DataType, String> {
    Ok(match sql {
        SqlType::Varchar(_)
        | SqlType::CharacterVarying(_)
        | SqlType::Char(_)
        | SqlType::String(_)
        | SqlType::Text => DataType::Utf8,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float64 | SqlType::Float8 => {
            DataType::Float64
        }
        SqlType::Float(_) | SqlType::Real | SqlType::Float4 | SqlType::Float32 => DataType::Float32,
        SqlType::BigInt(_) | SqlType::Int64 => DataType::Int64,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int32 => DataType::Int32,
        SqlType::SmallInt(_) => DataType::Int16,
        SqlType::TinyInt(_) => DataType::Int8,
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(precision, _) => {
            let unit = match precision.unwrap_or(3) {
                0..=3 => TimeUnit::Millisecond,
                4..=6 => TimeUnit::Microsecond,
                _ => TimeUnit::Nanosecond,
            };
            DataType::Timestamp(unit, Some(UTC.into()))
        }
        other => return Err(format!("unsupported column type {other}")),
    })
}
