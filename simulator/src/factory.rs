//! The simulated factory: a clock, machines with their sensor walks and fault
//! states, and the order in which readings come out.
//!
//! Time is simulated: machine `m` reports at `start + phase(m) + k·interval`,
//! with `phase(m)` drawn once per machine, so readings come out in nominal
//! event-time order (jitter and injected delays then disorder them, as real
//! gateways do). Each machine has its own random stream derived from the
//! seed, so a run is reproducible byte for byte.

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::Result;
use crate::fault::{FaultEvent, FaultModel, MachineFaults};
use crate::record::{FieldMeta, Layout, MachineMeta, Reading, round_to};
use crate::sensor::{SensorModel, SensorState};
use crate::spec::{FactorySpec, IdPattern, Reporting};

/// Run-time knobs that are not part of the profile.
#[derive(Debug, Clone)]
pub struct FactoryOptions {
    /// Seed of every random stream.
    pub seed: u64,
    /// Simulated start, epoch milliseconds.
    pub start_ms: i64,
    /// Overrides the profile's machine count.
    pub machines: Option<u32>,
    /// Overrides the profile's interval (milliseconds).
    pub interval_ms: Option<i64>,
    /// Overrides the profile's fault rate (0 turns faults off).
    pub fault_rate: Option<f64>,
}

/// A bursty machine's pending extra readings in the current interval.
#[derive(Debug, Clone, Copy)]
struct Burst {
    machine: u32,
    base_ms: i64,
    /// The fault's end: no sub-reading at or after it.
    end_ms: i64,
    next: u32,
    factor: u32,
}

struct Machine {
    rng: Xoshiro256PlusPlus,
    phase_ms: i64,
    seq: u64,
    sensors: Vec<SensorState>,
    faults: MachineFaults,
}

