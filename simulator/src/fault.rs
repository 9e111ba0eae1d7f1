//! Fault injection: when a machine fails, how, for how long, and what that
//! does to its sensors. Every injected fault is logged as a [`FaultEvent`]
//! (the ground truth), and readings inside it carry its kind as a label.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, LogNormal, StandardNormal, weighted::WeightedIndex};

use crate::error::{Result, SimError};
use crate::spec::{EffectSpec, FactorySpec, FaultsSpec, Reporting};

/// A fault's effect on one sensor, in units of that sensor's std.
#[derive(Debug, Clone)]
pub struct Effect {
    /// Index of the sensor in the profile.
    pub sensor: usize,
    /// The profile's description of the effect.
    pub spec: EffectSpec,
}

/// One kind of fault, resolved against the sensors.
#[derive(Debug, Clone)]
pub struct FaultKind {
    /// Label written in `fault_kind`.
    pub name: String,
    /// Reporting behaviour while active.
    pub reporting: Reporting,
    /// Readings per interval when bursty.
    pub burst_factor: u32,
    /// Per-sensor effects.
    pub effects: Vec<Effect>,
}

/// One injected fault: the ground truth a detector is measured against.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaultEvent {
    /// Machine index (0-based).
    pub machine: u32,
    /// Machine id, e.g. `m-0001`.
    pub machine_id: String,
    /// Kind name.
    pub kind: String,
    /// Onset, simulated epoch milliseconds (inclusive).
    pub start_ms: i64,
    /// Reset, simulated epoch milliseconds (exclusive).
    pub end_ms: i64,
}

/// A fault in progress on one machine.
#[derive(Debug, Clone)]
pub struct ActiveFault {
    /// Index into [`FaultModel::kinds`].
    pub kind: u16,
    /// Onset (inclusive).
    pub start_ms: i64,
    /// Reset (exclusive).
    pub end_ms: i64,
    /// For stuck sensors: the frozen value, captured at the first reading.
    pub frozen: Vec<Option<f64>>,
}

/// Fault rates, durations and kinds for the whole factory.
#[derive(Debug, Clone)]
pub struct FaultModel {
    /// All kinds, in profile order.
    pub kinds: Vec<FaultKind>,
    onset: Option<Exp<f64>>,
    duration: LogNormal<f64>,
    weights: Option<WeightedIndex<f64>>,
    min_ms: f64,
    max_ms: f64,
}

/// Per-machine fault state: the next onset and the fault in progress.
#[derive(Debug, Clone)]
pub struct MachineFaults {
    next_onset_ms: i64,
    /// The fault in progress, if any.
    pub active: Option<ActiveFault>,
}

impl FaultModel {
    /// Builds the model from a validated profile; `rate_override` replaces
    /// the profile's rate (0 turns faults off).
    pub fn new(spec: &FactorySpec, rate_override: Option<f64>) -> Result<Self> {
        let faults: &FaultsSpec = &spec.faults;
        let rate = rate_override.unwrap_or(faults.rate_per_machine_hour);
        let kinds: Vec<FaultKind> = faults
            .kinds
            .iter()
            .map(|k| {
                let k = k.get_ref();
                FaultKind {
                    name: k.name.clone(),
                    reporting: k.reporting,
                    burst_factor: k.burst_factor,
                    effects: resolve_effects(spec, &k.effects),
                }
            })
            .collect();
        let weights = WeightedIndex::new(faults.kinds.iter().map(|k| k.get_ref().weight)).ok();
        let d = &faults.duration;
        let median_ms = d.median.as_secs_f64() * 1000.0;
        let duration = LogNormal::new(median_ms.ln(), d.sigma)
            .map_err(|e| SimError::option("faults.duration", e.to_string()))?;
        if !(rate >= 0.0 && rate.is_finite()) {
            return Err(SimError::option(
                "fault rate",
                format!("must be ≥ 0, got {rate}"),
            ));
        }
        Ok(Self {
            kinds,
            onset: (rate > 0.0 && weights.is_some())
                .then(|| Exp::new(rate / 3_600_000.0).ok())
                .flatten(),
            duration,
            weights,
            min_ms: d.min.as_secs_f64() * 1000.0,
            max_ms: d.max.as_secs_f64() * 1000.0,
        })
    }

