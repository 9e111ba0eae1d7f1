//! InfluxDB line protocol, built with the `influxdb-line-protocol` crate's
//! typestate builder (it does the escaping):
//! `sensors,machine_id=m-0001,line=line-1,provider=acme seq=1i,temperature=65.2,… 1764000000123000000`.
//! Timestamps are nanoseconds; missing values (NaN) are left out.

use influxdb_line_protocol::LineProtocolBuilder;

use super::Encoder;
use crate::record::{Layout, Reading};

/// The measurement name readings are written under.
pub const MEASUREMENT: &str = "sensors";

/// Encodes readings as line-protocol lines.
#[derive(Debug)]
pub struct InfluxLpEncoder {
    layout: Layout,
    labels: bool,
}

impl InfluxLpEncoder {
    /// An encoder for `layout`; `labels` adds `fault` and `fault_kind` fields.
    pub fn new(layout: &Layout, labels: bool) -> Self {
        Self {
            layout: layout.clone(),
            labels,
        }
    }
}

impl Encoder for InfluxLpEncoder {
    fn encode(&mut self, r: &Reading, buf: &mut Vec<u8>) {
        let machine = &self.layout.machines[r.machine as usize];
        let mut line = LineProtocolBuilder::new_with(std::mem::take(buf))
            .measurement(MEASUREMENT)
            .tag("machine_id", &machine.id);
        for (key, value) in [("line", &machine.line), ("provider", &machine.provider)] {
            if !value.is_empty() {
                line = line.tag(key, value);
            }
        }
        let mut line = line.field("seq", r.seq as i64);
        for (field, &value) in self.layout.fields.iter().zip(&r.values) {
            if value.is_finite() {
                line = line.field(&field.name, value);
            }
        }
        if self.labels {
            line = line.field("fault", r.fault.is_some());
            if let Some(kind) = r
                .fault
                .and_then(|k| self.layout.fault_kinds.get(k as usize))
            {
                line = line.field("fault_kind", kind.as_str());
            }
        }
        *buf = line
            .timestamp(r.ts_ms.saturating_mul(1_000_000))
            .close_line()
            .build();
    }
}
