//! OpenMetrics text records, one exposition per record, into the table's
//! schema:
//!
//! ```text
//! # TYPE temperature gauge
//! temperature{machine_id="m-0004",line="line-1"} 65.2 1767225600.006
//! seq{machine_id="m-0004",line="line-1"} 17 1767225600.006
//! fault{machine_id="m-0004",line="line-1",fault_kind=""} 0 1767225600.006
//! # EOF
//! ```
//!
//! Rows: **one row per distinct timestamp in a record**, in order of first
//! appearance. Each sample adds a column named after its metric as written
//! (a counter keeps its `_total`) holding the value, and its labels as
//! columns (strings); the timestamp (seconds, exact to the nanosecond) goes
//! to the time column: the one named when the decoder is made, else `ts` or
//! `time`. So a reading whose gauges carry different label
//! sets (the simulator's `fault` gauge has an extra `fault_kind` label) is
//! still one row. Within one timestamp a label may repeat only with the same
//! value, and a name may be a metric only once and not also a label:
//! anything else rejects the record, so an exposition of several machines at
//! one timestamp must be split into one record per machine. Samples without
//! a timestamp form one row of their own, with a null time.
//!
//! Values: integer text stays an integer (no rounding through a float), a
//! `Boolean` column takes 0 and 1, `NaN` and `±Inf` go into float columns.
//! An empty label value means no label, as in Prometheus, so the simulator's
//! `fault_kind=""` is a null `fault_kind`.
//!
//! Lenient where it costs nothing: `# TYPE`/`# HELP`/`# UNIT` and other `#`
//! lines are skipped, `# EOF` may be missing (Prometheus text format), blanks
//! and a trailing comma in label sets are accepted, exemplars (` # {…} v`)
//! are ignored. Strict where it matters: a malformed sample line, a bad
//! escape (only `\\`, `\"` and `\n` exist) or anything after `# EOF` rejects
//! the whole record, naming the line; decoding goes on with the next record.
//! No maintained crate parses this text, hence the small parser below.

use std::borrow::Cow;
use std::collections::HashMap;

use arrow::datatypes::{DataType, SchemaRef};

use super::rows::{RowBuilder, Value, decode_records, resolve_time_column};
use super::{Decoded, Decoder, RawBatch};

/// Decodes OpenMetrics expositions into one schema.
#[derive(Debug)]
pub struct OpenMetricsDecoder {
    rows: RowBuilder,
    time_column: Option<String>,
}

impl OpenMetricsDecoder {
    /// A decoder for `schema`; `time_column` takes sample timestamps
    /// (default: `ts` or `time` if the schema has one).
    pub fn new(schema: SchemaRef, time_column: Option<&str>) -> Self {
        Self {
            time_column: resolve_time_column(&schema, time_column),
            rows: RowBuilder::new(schema),
        }
    }
}

impl Decoder for OpenMetricsDecoder {
    fn decode(&mut self, raw: &RawBatch) -> Decoded {
        let time_column = self.time_column.as_deref();
        decode_records(raw, &mut self.rows, |rows, text| {
            stage_record(rows, text, time_column)
        })
    }
}

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, Cow<'a, str>)>,
    value: Value<'static>,
    /// Nanoseconds since the epoch.
    ts: Option<i64>,
}

/// The row of one timestamp.
#[derive(Debug)]
struct Row<'a> {
    ts: Option<i64>,
    /// Line of the first sample.
    line: usize,
    entries: Vec<Entry<'a>>,
}

/// A column of a row and the line it came from.
#[derive(Debug)]
struct Entry<'a> {
    name: &'a str,
    line: usize,
    value: Cell<'a>,
}