    /// Initial per-machine state at simulated time `now_ms`.
    pub fn machine_state<R: Rng + ?Sized>(&self, now_ms: i64, rng: &mut R) -> MachineFaults {
        MachineFaults {
            next_onset_ms: self.next_onset(now_ms, rng),
            active: None,
        }
    }

    fn next_onset<R: Rng + ?Sized>(&self, after_ms: i64, rng: &mut R) -> i64 {
        match &self.onset {
            Some(exp) => after_ms.saturating_add(exp.sample(rng).min(1e15) as i64),
            None => i64::MAX,
        }
    }

    /// Moves a machine's fault state to `now_ms`: ends a fault whose time is
    /// up (the machine is reset) and starts one whose onset has come. A new
    /// fault is appended to `log`.
    pub fn advance<R: Rng + ?Sized>(
        &self,
        state: &mut MachineFaults,
        machine: (u32, &str),
        now_ms: i64,
        rng: &mut R,
        log: &mut Vec<FaultEvent>,
    ) {
        if let Some(active) = &state.active {
            if now_ms < active.end_ms {
                return;
            }
            let ended = active.end_ms;
            state.active = None;
            state.next_onset_ms = self.next_onset(ended, rng);
        }
        if now_ms < state.next_onset_ms {
            return;
        }
        let Some(weights) = &self.weights else { return };
        let kind = weights.sample(rng);
        let start_ms = state.next_onset_ms;
        let length = self.duration.sample(rng).clamp(self.min_ms, self.max_ms);
        let end_ms = start_ms + length.round().max(1.0) as i64;
        log.push(FaultEvent {
            machine: machine.0,
            machine_id: machine.1.to_string(),
            kind: self.kinds[kind].name.clone(),
            start_ms,
            end_ms,
        });
        state.active = Some(ActiveFault {
            kind: kind as u16,
            start_ms,
            end_ms,
            frozen: vec![None; self.kinds[kind].effects.len()],
        });
        // A fault that began and ended between two readings still counts
        // (it is in the log); the next call resets the machine.
    }
}

impl ActiveFault {
    /// Applies this fault's effects to one machine's readings at `now_ms`;
    /// `values` hold the healthy readings, `stds` each sensor's std.
    pub fn apply<R: Rng + ?Sized>(
        &mut self,
        kind: &FaultKind,
        now_ms: i64,
        values: &mut [f64],
        stds: &[f64],
        rng: &mut R,
    ) {
        let minutes = (now_ms - self.start_ms) as f64 / 60_000.0;
        for (effect, frozen) in kind.effects.iter().zip(self.frozen.iter_mut()) {
            let e = &effect.spec;
            let value = &mut values[effect.sensor];
            if e.stuck {
                *value = *frozen.get_or_insert(*value);
                continue;
            }
            let mut offset = e.shift + e.drift_per_minute * minutes;
            if e.noise > 0.0 {
                let z: f64 = StandardNormal.sample(rng);
                offset += e.noise * z;
            }
            if e.spike_probability > 0.0 && rng.random::<f64>() < e.spike_probability {
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                offset += sign * e.spike_size;
            }
            *value += offset * stds[effect.sensor];
        }
    }
}

fn resolve_effects(spec: &FactorySpec, effects: &[EffectSpec]) -> Vec<Effect> {
    effects
        .iter()
        .filter_map(|e| {
            spec.sensor_index(&e.sensor).map(|sensor| Effect {
                sensor,
                spec: e.clone(),
            })
        })
        .collect()
}
