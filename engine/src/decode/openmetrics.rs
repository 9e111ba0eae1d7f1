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
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Array, AsArray, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::{Field, Float64Type, Int64Type, Schema, TimeUnit, UInt64Type};

    use super::*;

    /// The simulator's table: `packing_line` sensors with labels.
    fn sensors(ts_unit: TimeUnit) -> SchemaRef {
        let mut fields = vec![
            Field::new("machine_id", DataType::Utf8, false),
            Field::new("line", DataType::Utf8, true),
            Field::new("provider", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(ts_unit, Some("UTC".into())),
                false,
            ),
            Field::new("seq", DataType::Int64, true),
        ];
        for name in [
            "temperature",
            "vibration",
            "power",
            "load",
            "humidity",
            "noise_level",
            "rpm",
        ] {
            fields.push(Field::new(name, DataType::Float64, true));
        }
        fields.push(Field::new("fault", DataType::Boolean, true));
        fields.push(Field::new("fault_kind", DataType::Utf8, true));
        Arc::new(Schema::new(fields))
    }

    fn raw(records: &[&str]) -> RawBatch {
        let mut raw = RawBatch::new(4);
        for (i, r) in records.iter().enumerate() {
            raw.push(900 + i as i64, r.as_bytes());
        }
        raw
    }

    fn decode(schema: SchemaRef, records: &[&str]) -> Decoded {
        OpenMetricsDecoder::new(schema, None).decode(&raw(records))
    }

    fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(name).unwrap().as_string::<i32>();
        column.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect()
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
}
