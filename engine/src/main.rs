//! The `spindle` command. Errors become `anyhow` here and in `cli/` only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Spindle: a stream processor for factory sensor data, on Arrow and DataFusion.
#[derive(Debug, Parser)]
#[command(name = "spindle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a factory's sensors (or replay a CSV) to Kafka, a file or stdout.
    Simulate(Box<cli::simulate::SimulateArgs>),
    /// Run a SQL job in the foreground.
    Run(cli::run::RunArgs),
    /// The main job on the embedded simulator: features to Parquet under ./data.
    Demo(cli::demo::DemoArgs),
    /// SQL over the Parquet history.
    Query(cli::query::QueryArgs),
    /// Measure anomaly detectors against labelled readings.
    Eval(cli::eval::EvalArgs),
    /// The job service: REST API, history queries and /metrics.
    Server(cli::server::ServerArgs),
    /// Submit a SQL job to a running server.
    Submit(cli::submit::SubmitArgs),
    /// List, show, stop, restart or delete a server's jobs.
    Jobs(cli::jobs::JobsArgs),
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => cli::simulate::run(*args),
        Command::Run(args) => cli::run::execute(args),
        Command::Demo(args) => cli::demo::execute(args),
        Command::Query(args) => cli::query::execute(args),
        Command::Eval(args) => cli::eval::execute(args),
        Command::Server(args) => cli::server::execute(args),
        Command::Submit(args) => cli::submit::execute(args),
        Command::Jobs(args) => cli::jobs::execute(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `SPINDLE_LOG` sets the filter (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPINDLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
