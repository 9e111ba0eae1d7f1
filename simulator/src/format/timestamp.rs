//! RFC 3339 timestamps with millisecond precision, fast: the date and time
//! down to the second are formatted once per simulated second and cached.

use chrono::{DateTime, Utc};

/// Formats epoch milliseconds as `2026-11-23T08:00:00.123Z`.
#[derive(Debug, Default)]
pub struct TimestampFormatter {
    second: i64,
    prefix: Vec<u8>,
}

impl TimestampFormatter {
    /// Appends the timestamp for `ms` to `buf`.
    pub fn push(&mut self, buf: &mut Vec<u8>, ms: i64) {
        let second = ms.div_euclid(1000);
        if self.prefix.is_empty() || second != self.second {
            self.second = second;
            self.prefix.clear();
            let dt = DateTime::<Utc>::from_timestamp(second, 0).unwrap_or_default();
            self.prefix
                .extend_from_slice(dt.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
        }
        buf.extend_from_slice(&self.prefix);
        let millis = ms.rem_euclid(1000) as u16;
        buf.extend_from_slice(&[
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ]);
    }
}
