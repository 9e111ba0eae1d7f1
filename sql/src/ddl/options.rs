//! A table's `WITH ('key' = 'value', …)` options. Each connector pulls the
//! options it knows; whatever is left is an error naming the option.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Location, Result, SqlError};

/// One option's value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionValue {
    /// The value, unquoted.
    pub value: String,
    /// Where the key is.
    pub location: Location,
}

/// The options of one table, consumed by `pull_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    table: String,
    table_location: Location,
    values: BTreeMap<String, OptionValue>,
}

impl Options {
    /// Options of `table` (whose name is at `location`).
    pub fn new(table: &str, location: Location) -> Self {
        Self {
            table: table.to_string(),
            table_location: location,
            values: BTreeMap::new(),
        }
    }

    /// Adds an option; a repeated key is an error.
    pub fn insert(&mut self, key: String, value: OptionValue) -> Result<()> {
        if self.values.contains_key(&key) {
            return Err(self.error_at(&key, "given twice", value.location));
        }
        self.values.insert(key, value);
        Ok(())
    }

    /// Looks at an option without consuming it.
    pub fn peek(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| v.value.as_str())
    }

    /// Takes an optional string option.
    pub fn pull_str(&mut self, key: &str) -> Option<String> {
        self.values.remove(key).map(|v| v.value)
    }

    /// Takes a required string option.
    pub fn pull_required(&mut self, key: &str) -> Result<String> {
        self.pull_str(key)
            .ok_or_else(|| self.error_at(key, "required but missing", self.table_location))
    }

    /// Takes an option parsed by `parse`, whose error becomes the message.
    pub fn pull_parsed<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        let Some(v) = self.values.remove(key) else {
            return Ok(None);
        };
        parse(&v.value)
            .map(Some)
            .map_err(|m| self.error_at(key, &m, v.location))
    }

    /// Takes a duration option (`'5s'`, `'250ms'`, `'10 seconds'`).
    pub fn pull_duration(&mut self, key: &str) -> Result<Option<Duration>> {
        self.pull_parsed(key, |v| {
            humantime::parse_duration(v)
                .or_else(|_| crate::interval::parse_duration_text(v).map_err(|e| e.to_string()))
                .map_err(|e| format!("{v:?} is not a duration: {e}"))
        })
    }

    /// Takes a byte size option (`'64MiB'`, `'1000'`).
    pub fn pull_bytes(&mut self, key: &str) -> Result<Option<u64>> {
        self.pull_parsed(key, parse_bytes)
    }

    /// Takes an unsigned integer option.
    pub fn pull_u64(&mut self, key: &str) -> Result<Option<u64>> {
        self.pull_parsed(key, |v| {
            v.parse()
                .map_err(|_| format!("{v:?} is not a whole number"))
        })
    }

    /// Takes every option whose key starts with `prefix`, prefix removed.
    pub fn pull_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .values
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.values.remove(&k)?;
                Some((k[prefix.len()..].to_string(), v.value))
            })
            .collect()
    }

    /// Fails on the first option nobody pulled.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        match self.values.iter().next() {
            None => Ok(()),
            Some((key, v)) => {
                let hint = closest(key, known)
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                Err(self.error_at(key, &format!("unknown option{hint}"), v.location))
            }
        }
    }

    /// An error about option `key`.
    pub fn error_at(&self, key: &str, message: &str, location: Location) -> SqlError {
        SqlError::Option {
            table: self.table.clone(),
            option: key.to_string(),
            message: message.to_string(),
            location,
        }
    }

    /// Where the table is declared.
    pub fn table_location(&self) -> Location {
        self.table_location
    }
}

/// `64MiB`, `1GB`, `1000` (bytes).
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    Ok((number * factor) as u64)
}

/// The known key closest to a misspelt one (edit distance ≤ 3).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_suggestions() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("lots").is_err());
        assert_eq!(closest("topik", &["topic", "format"]), Some("topic"));
        assert_eq!(closest("zzzzzzzz", &["topic"]), None);
    }
}
