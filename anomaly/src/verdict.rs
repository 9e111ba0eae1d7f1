//! What a detector says about one reading.

/// A detector's output for one reading: the SQL struct
/// `{score, flag, threshold, reason}`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// How unusual the reading is, on the detector's own scale (`None` when
    /// it cannot say yet).
    pub score: Option<f64>,
    /// Whether it is an anomaly (`None` for a missing value).
    pub flag: Option<bool>,
    /// The score above which a reading is flagged.
    pub threshold: Option<f64>,
    /// Why it was flagged, or why there is no score.
    pub reason: Option<String>,
}

impl Verdict {
    /// No score because the value is missing or not finite.
    pub fn missing(value: Option<f64>) -> Self {
        let reason = match value {
            None => "missing value".to_string(),
            Some(v) => format!("not a finite value ({v})"),
        };
        Self {
            reason: Some(reason),
            ..Self::default()
        }
    }

    /// No score yet: the source has not been seen often enough.
    pub fn warming_up(seen: u64, needed: u64) -> Self {
        Self {
            flag: Some(false),
            reason: Some(format!(
                "unknown source (warming up: {seen} of {needed} readings)"
            )),
            ..Self::default()
        }
    }

    /// A score compared with a threshold; `why` explains a flag.
    pub fn scored(score: f64, threshold: f64, why: impl FnOnce() -> String) -> Self {
        let flag = score > threshold;
        Self {
            score: Some(score),
            flag: Some(flag),
            threshold: Some(threshold),
            reason: flag.then(why),
        }
    }
}

/// A stateful detector: sees one source's readings in event-time order.
pub trait Detector: Send + std::fmt::Debug {
    /// Scores `value` against what came before, then learns from it.
    fn observe(&mut self, value: Option<f64>) -> Verdict;

    /// Its state (parameters included) as JSON, for a checkpoint;
    /// [`crate::udwf::Model::restore`] makes the detector again.
    fn save_state(&self) -> crate::Result<String>;
}

/// `save_state` for a detector that serialises with serde.
pub(crate) fn to_state<T: serde::Serialize>(detector: &T) -> crate::Result<String> {
    crate::state::encode(detector)
}

/// The value if it is present and finite.
pub(crate) fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}
