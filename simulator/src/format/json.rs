//! The JSON record of the design brief:
//! `{"machine_id":"m-0001","seq":1,"line":"line-1","provider":"acme","ts":"…","temperature":65.2,…}`
//! plus `"fault":bool,"fault_kind":string|null` with labels. Strings are
//! escaped once per run by serde_json and reused; numbers are written by
//! itoa/ryu. Missing values (NaN) are written as `null`.

use super::{Encoder, TimestampFormatter, push_f64, push_fixed, push_int};
use crate::record::{Layout, Reading};

/// Encodes readings as JSON objects, one per line.
#[derive(Debug)]
pub struct JsonEncoder {
    /// Per machine: `{"machine_id":"…","seq":`.
    heads: Vec<Vec<u8>>,
    /// Per machine: `,"line":"…","provider":"…","ts":"` (tags omitted when empty).
    tags: Vec<Vec<u8>>,
    /// Per field: `,"name":`.
    fields: Vec<Vec<u8>>,
    /// Per field: decimals the values are rounded to, if known.
    decimals: Vec<Option<u32>>,
    /// Per fault kind: `"kind"`.
    kinds: Vec<Vec<u8>>,
    labels: bool,
    ts: TimestampFormatter,
}

fn quoted(s: &str) -> Vec<u8> {
    // serde_json cannot fail to serialise a &str.
    serde_json::to_vec(s).unwrap_or_default()
}

impl JsonEncoder {
    /// An encoder for `layout`; `labels` adds `fault` and `fault_kind`.
    pub fn new(layout: &Layout, labels: bool) -> Self {
        let heads = layout
            .machines
            .iter()
            .map(|m| [&b"{\"machine_id\":"[..], &quoted(&m.id), b",\"seq\":"].concat())
            .collect();
        let tags = layout
            .machines
            .iter()
            .map(|m| {
                let mut t = Vec::new();
                for (key, value) in [("line", &m.line), ("provider", &m.provider)] {
                    if !value.is_empty() {
                        t.extend_from_slice(format!(",\"{key}\":").as_bytes());
                        t.extend_from_slice(&quoted(value));
                    }
                }
                t.extend_from_slice(b",\"ts\":\"");
                t
            })
            .collect();
        let fields = layout
            .fields
            .iter()
            .map(|f| [&b","[..], &quoted(&f.name), b":"].concat())
            .collect();
        let kinds = layout.fault_kinds.iter().map(|k| quoted(k)).collect();
        Self {
            heads,
            tags,
            fields,
            decimals: layout.fields.iter().map(|f| f.precision).collect(),
            kinds,
            labels,
            ts: TimestampFormatter::default(),
        }
    }
}

impl Encoder for JsonEncoder {
    fn encode(&mut self, r: &Reading, buf: &mut Vec<u8>) {
        let m = r.machine as usize;
        buf.extend_from_slice(&self.heads[m]);
        push_int(buf, r.seq);
        buf.extend_from_slice(&self.tags[m]);
        self.ts.push(buf, r.ts_ms);
        buf.push(b'"');
        for ((name, &value), decimals) in self.fields.iter().zip(&r.values).zip(&self.decimals) {
            buf.extend_from_slice(name);
            if value.is_finite() {
                match decimals {
                    Some(d) => push_fixed(buf, value, *d),
                    None => push_f64(buf, value),
                }
            } else {
                buf.extend_from_slice(b"null");
            }
        }
        if self.labels {
            match r.fault.and_then(|k| self.kinds.get(k as usize)) {
                Some(kind) => {
                    buf.extend_from_slice(b",\"fault\":true,\"fault_kind\":");
                    buf.extend_from_slice(kind);
                }
                None => buf.extend_from_slice(b",\"fault\":false,\"fault_kind\":null"),
            }
        }
        buf.extend_from_slice(b"}\n");
    }
}
