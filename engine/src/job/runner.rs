//! The run loop: poll a source → decode → (per pipeline) stateless plan and
//! window operator → sinks; advance watermarks and close windows; flush
//! sinks periodically. With `until_idle`, stop once every source is caught up
//! and idle, closing every open window first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::max;
use arrow::datatypes::DataType;

use super::tally::{
    REPORT_INTERVAL, Tally, event_seconds, report_progress, sink_result, wall_clock,
    wall_clock_millis,
};
pub use super::tally::{RunOptions, RunSummary};
use super::{BadData, Job, checkpointing};
use crate::decode::RawBatch;
use crate::error::{EngineError, Result};
use crate::metrics::JobMetrics;
use crate::plan::Tagged;
use crate::sources::{SourceEvent, SourceHandle};

/// Runs `job` until `stop` is set, a source fails, or (with `until_idle`) the
/// input is exhausted.
pub async fn run(mut job: Job, options: RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    let mut handles = start_sources(&mut job)?;
    options.metrics.set_running(true);
    let mut result = run_loop(&mut job, &mut handles, &options, &stop).await;
    if result.is_ok() && job.checkpoints.is_some() {
        // Stopping takes a final checkpoint: a restart (perhaps of an
        // edited job) resumes exactly here.
        if let Err(error) = checkpoint_all(&mut job, &handles).await {
            result = Err(error);
        }
    }
    let closed = close_sinks(&mut job, &options.metrics).await;
    options.metrics.set_running(false);
    if result.is_ok() && closed.is_ok() && job.checkpoints.is_none() {
        commit_offsets(&mut job, &handles);
    }
    for handle in &mut handles {
        handle.stop();
    }
    let summary = result?;
    closed?;
    Ok(summary)
}

/// Checkpoints every partition of every source.
async fn checkpoint_all(job: &mut Job, handles: &[SourceHandle]) -> Result<()> {
    for (i, handle) in handles.iter().enumerate() {
        checkpointing::checkpoint(job, i, None, handle).await?;
    }
    Ok(())
}

/// Makes every sink durable, then commits what is done.
async fn commit_point(job: &mut Job, handles: &[SourceHandle], metrics: &JobMetrics) -> Result<()> {
    for (name, sink) in &mut job.sinks {
        sink_result(metrics, name, sink.commit().await)?;
    }
    commit_offsets(job, handles);
    Ok(())
}

/// Asks each source to commit the offsets whose rows no pipeline holds.
fn commit_offsets(job: &mut Job, handles: &[SourceHandle]) {
    for (source, handle) in job.sources.iter_mut().zip(handles) {
        let horizon = job
            .pipelines
            .iter()
            .filter(|p| p.source == source.name)
            .filter_map(|p| p.oldest_held())
            .min()
            .unwrap_or(i64::MAX);
        handle.commit(source.offsets.take_committable(horizon));
    }
}

fn start_sources(job: &mut Job) -> Result<Vec<SourceHandle>> {
    let store = job.checkpoints.clone();
    job.sources
        .iter_mut()
        .map(|s| {
            let starter = s
                .starter
                .take()
                .ok_or_else(|| EngineError::Internal(format!("source {} started twice", s.name)))?;
            starter(
                store
                    .as_ref()
                    .map(|store| checkpointing::lookup(store, &s.checkpoint_key)),
            )
        })
        .collect()
}