/// Generates readings in nominal time order. See the module docs.
pub struct Factory {
    layout: Layout,
    models: Vec<SensorModel>,
    stds: Vec<f64>,
    scales: Vec<f64>,
    fault_model: FaultModel,
    machines: Vec<Machine>,
    /// Machine indices sorted by phase: the order within one tick.
    order: Vec<u32>,
    start_ms: i64,
    interval_ms: i64,
    jitter: Option<Normal<f64>>,
    tick: i64,
    cursor: usize,
    /// Remaining sub-readings of a bursty machine.
    burst: Option<Burst>,
    fault_log: Vec<FaultEvent>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("machines", &self.machines.len())
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// Derives independent per-machine seeds (splitmix64 of seed and index).
fn machine_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Factory {
    /// Builds the factory of a validated profile.
    pub fn new(spec: &FactorySpec, options: &FactoryOptions) -> Result<Self> {
        let models: Vec<SensorModel> = spec.sensor_specs().map(SensorModel::new).collect();
        let fault_model = FaultModel::new(spec, options.fault_rate)?;
        let count = options.machines.unwrap_or(spec.machines.count);
        let interval_ms = options
            .interval_ms
            .unwrap_or(spec.interval.as_millis() as i64)
            .max(1);
        let layout = build_layout(spec, &fault_model, count)?;
        let machines: Vec<Machine> = (0..count)
            .map(|i| new_machine(&models, &fault_model, options, interval_ms, i))
            .collect();
        let mut order: Vec<u32> = (0..count).collect();
        order.sort_by_key(|&i| (machines[i as usize].phase_ms, i));
        let jitter_ms = spec.jitter.as_secs_f64() * 1000.0;
        Ok(Self {
            stds: models.iter().map(|m| m.std).collect(),
            scales: spec
                .sensor_specs()
                .map(|s| 10f64.powi(s.precision as i32))
                .collect(),
            layout,
            models,
            fault_model,
            machines,
            order,
            start_ms: options.start_ms,
            interval_ms,
            jitter: (jitter_ms > 0.0)
                .then(|| Normal::new(0.0, jitter_ms).ok())
                .flatten(),
            tick: 0,
            cursor: 0,
            burst: None,
            fault_log: Vec::new(),
        })
    }

    /// Machines, fields and fault kinds of this run.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every fault injected so far (the ground truth).
    pub fn fault_log(&self) -> &[FaultEvent] {
        &self.fault_log
    }

    /// Nominal time of the next machine slot: nothing generated later will
    /// be due before it.
    pub fn clock_ms(&self) -> i64 {
        let machine = self.order.get(self.cursor).copied().unwrap_or(0) as usize;
        self.start_ms + self.tick * self.interval_ms + self.machines[machine].phase_ms
    }

    /// Fills `out` with the next reading.
    pub fn next_into(&mut self, out: &mut Reading) {
        loop {
            if let Some(burst) = self.burst.take()
                && self.emit_burst(burst, out)
            {
                return;
            }
            let machine = self.order[self.cursor];
            let nominal_ms = self.clock_ms();
            self.cursor += 1;
            if self.cursor == self.order.len() {
                self.cursor = 0;
                self.tick += 1;
            }
            if self.generate(machine, nominal_ms, out) {
                return;
            }
        }
    }

    /// Advances one machine to `nominal_ms`; returns false when it is
    /// stalled and reports nothing.
    fn generate(&mut self, machine: u32, nominal_ms: i64, out: &mut Reading) -> bool {
        let m = &mut self.machines[machine as usize];
        let id = (machine, self.layout.machines[machine as usize].id.as_str());
        self.fault_model.advance(
            &mut m.faults,
            id,
            nominal_ms,
            &mut m.rng,
            &mut self.fault_log,
        );
        for ((model, state), value) in self.models.iter().zip(&mut m.sensors).zip(&mut out.values) {
            *value = model.mean + model.step(state, &mut m.rng);
        }
        let mut reporting = Reporting::Normal;
        out.fault = None;
        if let Some(active) = m
            .faults
            .active
            .as_mut()
            .filter(|a| nominal_ms >= a.start_ms)
        {
            let kind = &self.fault_model.kinds[active.kind as usize];
            active.apply(kind, nominal_ms, &mut out.values, &self.stds, &mut m.rng);
            out.fault = Some(active.kind);
            reporting = kind.reporting;
            if reporting == Reporting::Bursty {
                self.burst = Some(Burst {
                    machine,
                    base_ms: nominal_ms,
                    end_ms: active.end_ms,
                    next: 1,
                    factor: kind.burst_factor,
                });
            }
        }
        if reporting == Reporting::Stalled {
            return false;
        }
        self.finish(machine, nominal_ms, out);
        true
    }

    /// A bursty machine's extra readings within the same interval: the same
    /// values (the walk moves once per interval) at evenly spaced times.
    /// Returns false when the fault ended (the machine was reset) before
    /// this sub-reading was due.
    fn emit_burst(&mut self, burst: Burst, out: &mut Reading) -> bool {
        let offset = self.interval_ms * i64::from(burst.next) / i64::from(burst.factor);
        if burst.base_ms + offset >= burst.end_ms {
            return false;
        }
        if burst.next + 1 < burst.factor {
            self.burst = Some(Burst {
                next: burst.next + 1,
                ..burst
            });
        }
        // `out` still holds the first reading's values and label.
        self.finish(burst.machine, burst.base_ms + offset, out);
        true
    }

    fn finish(&mut self, machine: u32, nominal_ms: i64, out: &mut Reading) {
        let m = &mut self.machines[machine as usize];
        m.seq += 1;
        out.machine = machine;
        out.seq = m.seq;
        out.nominal_ms = nominal_ms;
        let jitter = self.jitter.as_ref().map_or(0.0, |j| j.sample(&mut m.rng));
        out.ts_ms = nominal_ms + jitter.round() as i64;
        for ((value, model), scale) in out.values.iter_mut().zip(&self.models).zip(&self.scales) {
            *value = round_to(model.clamp(*value), *scale);
        }
    }
}

fn new_machine(
    models: &[SensorModel],
    faults: &FaultModel,
    options: &FactoryOptions,
    interval_ms: i64,
    index: u32,
) -> Machine {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(machine_seed(options.seed, u64::from(index)));
    let phase_ms = rng.random_range(0..interval_ms);
    let sensors = models.iter().map(|m| m.initial_state(&mut rng)).collect();
    let faults = faults.machine_state(options.start_ms, &mut rng);
    Machine {
        rng,
        phase_ms,
        seq: 0,
        sensors,
        faults,
    }
}

fn build_layout(spec: &FactorySpec, faults: &FaultModel, count: u32) -> Result<Layout> {
    let pattern = IdPattern::parse(&spec.machines.id_pattern)
        .map_err(|e| crate::error::SimError::option("machines.id_pattern", e))?;
    let lines = &spec.machines.lines;
    let providers = &spec.machines.providers;
    let per_line = (count as usize).div_ceil(lines.len()).max(1);
    let machines = (0..count as usize)
        .map(|i| MachineMeta {
            id: pattern.render(i as u32 + 1),
            line: lines[(i / per_line).min(lines.len() - 1)].clone(),
            provider: providers[i % providers.len()].clone(),
        })
        .collect();
    let fields = spec
        .sensor_specs()
        .map(|s| FieldMeta {
            name: s.name.clone(),
            unit: s.unit.clone(),
            precision: Some(s.precision),
        })
        .collect();
    Ok(Layout {
        machines,
        fields,
        fault_kinds: faults.kinds.iter().map(|k| k.name.clone()).collect(),
    })
}

#[cfg(test)]
mod tests;
