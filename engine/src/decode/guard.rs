//! Checks a source applies around decoding, so that a record which decodes
//! but cannot be right goes to the dead-letter output with a reason instead
//! of into the results:
//!
//! - records longer than `record.max-bytes` (before decoding: a runaway
//!   producer must not make the job allocate without bound);
//! - event times further ahead of the clock than `event-time.max-future`
//!   (default 1 h): one sensor with a wrong clock would otherwise drag its
//!   partition's watermark into the future and make every later reading of
//!   that partition late;
//! - event times further behind the clock than `event-time.max-past` (off
//!   by default: replays of history are legitimate);
//! - NaN and ±Inf readings (`non-finite` = `dlq`, the default): one of them
//!   turns every average, sum and deviation of its window into NaN.
//!
//! A record is rejected whole, like a decoder rejects it: a line-protocol
//! record with one bad line leaves none of its rows behind. Druid's Kafka
//! ingestion has the same time limits (`earlyMessageRejectionPeriod`,
//! `lateMessageRejectionPeriod`).

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array};
use arrow::compute::{cast, filter_record_batch, max, min};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;

use super::{BadRecord, Decoded, RawBatch};
use crate::window::assign::millis_to_unit;

/// Default `record.max-bytes`: Kafka's own default message size limit.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 1024 * 1024;
/// Default `event-time.max-future`.
pub const DEFAULT_MAX_FUTURE: &str = "1h";

/// A time limit as configured: its span and the text it was given as (for
/// messages: `3650d` reads better than the calendar form of its seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The span.
    pub span: Duration,
    /// The option's text.
    pub text: String,
}

impl Limit {
    /// Parses `'1h'`, `'3650d'`, …; `'off'` is no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        humantime::parse_duration(text)
            .map(|span| {
                Some(Self {
                    span,
                    text: text.to_owned(),
                })
            })
            .map_err(|e| format!("{text:?} is neither a duration nor 'off': {e}"))
    }
}

/// A source's record checks.
#[derive(Debug, Clone)]
pub struct RecordChecks {
    /// Longest record accepted, in bytes.
    pub max_bytes: usize,
    /// The event-time column: its index and unit.
    pub event_time: Option<(usize, String, TimeUnit)>,
    /// How far event time may run ahead of the clock (`None`: no limit).
    pub max_future: Option<Limit>,
    /// How far event time may lag the clock (`None`: no limit).
    pub max_past: Option<Limit>,
    /// Whether NaN and ±Inf readings are rejected.
    pub reject_non_finite: bool,
}

impl Default for RecordChecks {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_RECORD_BYTES as usize,
            event_time: None,
            max_future: Limit::parse(DEFAULT_MAX_FUTURE).ok().flatten(),
            max_past: None,
            reject_non_finite: true,
        }
    }
}

impl RecordChecks {
    /// Takes records longer than the limit out of `raw` (rebuilding it only
    /// when there are some).
    pub fn screen(&self, raw: RawBatch) -> (RawBatch, Vec<BadRecord>) {
        let too_long = |r: &super::RawRecord| r.range.len() > self.max_bytes;
        if !raw.records.iter().any(too_long) {
            return (raw, Vec::new());
        }
        let mut kept = RawBatch::new(raw.partition);
        let mut bad = Vec::new();
        for (i, record) in raw.records.iter().enumerate() {
            if too_long(record) {
                bad.push(raw.bad(
                    i,
                    format!(
                        "record of {} bytes exceeds record.max-bytes ({})",
                        record.range.len(),
                        self.max_bytes
                    ),
                ));
            } else {
                kept.push(record.offset, raw.payload(i));
            }
        }
        (kept, bad)
    }

    /// Moves the records of `decoded` that fail a check, with every row they
    /// decoded to, to its bad records. `now_ms` is the clock.
    pub fn check(
        &self,
        raw: &RawBatch,
        decoded: &mut Decoded,
        now_ms: i64,
    ) -> Result<(), ArrowError> {
        if decoded.batch.num_rows() == 0 {
            return Ok(());
        }
        let mut rejected = Rejected::default();
        self.check_event_time(decoded, now_ms, &mut rejected)?;
        if self.reject_non_finite {
            check_finite(decoded, &mut rejected);
        }
        if rejected.reasons.is_empty() {
            return Ok(());
        }
        rejected.apply(raw, decoded)
    }