async fn run_loop(
    job: &mut Job,
    handles: &mut [SourceHandle],
    options: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let mut tally = Tally {
        summary: RunSummary::default(),
        metrics: &options.metrics,
    };
    let mut finished = vec![false; handles.len()];
    let mut last_flush = Instant::now();
    let mut last_commit = Instant::now();
    let mut last_report = Instant::now();
    let wait = Duration::from_millis(if handles.len() > 1 { 20 } else { 100 });
    while !stop.load(Ordering::Relaxed) {
        for (i, handle) in handles.iter_mut().enumerate() {
            match handle.next(wait).await {
                Some(SourceEvent::Batch(raws)) => process_batch(job, i, raws, &mut tally).await?,
                Some(SourceEvent::Assigned(partitions, restored)) => {
                    checkpointing::assigned(job, i, &partitions, restored).await?;
                }
                Some(SourceEvent::Revoking(partitions, done)) => {
                    checkpointing::checkpoint(job, i, Some(&partitions), handle).await?;
                    for &p in &partitions {
                        checkpointing::forget(job, i, p);
                    }
                    tracing::info!(source = %handle.name, ?partitions, "handed over revoked partitions");
                    let _ = done.send(());
                }
                Some(SourceEvent::Backlog(lags)) => {
                    let backlog: Vec<i32> = lags
                        .iter()
                        .filter(|l| l.backlogged())
                        .map(|l| l.partition)
                        .collect();
                    job.sources[i].watermark.set_backlogged(&backlog);
                    options.metrics.set_partitions(&job.sources[i].name, &lags);
                }
                Some(SourceEvent::CaughtUp) if options.until_idle => {
                    finished[i] = true;
                    job.sources[i].watermark.finish();
                }
                Some(SourceEvent::CaughtUp) | None => {}
                Some(SourceEvent::Failed(error)) => return Err(error),
            }
        }
        advance(job, &mut tally).await?;
        if job.checkpoints.is_some() {
            if last_commit.elapsed() >= job.settings.checkpoint_interval {
                let started = Instant::now();
                checkpoint_all(job, handles).await?;
                options.metrics.observe_checkpoint(started.elapsed());
                last_commit = Instant::now();
                last_flush = last_commit;
            } else if last_flush.elapsed() >= job.settings.flush_interval {
                flush_sinks(job, &options.metrics).await?;
                last_flush = Instant::now();
            }
        } else if last_commit.elapsed() >= job.settings.commit_interval {
            commit_point(job, handles, &options.metrics).await?;
            last_commit = Instant::now();
            last_flush = last_commit;
        } else if last_flush.elapsed() >= job.settings.flush_interval {
            flush_sinks(job, &options.metrics).await?;
            last_flush = Instant::now();
        }
        if last_report.elapsed() >= REPORT_INTERVAL {
            report_progress(job, &options.metrics);
            last_report = Instant::now();
        }
        if options.until_idle && finished.iter().all(|f| *f) {
            break;
        }
    }
    report_progress(job, &options.metrics);
    Ok(tally.summary)
}

async fn process_batch(
    job: &mut Job,
    source: usize,
    raws: Vec<RawBatch>,
    tally: &mut Tally<'_>,
) -> Result<()> {
    let started = Instant::now();
    tally.summary.batches += 1;
    let name = job.sources[source].name.clone();
    let mut newest_seconds: Option<f64> = None;
    for raw in raws {
        tally.input(&name, &raw);
        let (raw, oversized) = job.sources[source].checks.screen(raw);
        handle_bad(job, source, &oversized, tally)?;
        let mut decoded = job.sources[source].decoder.decode(&raw);
        job.sources[source]
            .checks
            .check(&raw, &mut decoded, wall_clock_millis())
            .map_err(|e| EngineError::Internal(format!("checking records: {e}")))?;
        handle_bad(job, source, &decoded.bad, tally)?;
        let batch = decoded.batch;
        let newest = match job.sources[source].event_time {
            Some((column, _)) if batch.num_rows() > 0 => max_event_time(&batch, column)?,
            _ => None,
        };
        if let Some(last) = raw.records.last() {
            checkpointing::processed(job, source, raw.partition, last.offset + 1, newest);
        }
        if let (Some(latest), Some((_, unit))) = (newest, job.sources[source].event_time) {
            let seconds = event_seconds(latest, unit);
            newest_seconds = Some(newest_seconds.map_or(seconds, |s| s.max(seconds)));
        }
        if batch.num_rows() == 0 {
            continue;
        }
        let now = Instant::now();
        // A restored partition's windows closed up to its checkpointed
        // watermark: rows for them stay late even if the job's watermark,
        // rebuilt from fewer or older partitions, is behind it.
        let watermark = job.sources[source]
            .watermark
            .watermark(now)
            .max(checkpointing::closed_through(job, source, raw.partition));
        for index in 0..job.pipelines.len() {
            if job.pipelines[index].source != name {
                continue;
            }
            let produced = job.pipelines[index]
                .process(raw.partition, &batch, watermark)
                .await
                .map_err(EngineError::datafusion(format!(
                    "pipeline into {}",
                    job.pipelines[index].sink
                )))?;
            if let Some(late) = &produced.late {
                let sink = job.pipelines[index].sink.clone();
                tally.late(&sink, late.num_rows());
                let origin = checkpointing::origin(job, source, raw.partition);
                job.late
                    .write_rows(origin.as_ref(), &with_pipeline(late, &sink)?)?;
            }
            let sink = job.pipelines[index].sink.clone();
            let rows = produced
                .rows
                .into_iter()
                .map(|b| (raw.partition, b))
                .collect();
            write_rows(job, &sink, source, rows, tally).await?;
        }
        if let Some(latest) = newest {
            job.sources[source]
                .watermark
                .observe(raw.partition, latest, now);
        }
    }
    if let Some(newest) = newest_seconds {
        tally.metrics.observe_latency(&name, wall_clock() - newest);
    }
    tally.metrics.observe_batch(started.elapsed());
    Ok(())
}

