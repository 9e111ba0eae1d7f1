//! A bounded stream of readings: a source (the factory or a replay), a stop
//! condition, and optional injected disorder (late, out-of-order readings).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::factory::Factory;
use crate::record::{Layout, Reading};
use crate::replay::Replay;

/// Where readings come from.
#[derive(Debug)]
pub enum Source {
    /// The simulated factory (endless).
    Factory(Box<Factory>),
    /// A recorded CSV (finite).
    Replay(Replay),
}

impl Source {
    /// The run's layout.
    pub fn layout(&self) -> &Layout {
        match self {
            Self::Factory(f) => f.layout(),
            Self::Replay(r) => r.layout(),
        }
    }

    /// Nominal time of the next reading, or `None` when exhausted.
    fn clock_ms(&self) -> Option<i64> {
        match self {
            Self::Factory(f) => Some(f.clock_ms()),
            Self::Replay(r) => r.clock_ms(),
        }
    }

    fn next_into(&mut self, out: &mut Reading) -> bool {
        match self {
            Self::Factory(f) => {
                f.next_into(out);
                true
            }
            Self::Replay(r) => r.next_into(out),
        }
    }
}

/// When to stop generating.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Total readings.
    pub count: Option<u64>,
    /// Stop before the first reading due at or after this time (epoch ms).
    pub until_ms: Option<i64>,
}

/// Injected disorder: a fraction of readings is held back and sent later.
#[derive(Debug, Clone, Copy)]
pub struct Disorder {
    /// Fraction of readings delayed, in [0, 1].
    pub fraction: f64,
    /// Largest delay in simulated milliseconds (uniform in 1..=max).
    pub max_delay_ms: i64,
    /// Seed of the delay draws.
    pub seed: u64,
}

/// A held-back reading, ordered by release time then arrival.
#[derive(Debug)]
struct Held {
    release_ms: i64,
    order: u64,
    reading: Reading,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.release_ms, self.order) == (other.release_ms, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.release_ms, self.order).cmp(&(other.release_ms, other.order))
    }
}

/// The readings a run sends, in sending order.
#[derive(Debug)]
pub struct ReadingStream {
    source: Source,
    limits: Limits,
    generated: u64,
    done: bool,
    disorder: Option<(Disorder, Xoshiro256PlusPlus)>,
    held: BinaryHeap<Reverse<Held>>,
    delayed: u64,
}

impl ReadingStream {
    /// A stream over `source`, stopping at `limits`, with optional disorder.
    pub fn new(source: Source, limits: Limits, disorder: Option<Disorder>) -> Self {
        Self {
            source,
            limits,
            generated: 0,
            done: false,
            disorder: disorder
                .filter(|d| d.fraction > 0.0 && d.max_delay_ms > 0)
                .map(|d| (d, Xoshiro256PlusPlus::seed_from_u64(d.seed ^ 0xD15_0DE5))),
            held: BinaryHeap::new(),
            delayed: 0,
        }
    }

    /// The run's layout.
    pub fn layout(&self) -> &Layout {
        self.source.layout()
    }

    /// The source, e.g. to read the factory's fault log after the run.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// How many readings were held back and sent late.
    pub fn delayed(&self) -> u64 {
        self.delayed
    }

    /// Fills `out` with the next reading to send; false at the end.
    pub fn next_into(&mut self, out: &mut Reading) -> bool {
        loop {
            let now = self.clock_ms();
            if let Some(Reverse(top)) = self.held.peek()
                && now.is_none_or(|now| top.release_ms <= now)
                && let Some(Reverse(held)) = self.held.pop()
            {
                *out = held.reading;
                return true;
            }
            if now.is_none() || !self.source.next_into(out) {
                self.done = true;
                if self.held.is_empty() {
                    return false;
                }
                continue;
            }
            self.generated += 1;
            if !self.hold_back(out) {
                return true;
            }
        }
    }

    /// Current generation time, or `None` once the limits are reached.
    fn clock_ms(&self) -> Option<i64> {
        if self.done || self.limits.count.is_some_and(|c| self.generated >= c) {
            return None;
        }
        let now = self.source.clock_ms()?;
        match self.limits.until_ms {
            Some(until) if now >= until => None,
            _ => Some(now),
        }
    }

    fn hold_back(&mut self, reading: &Reading) -> bool {
        let Some((d, rng)) = self.disorder.as_mut() else {
            return false;
        };
        if rng.random::<f64>() >= d.fraction {
            return false;
        }
        let delay = rng.random_range(1..=d.max_delay_ms);
        self.delayed += 1;
        self.held.push(Reverse(Held {
            release_ms: reading.nominal_ms + delay,
            order: self.generated,
            reading: reading.clone(),
        }));
        true
    }
}

#[cfg(test)]
mod tests;
