//! Pacing: cap readings per second (`--rate`) and/or follow simulated time
//! on the wall clock (`--realtime`, or a replay's `--speed`).

use std::time::{Duration, Instant};

/// How fast to send.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pacing {
    /// At most this many readings per second; `None` is flat out.
    pub rate: Option<f64>,
    /// Simulated seconds per wall second; `None` ignores event time.
    pub speed: Option<f64>,
}

/// Sleeps just enough to honour a [`Pacing`].
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    started: Instant,
    first_ts_ms: Option<i64>,
}

impl Pacer {
    /// Starts the clock now.
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            started: Instant::now(),
            first_ts_ms: None,
        }
    }

    /// Called after each sent reading: `sent` so far, the reading's time.
    pub fn after(&mut self, sent: u64, ts_ms: i64) {
        let mut due = Duration::ZERO;
        if let Some(rate) = self.pacing.rate {
            due = due.max(Duration::from_secs_f64(sent as f64 / rate));
        }
        if let Some(speed) = self.pacing.speed {
            let first = *self.first_ts_ms.get_or_insert(ts_ms);
            let simulated = (ts_ms - first).max(0) as f64 / 1000.0;
            due = due.max(Duration::from_secs_f64(simulated / speed));
        }
        let elapsed = self.started.elapsed();
        if due > elapsed + Duration::from_millis(1) {
            std::thread::sleep(due - elapsed);
        }
    }
}
