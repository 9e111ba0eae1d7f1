//! `spindle run JOB.sql`: run a job in the foreground.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use spindle_engine::job::runner::{RunOptions, RunSummary, run};
use spindle_engine::job::{Job, JobOptions};
use spindle_engine::metrics::{JobMetrics, Metrics};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The job file.
    job: PathBuf,
    /// Stop once every source is caught up and idle, after closing every
    /// open window (for replays and tests).
    #[arg(long)]
    until_idle: bool,
    /// Directory for the dead-letter and late-row outputs
    /// (default: data/side-outputs/<job name>).
    #[arg(long, value_name = "DIR", env = "SPINDLE_SIDE_OUTPUTS")]
    side_outputs: Option<PathBuf>,
    /// Serve Prometheus metrics of this job at http://ADDR/metrics while it
    /// runs (e.g. 127.0.0.1:9480; port 0 picks a free one, logged).
    #[arg(long, value_name = "ADDR", env = "SPINDLE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

pub(crate) fn execute(args: RunArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let name = job_name(&args.job);
    let options = JobOptions {
        side_outputs: args
            .side_outputs
            .clone()
            .unwrap_or_else(|| Path::new("data/side-outputs").join(&name)),
        name,
    };
    let runtime = super::runtime()?;
    let summary = runtime.block_on(async {
        let metrics = match args.metrics_listen {
            Some(address) => serve_metrics(address, &options.name).await?,
            None => JobMetrics::default(),
        };
        let run = RunOptions {
            until_idle: args.until_idle,
            metrics,
        };
        run_job(&text, &args.job.display().to_string(), &options, run).await
    })?;
    eprintln!("{}", summary_line(&summary.0, summary.1));
    Ok(ExitCode::SUCCESS)
}

/// Builds and runs a job until Ctrl-C (or idle); returns its counters and seconds.
pub(crate) async fn run_job(
    text: &str,
    file: &str,
    options: &JobOptions,
    run_options: RunOptions,
) -> Result<(RunSummary, f64)> {
    let job = Job::build(text, file, options).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let started = Instant::now();
    tracing::info!(job = %options.name, "running");
    let summary = run(job, run_options, stop).await?;
    Ok((summary, started.elapsed().as_secs_f64()))
}

/// Serves `/metrics` on `address` for the rest of the process; returns the
/// job's handle on that registry.
async fn serve_metrics(address: SocketAddr, job: &str) -> Result<JobMetrics> {
    let metrics = Arc::new(Metrics::new()?);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} for /metrics"))?;
    let bound = listener.local_addr()?;
    tracing::info!("metrics at http://{bound}/metrics");
    let served = Arc::clone(&metrics);
    tokio::spawn(async move {
        if let Err(e) = spindle_engine::server::serve_metrics(listener, served).await {
            tracing::warn!("metrics endpoint stopped: {e}");
        }
    });
    Ok(metrics.job(job))
}

/// One summary line for people and scripts alike.
pub(crate) fn summary_line(s: &RunSummary, seconds: f64) -> String {
    format!(
        "run: records_in={} bad={} late={} rows_out={} batches={} seconds={seconds:.3} rate={:.0}/s",
        s.records_in,
        s.bad,
        s.late,
        s.rows_out,
        s.batches,
        s.records_in as f64 / seconds.max(1e-9)
    )
}

fn job_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned())
}
