//! `spindle simulate`: the factory sensor simulator (or a CSV replay) to
//! Kafka, a file or stdout. Every flag is documented in docs/simulator.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use spindle_simulator::output::KafkaOptions;
use spindle_simulator::pacing::Pacing;
use spindle_simulator::profiles::{DEFAULT_PROFILE, built_in};
use spindle_simulator::report::Summary;
use spindle_simulator::spec::FactorySpec;
use spindle_simulator::stream::{Disorder, Limits};
use spindle_simulator::{Destination, FactoryOptions, Format, SimulationConfig, SourceConfig};

/// Default simulated start when not running in real time: fixed, so that a
/// run without `--start` is reproducible too.
const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Factory profile (TOML); default: the built-in `packing_line`.
    #[arg(long, value_name = "FILE", env = "SPINDLE_PROFILE")]
    profile: Option<PathBuf>,
    /// Number of machines (overrides the profile).
    #[arg(long, value_name = "N")]
    machines: Option<u32>,
    /// Stop after N readings in total.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this much simulated time, e.g. `10m`.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Readings per second at most, or `max` (flat out, the default).
    #[arg(long, value_name = "R|max", default_value = "max")]
    rate: String,
    /// Pace simulated time to the wall clock (starts now unless --start).
    #[arg(long)]
    realtime: bool,
    /// Simulated seconds per wall second (implies pacing; for --replay).
    #[arg(long, value_name = "F")]
    speed: Option<f64>,
    /// Seed of every random stream: same seed, same bytes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Simulated start time (RFC 3339).
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Time between two readings of one machine (overrides the profile), e.g. `500ms`.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Add ground-truth labels `fault` and `fault_kind` to every record.
    #[arg(long)]
    labels: bool,
    /// Fault onsets per machine-hour (overrides the profile; 0 turns faults off).
    #[arg(long, value_name = "R")]
    fault_rate: Option<f64>,
    /// Write the injected faults (ground truth) as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    fault_log: Option<PathBuf>,
    /// Fraction of readings delayed (sent late, out of order), in [0, 1].
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    late_fraction: f64,
    /// Largest delay of a late reading, in simulated time.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = humantime::parse_duration)]
    max_delay: Duration,
    /// Record format.
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    format: Format,
    /// Write to FILE (`-` for stdout, the default without --brokers).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Produce to Kafka at these bootstrap servers.
    #[arg(long, value_name = "ADDR", env = "SPINDLE_BROKERS")]
    brokers: Option<String>,
    /// Kafka topic (created if missing).
    #[arg(
        long,
        value_name = "T",
        default_value = "factory.sensors",
        env = "SPINDLE_TOPIC"
    )]
    topic: String,
    /// Partitions when the topic is created.
    #[arg(long, value_name = "P", default_value_t = 8)]
    partitions: i32,
    /// Producer acks: all (idempotent), 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Producer compression: lz4, zstd, gzip, snappy or none.
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// Producer linger.ms.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    linger_ms: u32,
    /// Extra librdkafka producer property KEY=VALUE (repeatable), e.g. for SASL/TLS.
    #[arg(long = "producer-property", short = 'X', value_name = "KEY=VALUE")]
    producer_properties: Vec<String>,
    /// Replay this CSV instead of simulating.
    #[arg(long, value_name = "FILE.csv")]
    replay: Option<PathBuf>,
    /// The replay CSV's time column (default: ts, timestamp, time or datetime).
    #[arg(long, value_name = "NAME", requires = "replay")]
    time_column: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) fn run(args: SimulateArgs) -> Result<ExitCode> {
    let config = config(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let summary = spindle_simulator::simulate(&config, &stop)?;
    if let Some(path) = &args.fault_log {
        write_fault_log(path, &summary)?;
    }
    eprintln!("{}", summary.line());
    if summary.delivery.failed > 0 {
        bail!(
            "{} of {} readings were not delivered",
            summary.delivery.failed,
            summary.records
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn config(args: &SimulateArgs) -> Result<SimulationConfig> {
    let start_ms = start_ms(args)?;
    let source = match &args.replay {
        Some(path) => SourceConfig::Replay(path.clone(), args.time_column.clone()),
        None => SourceConfig::Factory(
            Box::new(load_profile(args)?),
            factory_options(args, start_ms),
        ),
    };
    if !(0.0..=1.0).contains(&args.late_fraction) {
        bail!(
            "--late-fraction must be in [0, 1], got {}",
            args.late_fraction
        );
    }
    Ok(SimulationConfig {
        source,
        limits: Limits {
            count: args.count,
            until_ms: args.duration.map(|d| start_ms + d.as_millis() as i64),
        },
        disorder: (args.late_fraction > 0.0).then_some(Disorder {
            fraction: args.late_fraction,
            max_delay_ms: args.max_delay.as_millis() as i64,
            seed: args.seed,
        }),
        format: args.format,
        labels: args.labels,
        pacing: pacing(args)?,
        destination: destination(args)?,
        progress: !args.quiet,
    })
}

fn load_profile(args: &SimulateArgs) -> Result<FactorySpec> {
    Ok(match &args.profile {
        Some(path) => FactorySpec::from_file(path)?,
        None => built_in(DEFAULT_PROFILE).context("the default profile is missing")??,
    })
}

fn factory_options(args: &SimulateArgs, start_ms: i64) -> FactoryOptions {
    FactoryOptions {
        seed: args.seed,
        start_ms,
        machines: args.machines,
        interval_ms: args.interval.map(|d| d.as_millis() as i64),
        fault_rate: args.fault_rate,
    }
}

fn start_ms(args: &SimulateArgs) -> Result<i64> {
    match (&args.start, args.realtime) {
        (Some(text), _) => Ok(DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--start {text:?} is not an RFC 3339 time"))?
            .timestamp_millis()),
        (None, true) => Ok(Utc::now().timestamp_millis()),
        (None, false) => Ok(DateTime::parse_from_rfc3339(DEFAULT_START)?.timestamp_millis()),
    }
}

fn pacing(args: &SimulateArgs) -> Result<Pacing> {
    let rate = match args.rate.as_str() {
        "max" => None,
        text => match text.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Some(r),
            _ => bail!("--rate must be a positive number or `max`, got {text:?}"),
        },
    };
    let speed = match (args.speed, args.realtime) {
        (Some(s), _) if !(s > 0.0 && s.is_finite()) => bail!("--speed must be positive, got {s}"),
        (Some(s), _) => Some(s),
        (None, true) => Some(1.0),
        (None, false) => None,
    };
    Ok(Pacing { rate, speed })
}

fn destination(args: &SimulateArgs) -> Result<Destination> {
    match (&args.brokers, &args.output) {
        (Some(_), Some(_)) => bail!("give either --brokers or --output, not both"),
        (Some(brokers), None) => Ok(Destination::Kafka(KafkaOptions {
            brokers: brokers.clone(),
            topic: args.topic.clone(),
            partitions: args.partitions,
            acks: args.acks.clone(),
            compression: args.compression.clone(),
            linger_ms: args.linger_ms,
            properties: parse_properties(&args.producer_properties)?,
        })),
        (None, Some(path)) if path.as_os_str() != "-" => Ok(Destination::File(path.clone())),
        (None, _) => Ok(Destination::Stdout),
    }
}

fn parse_properties(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--producer-property {p:?} is not KEY=VALUE"),
        })
        .collect()
}

fn write_fault_log(path: &PathBuf, summary: &Summary) -> Result<()> {
    let mut text = String::new();
    for event in &summary.faults {
        text.push_str(&serde_json::to_string(event)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
