//! `'connector' = 'simulator'`: the factory simulator in-process — the
//! embedded default that needs no broker. Readings are encoded in the table's
//! `'format'` and decoded like any other source, so the whole decode path runs.
//!
//! Options (all optional): `profile` (built-in name or TOML file), `machines`,
//! `count`, `duration`, `seed`, `start`, `interval`, `labels`, `fault-rate`,
//! `late-fraction`, `max-delay`, `rate`, `speed` (simulated seconds per wall
//! second), `partitions` (virtual partitions; machine `i` goes to `i mod n`).

use std::path::Path;

use chrono::DateTime;
use spindle_simulator::format::encoder;
use spindle_simulator::pacing::{Pacer, Pacing};
use spindle_simulator::profiles::built_in;
use spindle_simulator::record::Reading;
use spindle_simulator::run::open_stream;
use spindle_simulator::spec::FactorySpec;
use spindle_simulator::stream::{Disorder, Limits};
use spindle_simulator::{FactoryOptions, Format, SourceConfig};
use spindle_sql::ddl::Options;

use super::{BatchBuilder, SourceContext, SourceEvent};
use crate::error::EngineError;

/// Default simulated start, fixed so runs are reproducible.
const DEFAULT_START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Everything the simulator source needs, read from the table's options.
#[derive(Debug, Clone)]
pub struct SimulatorSourceConfig {
    source: SourceConfig,
    limits: Limits,
    disorder: Option<Disorder>,
    format: Format,
    labels: bool,
    pacing: Pacing,
    partitions: u32,
}

impl SimulatorSourceConfig {
    /// Pulls the simulator's options; `format` is the table's record format.
    pub fn from_options(options: &mut Options, format: Format) -> spindle_sql::Result<Self> {
        let location = options.table_location();
        let profile = options
            .pull_str("profile")
            .unwrap_or_else(|| "packing_line".into());
        let spec = load_profile(&profile).map_err(|m| options.error_at("profile", &m, location))?;
        let start_ms = options.pull_parsed("start", |v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.timestamp_millis())
                .map_err(|e| e.to_string())
        })?;
        let start_ms = start_ms.unwrap_or(DEFAULT_START_MS);
        let seed = options.pull_u64("seed")?.unwrap_or(1);
        let factory = FactoryOptions {
            seed,
            start_ms,
            machines: options.pull_u64("machines")?.map(|m| m as u32),
            interval_ms: options
                .pull_duration("interval")?
                .map(|d| d.as_millis() as i64),
            fault_rate: options.pull_parsed("fault-rate", parse_f64)?,
        };
        let limits = Limits {
            count: options.pull_u64("count")?,
            until_ms: options
                .pull_duration("duration")?
                .map(|d| start_ms + d.as_millis() as i64),
        };
        let late_fraction = options
            .pull_parsed("late-fraction", parse_f64)?
            .unwrap_or(0.0);
        let max_delay = options
            .pull_duration("max-delay")?
            .unwrap_or(std::time::Duration::from_secs(30));
        Ok(Self {
            source: SourceConfig::Factory(Box::new(spec), factory),
            limits,
            disorder: (late_fraction > 0.0).then_some(Disorder {
                fraction: late_fraction,
                max_delay_ms: max_delay.as_millis() as i64,
                seed,
            }),
            format,
            labels: options.pull_parsed("labels", parse_bool)?.unwrap_or(false),
            pacing: Pacing {
                rate: options.pull_parsed("rate", parse_f64)?,
                speed: options.pull_parsed("speed", parse_f64)?,
            },
            partitions: options
                .pull_u64("partitions")?
                .map_or(1, |p| p.max(1) as u32),
        })
    }
}

fn load_profile(name_or_path: &str) -> Result<FactorySpec, String> {
    if let Some(profile) = built_in(name_or_path) {
        return profile.map_err(|e| e.to_string());
    }
    FactorySpec::from_file(Path::new(name_or_path)).map_err(|e| e.to_string())
}

fn parse_f64(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| format!("{v:?} is not a non-negative number"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

/// The source thread: simulate, encode, batch, hand over.
pub fn run(config: SimulatorSourceConfig, cx: SourceContext) {
    let mut stream = match open_stream(&config.source, config.limits, config.disorder) {
        Ok(s) => s,
        Err(e) => {
            cx.send(SourceEvent::Failed(EngineError::Simulator(e)));
            return;
        }
    };
    cx.send(SourceEvent::Assigned(
        (0..config.partitions as i32).collect(),
        Default::default(),
    ));
    let mut encoder = encoder(config.format, stream.layout(), config.labels);
    let mut pacer = Pacer::new(config.pacing);
    let paced = config.pacing != Pacing::default();
    let mut reading = Reading::with_fields(stream.layout().fields.len());
    let mut offsets = vec![0i64; config.partitions as usize];
    let mut builder = BatchBuilder::new(cx.limits);
    let mut buf = Vec::with_capacity(512);
    let mut sent = 0u64;
    while !cx.stopped() && stream.next_into(&mut reading) {
        buf.clear();
        encoder.encode(&reading, &mut buf);
        let partition = (reading.machine % config.partitions) as usize;
        builder.push(partition as i32, offsets[partition], &buf);
        offsets[partition] += 1;
        sent += 1;
        if paced {
            pacer.after(sent, reading.ts_ms);
        }
        if builder.is_full() && !cx.send(SourceEvent::Batch(builder.take())) {
            return;
        }
    }
    if !builder.is_empty() && !cx.send(SourceEvent::Batch(builder.take())) {
        return;
    }
    if !cx.stopped() {
        cx.send(SourceEvent::CaughtUp);
    }
}
