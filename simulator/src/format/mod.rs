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

/// Writes an integer.
#[inline]
pub(crate) fn push_int<I: itoa::Integer>(buf: &mut Vec<u8>, value: I) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(value).as_bytes());
}

#[cfg(test)]
mod tests;
