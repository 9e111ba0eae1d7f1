//! Flatline: a stuck probe repeats the same value. The score is the length
//! of the current run of identical consecutive readings; it is flagged once
//! the value has repeated more than `repeats` times (default 10), which a
//! live sensor reported at its precision almost never does.

use crate::verdict::{Detector, Verdict, finite};
use crate::{AnomalyError, Result};

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Flatline {
    repeats: u64,
    last: Option<f64>,
    run: u64,
}

impl Flatline {
    /// Flags runs longer than `repeats` readings.
    pub fn new(repeats: u64) -> Result<Self> {
        if repeats == 0 {
            return Err(AnomalyError::Parameter("repeats must be at least 1".into()));
        }
        Ok(Self {
            repeats,
            last: None,
            run: 0,
        })
    }
}

impl Detector for Flatline {
    fn save_state(&self) -> crate::Result<String> {
        crate::verdict::to_state(self)
    }

    fn observe(&mut self, value: Option<f64>) -> Verdict {
        let Some(x) = finite(value) else {
            return Verdict::missing(value);
        };
        self.run = if self.last == Some(x) {
            self.run + 1
        } else {
            1
        };
        self.last = Some(x);
        let run = self.run;
        Verdict::scored(run as f64, self.repeats as f64, || {
            format!("the same value {x} {run} times in a row")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_a_run_longer_than_repeats_and_resets_on_change() {
        let mut f = Flatline::new(3).unwrap();
        let flags: Vec<bool> = [1.0, 2.0, 2.0, 2.0, 2.0, 2.5, 2.5]
            .iter()
            .map(|x| f.observe(Some(*x)).flag.unwrap())
            .collect();
        assert_eq!(flags, [false, false, false, false, true, false, false]);
        assert!(Flatline::new(0).is_err());
    }
}