#[derive(Debug)]
enum Cell<'a> {
    Label(Cow<'a, str>),
    Metric(Value<'static>),
}

impl<'a> Row<'a> {
    fn find(&self, name: &str) -> Option<&Entry<'a>> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Adds the labels and the value of `sample`, from `line`.
    fn add(&mut self, sample: Sample<'a>, line: usize) -> Result<(), String> {
        for (name, value) in sample.labels {
            if value.is_empty() {
                continue;
            }
            match self.find(name) {
                None => self.entries.push(Entry {
                    name,
                    line,
                    value: Cell::Label(value),
                }),
                Some(Entry {
                    value: Cell::Label(earlier),
                    ..
                }) if *earlier == value => {}
                Some(Entry {
                    value: Cell::Label(earlier),
                    line: first,
                    ..
                }) => {
                    return Err(format!(
                        "label {name:?} is {value:?} here but {earlier:?} on line {first}, \
                         at the same timestamp"
                    ));
                }
                Some(Entry { line: first, .. }) => {
                    return Err(format!(
                        "{name:?} is a label here but a metric on line {first}"
                    ));
                }
            }
        }
        let name = sample.name;
        match self.find(name) {
            None => self.entries.push(Entry {
                name,
                line,
                value: Cell::Metric(sample.value),
            }),
            Some(Entry {
                value: Cell::Metric(_),
                line: first,
                ..
            }) => {
                return Err(format!(
                    "metric {name:?} appears again at the same timestamp (first on line {first})"
                ));
            }
            Some(Entry { line: first, .. }) => {
                return Err(format!(
                    "{name:?} is a metric here but a label on line {first}"
                ));
            }
        }
        Ok(())
    }
}

/// Stages the rows of one exposition, or says which line is bad and why.
fn stage_record(
    rows: &mut RowBuilder,
    text: &str,
    time_column: Option<&str>,
) -> Result<(), String> {
    let grouped = group(text)?;
    if grouped.is_empty() {
        return Err("record has no samples".into());
    }
    for row in &grouped {
        stage_row(rows, row, time_column)?;
    }
    Ok(())
}

/// The samples of `text` grouped into rows by timestamp.
fn group(text: &str) -> Result<Vec<Row<'_>>, String> {
    let mut grouped: Vec<Row<'_>> = Vec::new();
    let mut by_ts: HashMap<Option<i64>, usize> = HashMap::new();
    let mut after_eof = false;
    for (number, line) in (1..).zip(text.split('\n')) {
        let line = line.trim();
        if after_eof && !line.is_empty() {
            return Err(format!("line {number}: content after # EOF"));
        }
        after_eof |= line == "# EOF";
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(|e| format!("line {number}: {e}"))?;
        let i = *by_ts.entry(sample.ts).or_insert_with(|| {
            grouped.push(Row {
                ts: sample.ts,
                line: number,
                entries: Vec::new(),
            });
            grouped.len() - 1
        });
        if let Some(row) = grouped.get_mut(i) {
            row.add(sample, number)
                .map_err(|e| format!("line {number}: {e}"))?;
        }
    }
    Ok(grouped)
}

fn stage_row(
    rows: &mut RowBuilder,
    row: &Row<'_>,
    time_column: Option<&str>,
) -> Result<(), String> {
    let values: Vec<(&str, Value<'_>)> = row
        .entries
        .iter()
        .map(|e| match &e.value {
            Cell::Label(text) => (e.name, Value::Str(text)),
            Cell::Metric(v) if rows.data_type(e.name) == Some(&DataType::Boolean) => {
                (e.name, boolean(*v))
            }
            Cell::Metric(v) => (e.name, *v),
        })
        .collect();
    let time = time_column
        .zip(row.ts)
        .map(|(column, ts)| (column, Value::TimestampNanos(ts)));
    rows.stage(values.into_iter().chain(time)).map_err(|e| {
        let line = row.find(e.column()).map_or(row.line, |entry| entry.line);
        format!("line {line}: {e}")
    })
}

/// 0 and 1 as booleans; other values stay as they are (and do not fit).
fn boolean(value: Value<'static>) -> Value<'static> {
    match value {
        Value::Int(0) | Value::UInt(0) => Value::Bool(false),
        Value::Int(1) | Value::UInt(1) => Value::Bool(true),
        Value::Float(0.0) => Value::Bool(false),
        Value::Float(1.0) => Value::Bool(true),
        other => other,
    }
}

/// A position in one line. It only stops after ASCII bytes, so every slice
/// it takes is on a character boundary.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Takes bytes while `ascii` accepts them (it must accept only ASCII).
    fn take_while(&mut self, ascii: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&ascii) {
            self.at += 1;
        }
        self.slice(start, self.at)
    }

    fn skip_blanks(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or_default()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or_default()
    }
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_metric_byte(b: u8) -> bool {
    is_label_byte(b) || b == b':'
}

fn starts_with_digit(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_sample(line: &str) -> Result<Sample<'_>, String> {
    let mut cursor = Cursor { text: line, at: 0 };
    let name = cursor.take_while(is_metric_byte);
    if name.is_empty() || starts_with_digit(name) {
        return Err("expected a metric name".into());
    }
    let labels = labels(&mut cursor)?;
    let rest = cursor.rest();
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space and a value after {name:?}"));
    }
    let mut tokens = rest.split_ascii_whitespace();
    let value = number(tokens.next().ok_or("missing value")?)?;
    // Whatever follows ` # ` is an exemplar, which is ignored.
    let ts = match tokens.next() {
        None | Some("#") => None,
        Some(text) => {
            let ts = timestamp(text)?;
            if let Some(extra) = tokens.next().filter(|t| *t != "#") {
                return Err(format!("unexpected {extra:?} after the timestamp"));
            }
            Some(ts)
        }
    };
    Ok(Sample {
        name,
        labels,
        value,
        ts,
    })
}