    fn check_event_time(
        &self,
        decoded: &Decoded,
        now_ms: i64,
        rejected: &mut Rejected,
    ) -> Result<(), ArrowError> {
        let Some((column, name, unit)) = &self.event_time else {
            return Ok(());
        };
        let bound = |limit: &Option<Limit>, sign: i64| {
            limit.as_ref().map(|l| {
                let ms = now_ms.saturating_add(sign.saturating_mul(l.span.as_millis() as i64));
                millis_to_unit(ms, *unit)
            })
        };
        let latest = bound(&self.max_future, 1);
        let earliest = bound(&self.max_past, -1);
        if latest.is_none() && earliest.is_none() {
            return Ok(());
        }
        let times = crate::window::event_times(&decoded.batch, *column)
            .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
        let too_late = latest.is_some_and(|l| max(&times).is_some_and(|t| t > l));
        let too_early = earliest.is_some_and(|e| min(&times).is_some_and(|t| t < e));
        if !too_late && !too_early {
            return Ok(());
        }
        for (row, time) in times.iter().enumerate() {
            let Some(time) = time else { continue };
            let reason = if latest.is_some_and(|l| time > l) {
                Some(("ahead of", "event-time.max-future", &self.max_future))
            } else if earliest.is_some_and(|e| time < e) {
                Some(("behind", "event-time.max-past", &self.max_past))
            } else {
                None
            };
            if let Some((direction, option, limit)) = reason {
                rejected.add(decoded, row, || {
                    format!(
                        "event time {name} = {} is {direction} the clock ({}) by more than \
                         {option} ({})",
                        show_time(time, *unit),
                        show_time(millis_to_unit(now_ms, *unit), *unit),
                        limit.as_ref().map_or("", |l| l.text.as_str()),
                    )
                });
            }
        }
        Ok(())
    }
}

/// Records to reject, by index in the raw batch, with the first reason.
#[derive(Default)]
struct Rejected {
    reasons: BTreeMap<u32, String>,
}

impl Rejected {
    fn add(&mut self, decoded: &Decoded, row: usize, reason: impl FnOnce() -> String) {
        if let Some(record) = decoded.row_records.get(row) {
            self.reasons.entry(*record).or_insert_with(reason);
        }
    }

    /// Removes the rejected records' rows and lists the records as bad.
    fn apply(self, raw: &RawBatch, decoded: &mut Decoded) -> Result<(), ArrowError> {
        let keep: BooleanArray = decoded
            .row_records
            .iter()
            .map(|r| Some(!self.reasons.contains_key(r)))
            .collect();
        decoded.batch = filter_record_batch(&decoded.batch, &keep)?;
        decoded.row_records = decoded
            .row_records
            .iter()
            .copied()
            .filter(|r| !self.reasons.contains_key(r))
            .collect();
        for (record, reason) in self.reasons {
            decoded.bad.push(raw.bad(record as usize, reason));
        }
        decoded.bad.sort_by_key(|b| b.offset);
        Ok(())
    }
}

/// Rejects rows with a NaN or infinite floating-point value.
fn check_finite(decoded: &Decoded, rejected: &mut Rejected) {
    let schema = decoded.batch.schema();
    for (field, column) in schema.fields().iter().zip(decoded.batch.columns()) {
        let Some(values) = as_floats(column) else {
            continue;
        };
        if values.values().iter().all(|v| v.is_finite()) {
            continue;
        }
        for (row, value) in values.iter().enumerate() {
            // A null slot may hold any bits: only valid slots count.
            let Some(value) = value.filter(|v| !v.is_finite()) else {
                continue;
            };
            rejected.add(decoded, row, || {
                format!(
                    "{} is {value}: NaN and infinite readings are rejected ('non-finite' = \
                     'keep' accepts them)",
                    field.name()
                )
            });
        }
    }
}

/// A floating-point column as f64 values (`Float32` widens exactly);
/// `None` for other types.
fn as_floats(column: &ArrayRef) -> Option<Float64Array> {
    if !matches!(column.data_type(), DataType::Float64 | DataType::Float32) {
        return None;
    }
    cast(column, &DataType::Float64)
        .ok()?
        .as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
}

/// An event time as RFC 3339 text (or the raw number if out of range).
fn show_time(value: i64, unit: TimeUnit) -> String {
    let nanos = match unit {
        TimeUnit::Second => value.checked_mul(1_000_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000_000),
        TimeUnit::Microsecond => value.checked_mul(1_000),
        TimeUnit::Nanosecond => Some(value),
    };
    nanos
        .map(|n| {
            chrono::DateTime::from_timestamp_nanos(n)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests;