/// Late rows with the pipeline (its sink's name) they were late for.
fn with_pipeline(late: &RecordBatch, sink: &str) -> Result<RecordBatch> {
    let mut fields: Vec<arrow::datatypes::FieldRef> =
        late.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        "pipeline",
        DataType::Utf8,
        false,
    )));
    let mut columns = late.columns().to_vec();
    columns.push(Arc::new(arrow::array::StringArray::from(
        vec![sink; late.num_rows()],
    )));
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| EngineError::Internal(format!("late rows: {e}")))
}

fn handle_bad(
    job: &mut Job,
    source: usize,
    bad: &[crate::decode::BadRecord],
    tally: &mut Tally<'_>,
) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    let name = job.sources[source].name.clone();
    tally.bad(&name, bad.len());
    match job.sources[source].bad_data {
        BadData::DeadLetter => {
            let origin = bad
                .first()
                .and_then(|b| checkpointing::origin(job, source, b.partition));
            job.dead_letter.write_bad(&name, origin.as_ref(), bad)
        }
        BadData::Drop => Ok(()),
        BadData::Fail => {
            let first = &bad[0];
            Err(EngineError::BadRecord {
                source_name: name,
                partition: first.partition,
                offset: first.offset,
                message: first.error.clone(),
            })
        }
    }
}

fn max_event_time(batch: &RecordBatch, column: usize) -> Result<Option<i64>> {
    let times = crate::window::event_times(batch, column)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(max(&times))
}

/// Closes every window the watermarks have passed and writes the results.
async fn advance(job: &mut Job, tally: &mut Tally<'_>) -> Result<()> {
    let now = Instant::now();
    for index in 0..job.pipelines.len() {
        if !job.pipelines[index].is_windowed() {
            continue;
        }
        let source = job
            .sources
            .iter()
            .position(|s| s.name == job.pipelines[index].source)
            .ok_or_else(|| EngineError::Internal("pipeline without source".into()))?;
        let watermark = job.sources[source].watermark.watermark(now);
        checkpointing::closed(job, source, watermark);
        let rows =
            job.pipelines[index]
                .advance(watermark)
                .await
                .map_err(EngineError::datafusion(format!(
                    "closing windows into {}",
                    job.pipelines[index].sink
                )))?;
        let sink = job.pipelines[index].sink.clone();
        write_rows(job, &sink, source, rows, tally).await?;
    }
    Ok(())
}

/// Writes rows computed from partitions of source `source` (each
/// checkpointed partition's rows go with its epoch).
async fn write_rows(
    job: &mut Job,
    sink: &str,
    source: usize,
    rows: Vec<Tagged>,
    tally: &mut Tally<'_>,
) -> Result<()> {
    let origins: Vec<_> = rows
        .iter()
        .map(|(partition, _)| checkpointing::origin(job, source, *partition))
        .collect();
    let Some((_, target)) = job.sinks.iter_mut().find(|(name, _)| name == sink) else {
        return Err(EngineError::Internal(format!("no sink {sink}")));
    };
    for ((_, batch), origin) in rows.into_iter().zip(origins) {
        tally.rows_out(sink, batch.num_rows());
        let written = match origin {
            Some(origin) => target.write_from(&origin, batch).await,
            None => target.write(batch).await,
        };
        sink_result(tally.metrics, sink, written)?;
    }
    Ok(())
}

async fn flush_sinks(job: &mut Job, metrics: &JobMetrics) -> Result<()> {
    for (name, sink) in &mut job.sinks {
        sink_result(metrics, name, sink.flush().await)?;
    }
    Ok(())
}

async fn close_sinks(job: &mut Job, metrics: &JobMetrics) -> Result<()> {
    for (name, sink) in &mut job.sinks {
        sink_result(metrics, name, sink.close().await)?;
    }
    Ok(())
}
