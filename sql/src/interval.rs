//! SQL intervals (`INTERVAL '10' SECOND`, `INTERVAL '1.5 minutes'`) as durations.

use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, Interval, Value, ValueWithSpan};

/// Converts an interval expression to a duration; the error says why not.
pub fn interval_duration(expr: &Expr) -> Result<Duration, String> {
    match expr {
        Expr::Interval(interval) => from_interval(interval),
        Expr::Nested(inner) => interval_duration(inner),
        other => Err(format!(
            "expected an INTERVAL such as INTERVAL '10' SECOND, found `{other}`"
        )),
    }
}

fn from_interval(interval: &Interval) -> Result<Duration, String> {
    let value = match interval.value.as_ref() {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::Number(s, _),
            ..
        }) => s.clone(),
        other => return Err(format!("interval value must be a literal, found `{other}`")),
    };
    let text = match &interval.leading_field {
        Some(unit) => format!("{value} {unit}"),
        None => value,
    };
    parse_duration_text(&text)
}

/// Parses `10 second`, `1.5 minutes`, `250 ms`, `2 hours 30 minutes`.
pub fn parse_duration_text(text: &str) -> Result<Duration, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(format!(
            "cannot read interval {text:?}; write e.g. '10' SECOND"
        ));
    }
    let mut total = 0f64;
    for pair in words.chunks(2) {
        let amount: f64 = pair[0]
            .parse()
            .map_err(|_| format!("{:?} is not a number in interval {text:?}", pair[0]))?;
        let unit = unit_seconds(pair[1]).ok_or_else(|| {
            format!(
                "unknown interval unit {:?} (use MILLISECOND, SECOND, MINUTE, HOUR or DAY)",
                pair[1]
            )
        })?;
        total += amount * unit;
    }
    if !(total.is_finite() && total > 0.0) {
        return Err(format!("interval {text:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(total))
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_spellings() {
        let d = |t| parse_duration_text(t).unwrap();
        assert_eq!(d("10 SECOND"), Duration::from_secs(10));
        assert_eq!(d("1.5 minutes"), Duration::from_secs(90));
        assert_eq!(d("250 ms"), Duration::from_millis(250));
        assert_eq!(d("1 hour 30 minutes"), Duration::from_secs(5400));
        assert!(
            parse_duration_text("10 fortnights")
                .unwrap_err()
                .contains("unknown interval unit")
        );
        assert!(parse_duration_text("0 second").is_err());
        assert!(parse_duration_text("ten second").is_err());
    }
}
