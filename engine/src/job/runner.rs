//! The run loop: poll a source → decode → (per pipeline) stateless plan and
//! window operator → sinks; advance watermarks and close windows; flush
//! sinks periodically. With `until_idle`, stop once every source is caught up
//! and idle, closing every open window first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::compute::{cast, max};
use arrow::datatypes::DataType;

use super::{BadData, Job};
use crate::decode::RawBatch;
use crate::error::{EngineError, Result};
use crate::sources::{SourceEvent, SourceHandle};

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records read from sources.
    pub records_in: u64,
    /// Records that could not be decoded.
    pub bad: u64,
    /// (Row, window) pairs that arrived after their window closed.
    pub late: u64,
    /// Rows written to sinks.
    pub rows_out: u64,
    /// Micro-batches processed.
    pub batches: u64,
}

/// How a run ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop when every source is caught up and idle, flushing all windows.
    pub until_idle: bool,
}

/// Runs `job` until `stop` is set, a source fails, or (with `until_idle`) the
/// input is exhausted.
pub async fn run(mut job: Job, options: RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    let mut handles = start_sources(&mut job)?;
    let result = run_loop(&mut job, &mut handles, &options, &stop).await;
    let closed = close_sinks(&mut job).await;
    if result.is_ok() && closed.is_ok() {
        commit_offsets(&mut job, &handles);
    }
    for handle in &mut handles {
        handle.stop();
    }
    let summary = result?;
    closed?;
    Ok(summary)
}

/// Makes every sink durable, then commits what is done.
async fn commit_point(job: &mut Job, handles: &[SourceHandle]) -> Result<()> {
    for (_, sink) in &mut job.sinks {
        sink.commit().await?;
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
    job.sources
        .iter_mut()
        .map(|s| {
            let starter = s
                .starter
                .take()
                .ok_or_else(|| EngineError::Internal(format!("source {} started twice", s.name)))?;
            starter()
        })
        .collect()
}

async fn run_loop(
    job: &mut Job,
    handles: &mut [SourceHandle],
    options: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let mut summary = RunSummary::default();
    let mut finished = vec![false; handles.len()];
    let mut last_flush = Instant::now();
    let mut last_commit = Instant::now();
    let wait = Duration::from_millis(if handles.len() > 1 { 20 } else { 100 });
    while !stop.load(Ordering::Relaxed) {
        for (i, handle) in handles.iter_mut().enumerate() {
            match handle.next(wait).await {
                Some(SourceEvent::Batch(raws)) => process_batch(job, i, raws, &mut summary).await?,
                Some(SourceEvent::Assigned(partitions)) => {
                    for p in partitions {
                        job.sources[i].watermark.assign(p, Instant::now());
                    }
                }
                Some(SourceEvent::CaughtUp) if options.until_idle => {
                    finished[i] = true;
                    job.sources[i].watermark.finish();
                }
                Some(SourceEvent::CaughtUp) | None => {}
                Some(SourceEvent::Failed(error)) => return Err(error),
            }
        }
        advance(job, &mut summary).await?;
        if last_commit.elapsed() >= job.settings.commit_interval {
            commit_point(job, handles).await?;
            last_commit = Instant::now();
            last_flush = last_commit;
        } else if last_flush.elapsed() >= job.settings.flush_interval {
            flush_sinks(job).await?;
            last_flush = Instant::now();
        }
        if options.until_idle && finished.iter().all(|f| *f) {
            break;
        }
    }
    Ok(summary)
}

async fn process_batch(
    job: &mut Job,
    source: usize,
    raws: Vec<RawBatch>,
    summary: &mut RunSummary,
) -> Result<()> {
    summary.batches += 1;
    for raw in raws {
        summary.records_in += raw.len() as u64;
        let decoded = job.sources[source].decoder.decode(&raw);
        handle_bad(job, source, &decoded.bad, summary)?;
        let batch = decoded.batch;
        let newest = match job.sources[source].event_time {
            Some((column, _)) if batch.num_rows() > 0 => max_event_time(&batch, column)?,
            _ => None,
        };
        if let Some(last) = raw.records.last() {
            job.sources[source]
                .offsets
                .record(raw.partition, last.offset + 1, newest);
        }
        if batch.num_rows() == 0 {
            continue;
        }
        let now = Instant::now();
        let watermark = job.sources[source].watermark.watermark(now);
        let name = job.sources[source].name.clone();
        for index in 0..job.pipelines.len() {
            if job.pipelines[index].source != name {
                continue;
            }
            let produced = job.pipelines[index]
                .process(&batch, watermark)
                .await
                .map_err(EngineError::datafusion(format!(
                    "pipeline into {}",
                    job.pipelines[index].sink
                )))?;
            if let Some(late) = &produced.late {
                summary.late += late.num_rows() as u64;
                let sink = job.pipelines[index].sink.clone();
                job.late.write_rows(&with_pipeline(late, &sink)?)?;
            }
            let sink = job.pipelines[index].sink.clone();
            write_rows(job, &sink, produced.rows, summary).await?;
        }
        if let Some(latest) = newest {
            job.sources[source]
                .watermark
                .observe(raw.partition, latest, now);
        }
    }
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
    summary: &mut RunSummary,
) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    summary.bad += bad.len() as u64;
    let name = job.sources[source].name.clone();
    match job.sources[source].bad_data {
        BadData::DeadLetter => job.dead_letter.write_bad(&name, bad),
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
    let ints = cast(batch.column(column), &DataType::Int64)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(ints.as_any().downcast_ref::<Int64Array>().and_then(max))
}

/// Closes every window the watermarks have passed and writes the results.
async fn advance(job: &mut Job, summary: &mut RunSummary) -> Result<()> {
    let now = Instant::now();
    for index in 0..job.pipelines.len() {
        if !job.pipelines[index].is_windowed() {
            continue;
        }
        let source = job
            .sources
            .iter_mut()
            .find(|s| s.name == job.pipelines[index].source)
            .ok_or_else(|| EngineError::Internal("pipeline without source".into()))?;
        let watermark = source.watermark.watermark(now);
        let rows =
            job.pipelines[index]
                .advance(watermark)
                .await
                .map_err(EngineError::datafusion(format!(
                    "closing windows into {}",
                    job.pipelines[index].sink
                )))?;
        let sink = job.pipelines[index].sink.clone();
        write_rows(job, &sink, rows, summary).await?;
    }
    Ok(())
}

async fn write_rows(
    job: &mut Job,
    sink: &str,
    rows: Vec<RecordBatch>,
    summary: &mut RunSummary,
) -> Result<()> {
    let Some((_, target)) = job.sinks.iter_mut().find(|(name, _)| name == sink) else {
        return Err(EngineError::Internal(format!("no sink {sink}")));
    };
    for batch in rows {
        summary.rows_out += batch.num_rows() as u64;
        target.write(batch).await?;
    }
    Ok(())
}

async fn flush_sinks(job: &mut Job) -> Result<()> {
    for (_, sink) in &mut job.sinks {
        sink.flush().await?;
    }
    Ok(())
}

async fn close_sinks(job: &mut Job) -> Result<()> {
    for (_, sink) in &mut job.sinks {
        sink.close().await?;
    }
    Ok(())
}
