//! What a reading is, independent of how it is encoded: a [`Layout`] shared by
//! all readings of a run, and [`Reading`]s that index into it.

/// Names and tags of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineMeta {
    /// Record key, e.g. `m-0001`.
    pub id: String,
    /// Production line tag (empty when unknown, e.g. in a replay).
    pub line: String,
    /// Provider tag (empty when unknown).
    pub provider: String,
}

/// One numeric field of a reading.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMeta {
    /// Field name, e.g. `temperature`.
    pub name: String,
    /// Unit (may be empty).
    pub unit: String,
    /// Decimal places written; `None` writes the shortest exact form.
    pub precision: Option<u32>,
}

/// Everything encoders need to know about a run's readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Machines, indexed by [`Reading::machine`].
    pub machines: Vec<MachineMeta>,
    /// Numeric fields, in [`Reading::values`] order.
    pub fields: Vec<FieldMeta>,
    /// Fault kind names, indexed by [`Reading::fault`].
    pub fault_kinds: Vec<String>,
}

/// One machine reading. Values are already rounded to their field's precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Index into [`Layout::machines`].
    pub machine: u32,
    /// Per-machine sequence number: 1, 2, 3, … in generation order.
    pub seq: u64,
    /// When the reading was due (no jitter), epoch milliseconds.
    pub nominal_ms: i64,
    /// The reported event time (with jitter), epoch milliseconds.
    pub ts_ms: i64,
    /// One value per [`Layout::fields`] entry.
    pub values: Vec<f64>,
    /// Ground truth: the fault in progress (index into
    /// [`Layout::fault_kinds`]), if any.
    pub fault: Option<u16>,
}

impl Reading {
    /// An empty reading with room for `fields` values.
    pub fn with_fields(fields: usize) -> Self {
        Self {
            machine: 0,
            seq: 0,
            nominal_ms: 0,
            ts_ms: 0,
            values: vec![0.0; fields],
            fault: None,
        }
    }
}

/// Rounds to `decimals` places (the precision written out).
#[inline]
pub fn round_to(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}
