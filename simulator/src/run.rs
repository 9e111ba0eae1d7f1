//! The driver: stream → encoder → output, with pacing, progress and a summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::Result;
use crate::factory::{Factory, FactoryOptions};
use crate::format::{Format, encoder};
use crate::output::{FileOutput, KafkaOptions, KafkaOutput, Output, StdoutOutput, ensure_topic};
use crate::pacing::{Pacer, Pacing};
use crate::record::Reading;
use crate::replay::Replay;
use crate::report::{Summary, progress};
use crate::spec::FactorySpec;
use crate::stream::{Disorder, Limits, ReadingStream, Source};

/// Where readings come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Simulate a factory.
    Factory(Box<FactorySpec>, FactoryOptions),
    /// Replay a CSV, optionally naming its time column.
    Replay(PathBuf, Option<String>),
}

/// Where readings go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, made visible when the run ends.
    File(PathBuf),
    /// A Kafka topic (created if missing).
    Kafka(KafkaOptions),
}

/// A whole simulation run.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// The source.
    pub source: SourceConfig,
    /// When to stop.
    pub limits: Limits,
    /// Late and out-of-order readings to inject.
    pub disorder: Option<Disorder>,
    /// Record encoding.
    pub format: Format,
    /// Add ground-truth fault labels.
    pub labels: bool,
    /// How fast.
    pub pacing: Pacing,
    /// The destination.
    pub destination: Destination,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
}

/// Builds the reading stream of a source (also used by the engine's
/// in-process source).
pub fn open_stream(
    source: &SourceConfig,
    limits: Limits,
    disorder: Option<Disorder>,
) -> Result<ReadingStream> {
    let source = match source {
        SourceConfig::Factory(spec, options) => {
            Source::Factory(Box::new(Factory::new(spec, options)?))
        }
        SourceConfig::Replay(path, time_column) => {
            Source::Replay(Replay::load(path, time_column.as_deref())?)
        }
    };
    Ok(ReadingStream::new(source, limits, disorder))
}

fn open_output(destination: &Destination) -> Result<Box<dyn Output>> {
    Ok(match destination {
        Destination::Stdout => Box::new(StdoutOutput::default()),
        Destination::File(path) => Box::new(FileOutput::create(path)?),
        Destination::Kafka(options) => {
            ensure_topic(options)?;
            Box::new(KafkaOutput::connect(options)?)
        }
    })
}

/// Runs a simulation until its limits, the end of a replay, or `stop`.
///
/// All input (profile, CSV) is validated before the output is opened, so bad
/// input never leaves a half-written destination.
pub fn simulate(config: &SimulationConfig, stop: &AtomicBool) -> Result<Summary> {
    let mut stream = open_stream(&config.source, config.limits, config.disorder)?;
    let mut encoder = encoder(config.format, stream.layout(), config.labels);
    let mut output = open_output(&config.destination)?;
    let bar = progress(config.limits.count, config.progress);
    let mut pacer = Pacer::new(config.pacing);
    let paced = config.pacing != Pacing::default();
    let started = Instant::now();
    let mut reading = Reading::with_fields(stream.layout().fields.len());
    let mut buf = Vec::with_capacity(1024);
    let (mut records, mut bytes) = (0u64, 0u64);
    while stream.next_into(&mut reading) {
        buf.clear();
        encoder.encode(&reading, &mut buf);
        let key = &stream.layout().machines[reading.machine as usize].id;
        output.send(key, &buf, reading.ts_ms)?;
        records += 1;
        bytes += buf.len() as u64;
        if paced {
            pacer.after(records, reading.ts_ms);
        }
        if records % 4096 == 0 {
            bar.set_position(records);
        }
        // Paced runs are slow, so look at the stop flag every reading.
        if (paced || records % 4096 == 0) && stop.load(Ordering::Relaxed) {
            break;
        }
    }
    bar.finish_and_clear();
    let delivery = output.finish()?;
    Ok(Summary {
        records,
        bytes,
        elapsed: started.elapsed(),
        delayed: stream.delayed(),
        delivery,
        faults: match stream.source() {
            Source::Factory(f) => f.fault_log().to_vec(),
            Source::Replay(_) => Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests;