/// `{name="value",…}` if the cursor is at `{`, else no labels.
fn labels<'a>(cursor: &mut Cursor<'a>) -> Result<Vec<(&'a str, Cow<'a, str>)>, String> {
    let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
    if !cursor.eat(b'{') {
        return Ok(labels);
    }
    loop {
        cursor.skip_blanks();
        if cursor.eat(b'}') {
            return Ok(labels);
        }
        let name = cursor.take_while(is_label_byte);
        if name.is_empty() || starts_with_digit(name) {
            return Err("expected a label name or '}'".into());
        }
        cursor.skip_blanks();
        if !cursor.eat(b'=') {
            return Err(format!("expected '=' after label {name:?}"));
        }
        cursor.skip_blanks();
        let value = label_value(cursor).map_err(|e| format!("label {name:?}: {e}"))?;
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(format!("label {name:?} is given twice"));
        }
        labels.push((name, value));
        cursor.skip_blanks();
        if cursor.eat(b'}') {
            return Ok(labels);
        }
        if !cursor.eat(b',') {
            return Err(format!("expected ',' or '}}' after label {name:?}"));
        }
    }
}

/// A quoted label value, unescaped; borrowed when it has no escapes.
fn label_value<'a>(cursor: &mut Cursor<'a>) -> Result<Cow<'a, str>, String> {
    if !cursor.eat(b'"') {
        return Err("expected '\"' to open the value".into());
    }
    let mut owned: Option<String> = None;
    let mut start = cursor.at;
    loop {
        match cursor.peek() {
            None => return Err("unterminated value".into()),
            Some(b'"') => {
                let tail = cursor.slice(start, cursor.at);
                cursor.at += 1;
                return Ok(match owned {
                    None => Cow::Borrowed(tail),
                    Some(mut text) => {
                        text.push_str(tail);
                        Cow::Owned(text)
                    }
                });
            }
            Some(b'\\') => {
                let unescaped = match cursor.text.as_bytes().get(cursor.at + 1) {
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    Some(b'n') => '\n',
                    Some(_) => {
                        let escape: String = cursor.rest().chars().take(2).collect();
                        return Err(format!(
                            "invalid escape {escape:?} (only \\\\, \\\" and \\n)"
                        ));
                    }
                    None => return Err("unterminated value".into()),
                };
                let text = owned.get_or_insert_with(String::new);
                text.push_str(cursor.slice(start, cursor.at));
                text.push(unescaped);
                cursor.at += 2;
                start = cursor.at;
            }
            Some(_) => cursor.at += 1,
        }
    }
}

/// A sample value: integer text as an integer, anything else as a float.
fn number(text: &str) -> Result<Value<'static>, String> {
    if let Ok(v) = text.parse::<i64>() {
        Ok(Value::Int(v))
    } else if let Ok(v) = text.parse::<u64>() {
        Ok(Value::UInt(v))
    } else {
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("invalid value {text:?}"))
    }
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Seconds since the epoch as nanoseconds: decimal text exactly (digits
/// past the ninth are dropped), other float syntax through `f64`.
fn timestamp(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid timestamp {text:?}");
    let out_of_range = || format!("timestamp {text:?} is out of range");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !decimal(whole) || !decimal(fraction) {
        let seconds: f64 = text.parse().map_err(|_| invalid())?;
        if !seconds.is_finite() {
            return Err(invalid());
        }
        let nanos = (seconds * 1e9).round();
        // ±2^63: inside it, the conversion is exact.
        let limit = i64::MAX as f64;
        if !(-limit..limit).contains(&nanos) {
            return Err(out_of_range());
        }
        return Ok(nanos as i64);
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid());
    }
    let seconds: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| out_of_range())?
    };
    let fraction = fraction.get(..9).unwrap_or(fraction);
    let mut nanos: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| invalid())?
    };
    for _ in fraction.len()..9 {
        nanos *= 10;
    }
    let total = seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(out_of_range)?;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests;
