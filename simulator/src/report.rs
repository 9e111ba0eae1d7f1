//! Progress while running (a bar on a terminal, nothing otherwise) and the
//! final summary.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::fault::FaultEvent;
use crate::output::DeliveryReport;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Readings sent to the output.
    pub records: u64,
    /// Encoded bytes sent.
    pub bytes: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Readings that were held back and sent late (`--late-fraction`).
    pub delayed: u64,
    /// What the destination confirmed or refused.
    pub delivery: DeliveryReport,
    /// Every injected fault (the ground truth).
    pub faults: Vec<FaultEvent>,
}

impl Summary {
    /// Readings per second achieved.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for people and scripts alike.
    pub fn line(&self) -> String {
        let mut line = format!(
            "simulate: records={} bytes={} seconds={:.3} rate={:.0}/s delayed={} faults={} delivered={} failed={}",
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.delayed,
            self.faults.len(),
            self.delivery.delivered,
            self.delivery.failed,
        );
        if let Some(error) = &self.delivery.first_error {
            line.push_str(&format!(" first_error={error:?}"));
        }
        line
    }
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub fn progress(total: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    let template =
        "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} readings ({per_sec})";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
