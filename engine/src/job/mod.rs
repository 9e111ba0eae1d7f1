//! A job: its SQL text checked, planned and wired to sources, pipelines and
//! sinks ([`Job::build`]), then run micro-batch by micro-batch
//! ([`runner`]). Everything that can be wrong with the text or the options
//! is reported before anything starts.

#[cfg(test)]
mod checkpoint_tests;
pub mod checkpointing;
pub mod offsets;
pub mod runner;
mod settings;
mod tally;
pub mod upgrade;
#[cfg(test)]
mod upgrade_tests;

use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::TimeUnit;
use spindle_sql::ddl::{Options, TableDef};
use spindle_sql::{JobPlan, plan_job};

use crate::decode::guard::{Limit, RecordChecks};
use crate::decode::{self, Decoder, Format};
use crate::error::{EngineError, Result};
use crate::plan::{CompiledPipeline, time_column};
use crate::side_output::SideOutput;
use crate::sinks::{self, Sink, SinkContext};
use crate::sources::{self, SourceStarter};
use crate::watermark::WatermarkTracker;
pub use settings::JobSettings;

/// What to do with a record that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadData {
    /// Write it to the dead-letter output and count it (default).
    DeadLetter,
    /// Stop the job with an error naming the record.
    Fail,
    /// Count it and drop it.
    Drop,
}

/// A source table wired to its decoder and watermark.
pub struct SourceRuntime {
    /// Table name.
    pub name: String,
    /// Starts the source thread.
    pub starter: Option<SourceStarter>,
    /// Raw records → rows.
    pub decoder: Box<dyn Decoder>,
    /// Bad-record policy.
    pub bad_data: BadData,
    /// Checks around decoding (size, event time, non-finite readings).
    pub checks: crate::decode::guard::RecordChecks,
    /// Event-time column index and unit, when the table declares a watermark.
    pub event_time: Option<(usize, TimeUnit)>,
    /// Watermarks of this source's partitions.
    pub watermark: WatermarkTracker,
    /// Processed offsets not yet committed.
    pub offsets: offsets::OffsetLedger,
    /// Whether the source can start at given offsets (Kafka): only such
    /// sources are checkpointed.
    pub seekable: bool,
    /// What the source's checkpoints are filed under: the table, and for
    /// Kafka the topic and group (state of another topic or group never
    /// applies).
    pub checkpoint_key: String,
    /// The partitions this worker owns, when the job is checkpointed.
    pub tasks: Option<std::collections::BTreeMap<i32, checkpointing::Task>>,
}

impl std::fmt::Debug for SourceRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRuntime")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where a job writes its side outputs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Job name (for logs and file names).
    pub name: String,
    /// Directory for `dead-letter.jsonl` and `late.jsonl`.
    pub side_outputs: PathBuf,
}

/// A job ready to run.
#[derive(Debug)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// Sources by table.
    pub sources: Vec<SourceRuntime>,
    /// Pipelines in job order.
    pub pipelines: Vec<CompiledPipeline>,
    /// Sinks by table name.
    pub sinks: Vec<(String, Box<dyn Sink>)>,
    /// Settings from `SET`.
    pub settings: JobSettings,
    /// Undecodable records.
    pub dead_letter: SideOutput,
    /// Rows that missed their window.
    pub late: SideOutput,
    /// Where checkpoints go (`None`: not checkpointed).
    pub checkpoints: Option<crate::checkpoint::CheckpointStore>,
}

/// Options every source understands besides its connector's.
const SOURCE_OPTIONS: [&str; 11] = [
    "connector",
    "format",
    "bad_data",
    "record.max-bytes",
    "event-time.max-future",
    "event-time.max-past",
    "non-finite",
    "watermark.idle-timeout",
    "batch.max-records",
    "batch.max-bytes",
    "batch.max-wait",
];

impl Job {
    /// Parses, plans and wires `text` (from `file`, for messages).
    pub async fn build(text: &str, file: &str, options: &JobOptions) -> Result<Self> {
        Self::build_inner(text, options)
            .await
            .map_err(|e| e.in_file(file))
    }

    async fn build_inner(text: &str, options: &JobOptions) -> Result<Self> {
        Self::from_parsed(spindle_sql::Job::parse(text)?, options).await
    }

