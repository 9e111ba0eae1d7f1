//! OpenMetrics text, one exposition per reading (so each Kafka message is a
//! valid exposition on its own; a file is a sequence of them):
//!
//! ```text
//! # TYPE temperature gauge
//! temperature{machine_id="m-0001",line="line-1",provider="acme"} 65.2 1764000000.123
//! …
//! # TYPE seq gauge
//! seq{machine_id="m-0001",line="line-1",provider="acme"} 1 1764000000.123
//! # EOF
//! ```
//!
//! With labels, a `fault` gauge (1/0) carries a `fault_kind` label.
//! Missing values (NaN) are left out.

use super::{Encoder, push_f64, push_int};
use crate::record::{Layout, Reading};

/// Encodes readings as OpenMetrics expositions.
#[derive(Debug)]
pub struct OpenMetricsEncoder {
    /// Per machine: `{machine_id="…",line="…",provider="…"`, without the `}`.
    label_sets: Vec<Vec<u8>>,
    /// Per field: `# TYPE name gauge\nname`.
    families: Vec<Vec<u8>>,
    kinds: Vec<Vec<u8>>,
    labels: bool,
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl OpenMetricsEncoder {
    /// An encoder for `layout`; `labels` adds the `fault` gauge.
    pub fn new(layout: &Layout, labels: bool) -> Self {
        let label_sets = layout
            .machines
            .iter()
            .map(|m| {
                let mut s = format!("{{machine_id=\"{}\"", escape_label(&m.id));
                for (key, value) in [("line", &m.line), ("provider", &m.provider)] {
                    if !value.is_empty() {
                        s.push_str(&format!(",{key}=\"{}\"", escape_label(value)));
                    }
                }
                s.into_bytes()
            })
            .collect();
        let families = layout
            .fields
            .iter()
            .map(|f| format!("# TYPE {0} gauge\n{0}", f.name).into_bytes())
            .collect();
        let kinds = layout
            .fault_kinds
            .iter()
            .map(|k| escape_label(k).into_bytes())
            .collect();
        Self {
            label_sets,
            families,
            kinds,
            labels,
        }
    }

    /// Writes a sample's label set (plus `extra` labels) and the space
    /// before its value.
    fn label_set(&self, buf: &mut Vec<u8>, machine: usize, extra: &[u8]) {
        buf.extend_from_slice(&self.label_sets[machine]);
        buf.extend_from_slice(extra);
        buf.extend_from_slice(b"} ");
    }
}

impl Encoder for OpenMetricsEncoder {
    fn encode(&mut self, r: &Reading, buf: &mut Vec<u8>) {
        let m = r.machine as usize;
        let mut ts = Vec::with_capacity(24);
        ts.push(b' ');
        push_int(&mut ts, r.ts_ms.div_euclid(1000));
        ts.push(b'.');
        let millis = r.ts_ms.rem_euclid(1000);
        ts.extend_from_slice(&[
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ]);
        ts.push(b'\n');
        for (family, &value) in self.families.iter().zip(&r.values) {
            if value.is_finite() {
                buf.extend_from_slice(family);
                self.label_set(buf, m, b"");
                push_f64(buf, value);
                buf.extend_from_slice(&ts);
            }
        }
        buf.extend_from_slice(b"# TYPE seq gauge\nseq");
        self.label_set(buf, m, b"");
        push_int(buf, r.seq);
        buf.extend_from_slice(&ts);
        if self.labels {
            buf.extend_from_slice(b"# TYPE fault gauge\nfault");
            let kind = r.fault.and_then(|k| self.kinds.get(k as usize));
            let extra = [&b",fault_kind=\""[..], kind.map_or(&b""[..], |k| k), b"\""].concat();
            self.label_set(buf, m, &extra);
            buf.push(if kind.is_some() { b'1' } else { b'0' });
            buf.extend_from_slice(&ts);
        }
        buf.extend_from_slice(b"# EOF\n");
    }
}
