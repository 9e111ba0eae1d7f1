//! `--replay FILE.csv`: stream a recorded CSV instead of simulating.
//!
//! The header names the columns. One column is the timestamp (RFC 3339,
//! `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC, or epoch seconds/milliseconds);
//! `machine_id`, `line` and `provider`, when present, are the key and tags;
//! every other column is numeric (an empty cell is a missing value). The
//! whole file is read and checked before anything is sent, then replayed in
//! time order (ties keep file order) with per-machine sequence numbers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime};

use crate::error::{Result, SimError};
use crate::record::{FieldMeta, Layout, MachineMeta, Reading};
use crate::spec::has_control;

/// Column names tried, in order, when no time column is given.
pub const TIME_COLUMNS: [&str; 4] = ["ts", "timestamp", "time", "datetime"];

/// Machine id used when the CSV has no `machine_id` column.
pub const DEFAULT_MACHINE: &str = "replay";

/// A fully loaded, time-ordered recording.
#[derive(Debug)]
pub struct Replay {
    layout: Layout,
    readings: std::vec::IntoIter<Reading>,
    next_ts: Option<i64>,
}

/// The roles of the CSV's columns.
struct Columns {
    time: usize,
    time_name: String,
    machine: Option<usize>,
    line: Option<usize>,
    provider: Option<usize>,
    numeric: Vec<usize>,
}

impl Replay {
    /// Reads and validates the whole CSV; `time_column` overrides detection.
    pub fn load(path: &Path, time_column: Option<&str>) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| csv_error(path, 1, "", e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| csv_error(path, 1, "", e.to_string()))?
            .clone();
        let columns = classify(path, &headers, time_column)?;
        let mut loader = Loader::new(&headers, &columns);
        for (row, record) in reader.records().enumerate() {
            let line = row as u64 + 2;
            let record = record.map_err(|e| csv_error(path, line, "", e.to_string()))?;
            loader.push(path, line, &record, &columns)?;
        }
        Ok(loader.finish())
    }

    /// Machines and fields found in the file.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Time of the next reading, or `None` at the end.
    pub fn clock_ms(&self) -> Option<i64> {
        self.next_ts
    }

    /// The next reading in time order; false at the end.
    pub fn next_into(&mut self, out: &mut Reading) -> bool {
        match self.readings.next() {
            Some(r) => {
                *out = r;
                self.next_ts = self.readings.as_slice().first().map(|r| r.nominal_ms);
                true
            }
            None => false,
        }
    }
}

fn csv_error(path: &Path, line: u64, field: &str, message: String) -> SimError {
    SimError::Csv {
        path: PathBuf::from(path),
        line,
        field: field.to_string(),
        message,
    }
}

fn classify(path: &Path, headers: &csv::StringRecord, time: Option<&str>) -> Result<Columns> {
    let find = |name: &str| headers.iter().position(|h| h == name);
    let time = match time {
        Some(name) => find(name).ok_or_else(|| {
            csv_error(path, 1, name, "time column not found in the header".into())
        })?,
        None => TIME_COLUMNS.iter().find_map(|c| find(c)).ok_or_else(|| {
            let expected = TIME_COLUMNS.join(", ");
            csv_error(
                path,
                1,
                "",
                format!("no time column (looked for {expected})"),
            )
        })?,
    };
    let (machine, line, provider) = (find("machine_id"), find("line"), find("provider"));
    let special = [Some(time), machine, line, provider];
    let numeric: Vec<usize> = (0..headers.len())
        .filter(|i| !special.contains(&Some(*i)))
        .collect();
    if numeric.is_empty() {
        return Err(csv_error(
            path,
            1,
            "",
            "no numeric columns to replay".into(),
        ));
    }
    for (i, name) in headers.iter().enumerate() {
        if name.is_empty() || headers.iter().take(i).any(|h| h == name) {
            return Err(csv_error(
                path,
                1,
                name,
                "column names must be unique and non-empty".into(),
            ));
        }
    }
    Ok(Columns {
        time,
        time_name: headers[time].to_string(),
        machine,
        line,
        provider,
        numeric,
    })
}

/// Accumulates validated rows.
struct Loader {
    fields: Vec<FieldMeta>,
    machines: Vec<MachineMeta>,
    index: HashMap<String, u32>,
    rows: Vec<Reading>,
}

impl Loader {
    fn new(headers: &csv::StringRecord, columns: &Columns) -> Self {
        let fields = columns
            .numeric
            .iter()
            .map(|&i| FieldMeta {
                name: headers[i].to_string(),
                unit: String::new(),
                precision: None,
            })
            .collect();
        Self {
            fields,
            machines: Vec::new(),
            index: HashMap::new(),
            rows: Vec::new(),
        }
    }

    fn push(
        &mut self,
        path: &Path,
        line: u64,
        record: &csv::StringRecord,
        c: &Columns,
    ) -> Result<()> {
        let cell = |i: usize| record.get(i).unwrap_or("");
        let ts_ms = parse_time(cell(c.time)).map_err(|m| csv_error(path, line, &c.time_name, m))?;
        let mut values = Vec::with_capacity(c.numeric.len());
        for (k, &i) in c.numeric.iter().enumerate() {
            let value = parse_number(cell(i))
                .map_err(|m| csv_error(path, line, &self.fields[k].name, m))?;
            values.push(value);
        }
        for (column, name) in [
            (c.machine, "machine_id"),
            (c.line, "line"),
            (c.provider, "provider"),
        ] {
            if column.is_some_and(|i| has_control(cell(i))) {
                return Err(csv_error(
                    path,
                    line,
                    name,
                    "control characters are not allowed".into(),
                ));
            }
        }
        let id = c.machine.map_or(DEFAULT_MACHINE, cell);
        let machine = self.machine(id, c.line.map_or("", cell), c.provider.map_or("", cell));
        self.rows.push(Reading {
            machine,
            seq: 0,
            nominal_ms: ts_ms,
            ts_ms,
            values,
            fault: None,
        });
        Ok(())
    }

    fn machine(&mut self, id: &str, line: &str, provider: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.machines.len() as u32;
        self.machines.push(MachineMeta {
            id: id.to_string(),
            line: line.to_string(),
            provider: provider.to_string(),
        });
        self.index.insert(id.to_string(), i);
        i
    }

    fn finish(mut self) -> Replay {
        self.rows.sort_by_key(|r| r.ts_ms);
        let mut seqs = vec![0u64; self.machines.len()];
        for row in &mut self.rows {
            seqs[row.machine as usize] += 1;
            row.seq = seqs[row.machine as usize];
        }
        let next_ts = self.rows.first().map(|r| r.nominal_ms);
        Replay {
            layout: Layout {
                machines: self.machines,
                fields: self.fields,
                fault_kinds: Vec::new(),
            },
            readings: self.rows.into_iter(),
            next_ts,
        }
    }
}

/// Parses a numeric cell; empty is missing (NaN), non-finite is refused.
fn parse_number(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Ok(f64::NAN);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{text:?} is not a finite number")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// Parses a timestamp cell into epoch milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(epoch) = text.parse::<f64>()
        && epoch.is_finite()
    {
        // Above 10^11 the number cannot be seconds (year 5138): milliseconds.
        let ms = if epoch.abs() >= 1e11 {
            epoch
        } else {
            epoch * 1000.0
        };
        return Ok(ms.round() as i64);
    }
    Err(format!(
        "{text:?} is not a timestamp (RFC 3339, `YYYY-MM-DD HH:MM:SS`, or epoch seconds/ms)"
    ))
}

#[cfg(test)]
mod tests;