    /// Plans and wires an already parsed job (whose options may have been
    /// changed, as `spindle demo` does).
    pub async fn from_parsed(parsed: spindle_sql::Job, options: &JobOptions) -> Result<Self> {
        let ctx = spindle_sql::context::new_session();
        let plan = plan_job(&parsed, &ctx).await?;
        let settings = JobSettings::from_plan(&plan)?;
        let mut sources = plan
            .sources
            .iter()
            .map(|t| source_runtime(t, &settings))
            .collect::<Result<Vec<_>>>()?;
        let checkpoints = checkpoint_store(&settings, &sources, options)?;
        if checkpoints.is_some() {
            for source in &mut sources {
                source.tasks = Some(Default::default());
            }
        }
        let dead_letter = SideOutput::new(options.side_outputs.join("dead-letter.jsonl"));
        let context = SinkContext {
            dead_letter: dead_letter.clone(),
            job: options.name.clone(),
        };
        let sinks = plan
            .sinks
            .iter()
            .map(|t| open_sink(t, &context).map(|s| (t.name.clone(), s)))
            .collect::<Result<Vec<_>>>()?;
        let pipelines = compile_pipelines(&plan, &settings, &ctx)
            .await
            .map_err(|e| relocate(e, &parsed))?;
        Ok(Self {
            name: options.name.clone(),
            sources,
            pipelines,
            sinks,
            settings,
            dead_letter,
            late: SideOutput::new(options.side_outputs.join("late.jsonl")),
            checkpoints,
        })
    }
}

/// The job's checkpoint store: on when the interval is not zero and every
/// source can seek (Kafka); the simulator replays from its seed instead.
fn checkpoint_store(
    settings: &JobSettings,
    sources: &[SourceRuntime],
    options: &JobOptions,
) -> Result<Option<crate::checkpoint::CheckpointStore>> {
    if settings.checkpoint_interval.is_zero()
        || sources.is_empty()
        || sources.iter().any(|s| !s.seekable)
    {
        return Ok(None);
    }
    let default = options.side_outputs.join("checkpoints");
    let root = match &settings.checkpoint_path {
        Some(path) => path.clone(),
        None => default.to_string_lossy().into_owned(),
    };
    Ok(Some(crate::checkpoint::CheckpointStore::open(
        &root,
        &options.name,
        settings.checkpoint_keep,
    )?))
}

async fn compile_pipelines(
    plan: &JobPlan,
    settings: &JobSettings,
    ctx: &datafusion::prelude::SessionContext,
) -> Result<Vec<CompiledPipeline>> {
    let mut compiled = Vec::new();
    for pipeline in &plan.pipelines {
        let source = plan
            .sources
            .iter()
            .find(|s| s.name == pipeline.source)
            .ok_or_else(|| {
                EngineError::Internal(format!("source {} not planned", pipeline.source))
            })?;
        let lateness = settings.allowed_lateness.as_millis() as i64;
        let c = CompiledPipeline::compile(pipeline, source, lateness, ctx)
            .await
            .map_err(|e| {
                EngineError::from(spindle_sql::SqlError::Plan {
                    message: e.strip_backtrace().to_string(),
                    location: pipeline.location,
                })
            })?;
        compiled.push(c);
    }
    Ok(compiled)
}

/// Moves a located error from substituted text to the user's text.
fn relocate(error: EngineError, parsed: &spindle_sql::Job) -> EngineError {
    match error {
        EngineError::Job { file, source } => EngineError::Job {
            file,
            source: parsed.text.relocate(source),
        },
        other => other,
    }
}

