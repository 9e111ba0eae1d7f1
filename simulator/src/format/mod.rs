//! Record encodings: JSON (the default record of the design brief),
//! InfluxDB line protocol and OpenMetrics text.

mod influx_lp;
mod json;
mod openmetrics;
mod timestamp;

pub use influx_lp::{InfluxLpEncoder, MEASUREMENT};
pub use json::JsonEncoder;
pub use openmetrics::OpenMetricsEncoder;
pub use timestamp::TimestampFormatter;

use crate::record::{Layout, Reading};

/// The wire format of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// One JSON object per reading, newline-terminated.
    #[default]
    Json,
    /// One InfluxDB line-protocol line per reading (measurement `sensors`).
    InfluxLp,
    /// One OpenMetrics exposition per reading, ending in `# EOF`.
    Openmetrics,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "influx-lp" => Ok(Self::InfluxLp),
            "openmetrics" => Ok(Self::Openmetrics),
            other => Err(format!(
                "unknown format {other:?}; expected json, influx-lp or openmetrics"
            )),
        }
    }
}

/// Appends one encoded reading to a buffer.
pub trait Encoder: Send {
    /// Encodes `reading` onto the end of `buf` (including its terminator).
    fn encode(&mut self, reading: &Reading, buf: &mut Vec<u8>);
}

/// The encoder of a format for a run's layout; `labels` adds ground truth.
pub fn encoder(format: Format, layout: &Layout, labels: bool) -> Box<dyn Encoder> {
    match format {
        Format::Json => Box::new(JsonEncoder::new(layout, labels)),
        Format::InfluxLp => Box::new(InfluxLpEncoder::new(layout, labels)),
        Format::Openmetrics => Box::new(OpenMetricsEncoder::new(layout, labels)),
    }
}

/// Writes a float in its shortest exact form (`ryu`), the same digits a
/// reader parses back.
#[inline]
pub(crate) fn push_f64(buf: &mut Vec<u8>, value: f64) {
    let mut b = ryu::Buffer::new();
    buf.extend_from_slice(b.format_finite(value).as_bytes());
}

/// Powers of ten for [`push_fixed`].
const POW10: [i64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Writes a value already rounded to `decimals` places, with the same text
/// [`push_f64`] (ryu's shortest form) gives it, but through integer
/// formatting, which is several times faster. Falls back to ryu for values
/// whose scaled form does not fit exactly in an integer.
#[inline]
pub(crate) fn push_fixed(buf: &mut Vec<u8>, value: f64, decimals: u32) {
    let scale = POW10[decimals.min(9) as usize];
    let scaled = (value * scale as f64).round();
    // ryu writes magnitudes below 1e-5 in exponent form; so do we.
    let tiny = value != 0.0 && value.abs() < 1e-5;
    if scaled.is_nan()
        || scaled.abs() >= 9.0e15
        || tiny
        || (value == 0.0 && value.is_sign_negative())
    {
        return push_f64(buf, value);
    }
    let n = scaled as i64;
    if n < 0 {
        buf.push(b'-');
    }
    let (whole, mut fraction) = ((n.abs() / scale), (n.abs() % scale));
    push_int(buf, whole);
    buf.push(b'.');
    if fraction == 0 {
        buf.push(b'0');
        return;
    }
    let mut digits = decimals.min(9) as usize;
    while fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    let mut text = itoa::Buffer::new();
    let text = text.format(fraction).as_bytes();
    buf.extend(std::iter::repeat_n(b'0', digits - text.len()));
    buf.extend_from_slice(text);
}

/// Writes an integer.
#[inline]
pub(crate) fn push_int<I: itoa::Integer>(buf: &mut Vec<u8>, value: I) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(value).as_bytes());
}

#[cfg(test)]
mod tests;
