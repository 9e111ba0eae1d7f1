//! Source records → Arrow, straight into the table's schema. Decoders never
//! fail a whole micro-batch for a bad record: they return the good rows plus
//! the bad records (raw bytes, partition, offset, error), which go to the
//! dead-letter output and a counter.

pub mod guard;
pub mod json;
pub mod line_protocol;
pub mod openmetrics;
pub mod rows;
#[cfg(test)]
mod test_support;

use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// Longest raw record kept in a dead-letter entry.
pub const MAX_DEAD_LETTER_BYTES: usize = 4096;

/// The records of one micro-batch from one source partition, payloads
/// concatenated (each followed by a newline) so a decoder can take them in
/// one pass.
#[derive(Debug, Clone, Default)]
pub struct RawBatch {
    /// Source partition.
    pub partition: i32,
    /// All payloads, each followed by `\n`.
    pub data: Vec<u8>,
    /// Per record: its offset and byte range in `data` (without the newline).
    pub records: Vec<RawRecord>,
}

/// Where one record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Offset in the source partition.
    pub offset: i64,
    /// Bytes in [`RawBatch::data`].
    pub range: Range<usize>,
}

impl RawBatch {
    /// An empty batch for `partition`.
    pub fn new(partition: i32) -> Self {
        Self {
            partition,
            ..Self::default()
        }
    }

    /// Appends one record.
    pub fn push(&mut self, offset: i64, payload: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(payload);
        self.records.push(RawRecord {
            offset,
            range: start..self.data.len(),
        });
        self.data.push(b'\n');
    }

    /// The payload of record `i`.
    pub fn payload(&self, i: usize) -> &[u8] {
        &self.data[self.records[i].range.clone()]
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A dead-letter entry for record `i`.
    pub fn bad(&self, i: usize, error: impl Into<String>) -> BadRecord {
        let payload = self.payload(i);
        BadRecord {
            partition: self.partition,
            offset: self.records[i].offset,
            raw: payload[..payload.len().min(MAX_DEAD_LETTER_BYTES)].to_vec(),
            error: error.into(),
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The raw bytes (at most [`MAX_DEAD_LETTER_BYTES`]).
    pub raw: Vec<u8>,
    /// Why it was rejected, naming the field where possible.
    pub error: String,
}

/// Good rows and bad records of one [`RawBatch`].
#[derive(Debug)]
pub struct Decoded {
    /// Decoded rows, in the table's schema, in record order.
    pub batch: RecordBatch,
    /// Rejected records.
    pub bad: Vec<BadRecord>,
    /// For each row of `batch`, the index in [`RawBatch::records`] of the
    /// record it came from (a line-protocol record may hold several rows):
    /// how a check after decoding rejects whole records with their offset.
    pub row_records: Vec<u32>,
}

/// Turns raw records into rows of one schema.
pub trait Decoder: Send + std::fmt::Debug {
    /// Decodes every record of `raw`; never fails because of one record.
    fn decode(&mut self, raw: &RawBatch) -> Decoded;
}

/// The wire formats sources can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per record.
    Json,
    /// InfluxDB line protocol, one or more lines per record.
    InfluxLp,
    /// OpenMetrics text, one exposition per record.
    OpenMetrics,
}

impl Format {
    /// Reads the `'format'` option.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "json" => Ok(Self::Json),
            "influx-lp" => Ok(Self::InfluxLp),
            "openmetrics" => Ok(Self::OpenMetrics),
            other => Err(format!(
                "unknown format {other:?}; expected json, influx-lp or openmetrics"
            )),
        }
    }
}

impl From<Format> for spindle_simulator::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Json => Self::Json,
            Format::InfluxLp => Self::InfluxLp,
            Format::OpenMetrics => Self::Openmetrics,
        }
    }
}

/// The decoder of `format` for `schema`; `time_column` names the column that
/// takes line protocol / OpenMetrics timestamps.
pub fn decoder(format: Format, schema: SchemaRef, time_column: Option<&str>) -> Box<dyn Decoder> {
    match format {
        Format::Json => Box::new(json::JsonDecoder::new(schema)),
        Format::InfluxLp => Box::new(line_protocol::LineProtocolDecoder::new(schema, time_column)),
        Format::OpenMetrics => Box::new(openmetrics::OpenMetricsDecoder::new(schema, time_column)),
    }
}