fn source_runtime(table: &TableDef, settings: &JobSettings) -> Result<SourceRuntime> {
    let mut options = table.options.clone();
    let connector = options.pull_required("connector")?;
    let format = options
        .pull_parsed("format", Format::parse)?
        .unwrap_or(Format::Json);
    let bad_data = options
        .pull_parsed("bad_data", |v| match v {
            "dlq" => Ok(BadData::DeadLetter),
            "fail" => Ok(BadData::Fail),
            "drop" => Ok(BadData::Drop),
            other => Err(format!(
                "unknown policy {other:?}; expected dlq, fail or drop"
            )),
        })?
        .unwrap_or(BadData::DeadLetter);
    let idle_timeout = options
        .pull_duration("watermark.idle-timeout")?
        .unwrap_or(settings.idle_timeout);
    let mut checks = record_checks(&mut options)?;
    let checkpoint_key = match (options.peek("topic"), options.peek("properties.group.id")) {
        (Some(topic), Some(group)) => format!("{}/{topic}@{group}", table.name),
        _ => table.name.clone(),
    };
    let starter = sources::prepare(&connector, format, table, &mut options)?;
    finish_options(options, &connector)?;
    let event_time = match &table.watermark {
        Some(w) => Some(
            time_column(table, &w.column)
                .map_err(EngineError::datafusion(format!("source {}", table.name)))?,
        ),
        None => None,
    };
    let delay = match (&table.watermark, event_time) {
        (Some(w), Some((_, unit))) => {
            crate::window::assign::millis_to_unit(w.delay.as_millis() as i64, unit)
        }
        _ => 0,
    };
    let time_name = table.watermark.as_ref().map(|w| w.column.as_str());
    checks.event_time = event_time
        .zip(time_name)
        .map(|((index, unit), name)| (index, name.to_owned(), unit));
    Ok(SourceRuntime {
        name: table.name.clone(),
        starter: Some(starter),
        decoder: decode::decoder(format, std::sync::Arc::new(table.schema()), time_name),
        bad_data,
        checks,
        event_time,
        watermark: WatermarkTracker::new(delay, idle_timeout),
        offsets: offsets::OffsetLedger::default(),
        seekable: connector == "kafka",
        checkpoint_key,
        tasks: None,
    })
}

/// The record checks a source's options ask for (see decode::guard).
fn record_checks(options: &mut Options) -> Result<RecordChecks> {
    let defaults = RecordChecks::default();
    Ok(RecordChecks {
        max_bytes: options
            .pull_bytes("record.max-bytes")?
            .map_or(defaults.max_bytes, |b| b as usize),
        event_time: None,
        max_future: options
            .pull_parsed("event-time.max-future", Limit::parse)?
            .unwrap_or(defaults.max_future),
        max_past: options
            .pull_parsed("event-time.max-past", Limit::parse)?
            .unwrap_or(defaults.max_past),
        reject_non_finite: options
            .pull_parsed("non-finite", |v| match v {
                "dlq" => Ok(true),
                "keep" => Ok(false),
                other => Err(format!("unknown policy {other:?}; expected dlq or keep")),
            })?
            .unwrap_or(defaults.reject_non_finite),
    })
}

/// Checks a table's options as a job would (a source connector's options as
/// a source, a sink connector's as a sink) without starting anything.
pub fn validate_table(table: &TableDef) -> Result<()> {
    let connector = table
        .options
        .peek("connector")
        .unwrap_or_default()
        .to_string();
    if sources::sources().contains(&connector.as_str()) {
        source_runtime(table, &JobSettings::default()).map(|_| ())
    } else {
        // Nothing is written while checking: the dead-letter file is never opened.
        let context = SinkContext {
            dead_letter: SideOutput::new(PathBuf::from("dead-letter.jsonl")),
            job: String::new(),
        };
        open_sink(table, &context).map(|_| ())
    }
}

fn open_sink(table: &TableDef, context: &SinkContext) -> Result<Box<dyn Sink>> {
    let mut options = table.options.clone();
    let connector = options.pull_required("connector")?;
    let sink = sinks::open(&connector, table, &mut options, context)?;
    match sinks::options(&connector) {
        Some(known) => options.finish(known)?,
        None => finish_options(options, &connector)?,
    }
    Ok(sink)
}

/// Fails on an option nobody used, suggesting the closest known one.
fn finish_options(options: Options, connector: &str) -> Result<()> {
    let mut known: Vec<&str> = SOURCE_OPTIONS.to_vec();
    known.extend(connector_options(connector));
    Ok(options.finish(&known)?)
}

/// Every option a connector reads (for "did you mean" hints).
fn connector_options(connector: &str) -> &'static [&'static str] {
    match connector {
        "kafka" => &[
            "topic",
            "scan.startup.mode",
            "properties.bootstrap.servers",
            "properties.group.id",
        ],
        "simulator" => &[
            "profile",
            "machines",
            "count",
            "duration",
            "seed",
            "start",
            "interval",
            "labels",
            "fault-rate",
            "late-fraction",
            "max-delay",
            "rate",
            "speed",
            "partitions",
        ],
        "parquet" => &[
            "path",
            "partition_by",
            "partitioning",
            "partition.time-column",
            "compression.level",
            "rolling.max-bytes",
            "rolling.interval",
        ],
        "influxdb" => crate::sinks::influxdb::OPTIONS,
        _ => &[],
    }
}

/// Default idle timeout of a source partition.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
