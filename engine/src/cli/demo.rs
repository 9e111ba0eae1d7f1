//! `spindle demo`: the reference job on the embedded default. The in-process
//! simulator replaces the Kafka source of `jobs/factory_features.sql`; the
//! features go to Parquet under `./data`; at the end a query over that
//! history shows what was written.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use spindle_engine::job::runner::{RunOptions, run};
use spindle_engine::job::{Job, JobOptions};

use super::query::{OutputFormat, query, write_batches};
use super::run::summary_line;

/// The reference job, shipped inside the binary.
const FEATURES_JOB: &str = include_str!("../../../jobs/factory_features.sql");

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Wall-clock time to run.
    #[arg(long, value_name = "D", default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Simulated seconds per wall second.
    #[arg(long, value_name = "F", default_value_t = 60.0)]
    speed: f64,
    /// Machines in the simulated factory.
    #[arg(long, value_name = "N", default_value_t = 100)]
    machines: u32,
    /// Where history and side outputs go.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data: String,
}

pub(crate) fn execute(args: DemoArgs) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(demo(&args))?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: &DemoArgs) -> Result<()> {
    let history = format!("{}/history", args.data);
    let env = |name: &str| match name {
        "HISTORY_PATH" => Some(history.clone()),
        other => std::env::var(other).ok(),
    };
    let mut parsed = spindle_sql::Job::parse_with_env(FEATURES_JOB, env)?;
    let (machines, speed) = (args.machines.to_string(), args.speed.to_string());
    let simulator = [
        ("connector", "simulator"),
        ("machines", machines.as_str()),
        ("speed", speed.as_str()),
        ("format", "json"),
    ];
    parsed.replace_options("sensors", &simulator)?;
    let options = JobOptions {
        name: "demo".into(),
        side_outputs: format!("{}/side-outputs/demo", args.data).into(),
    };
    let job = Job::from_parsed(parsed, &options)
        .await
        .context("building the demo job")?;
    eprintln!(
        "demo: {} machines at {}× real time for {:?} → {history}/features (Ctrl-C stops early)",
        args.machines, args.speed, args.duration
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let timer = Arc::clone(&stop);
    let duration = args.duration;
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        timer.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let summary = run(job, RunOptions::default(), stop).await?;
    eprintln!(
        "{}",
        summary_line(&summary, started.elapsed().as_secs_f64())
    );
    show_history(&history).await
}

async fn show_history(history: &str) -> Result<()> {
    let sql = "SELECT machine_id, count(*) AS windows, sum(readings) AS readings, \
               round(avg(temperature_avg), 2) AS temperature, round(max(vibration_max), 3) AS peak_vibration \
               FROM features GROUP BY machine_id ORDER BY peak_vibration DESC LIMIT 5";
    eprintln!("\nmachines with the highest vibration peaks (spindle query over {history}):");
    let batches = query(sql, history).await?;
    write_batches(&mut std::io::stdout().lock(), &batches, OutputFormat::Table)
}
