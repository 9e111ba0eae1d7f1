//! The `spindle` command. Errors become `anyhow` here and in `cli/` only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Spindle: a stream processor for factory sensor data, on Arrow and DataFusion.
#[derive(Debug, Parser)]
#[command(name = "spindle", version, about, long_about = None)]
struct Cli {
    /// Directory of trained models for this process: `anomaly_model('NAME',
    /// …)` in jobs and queries reads DIR/NAME.json, `spindle train` writes
    /// there (default ./models). Give it before the command.
    #[arg(long, value_name = "DIR", env = "SPINDLE_MODELS")]
    models: Option<std::path::PathBuf>,
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
    /// Fit an anomaly model (Isolation Forest, T², PCA) on the Parquet history.
    Train(Box<cli::train::TrainArgs>),
    /// Compare recent history with a model's training distributions.
    Drift(cli::drift::DriftArgs),
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
    if let Some(dir) = cli.models {
        spindle_anomaly::trained::store::set_default_directory(dir);
    }
    let result = match cli.command {
        Command::Simulate(args) => cli::simulate::run(*args),
        Command::Run(args) => cli::run::execute(args),
        Command::Demo(args) => cli::demo::execute(args),
        Command::Query(args) => cli::query::execute(args),
        Command::Eval(args) => cli::eval::execute(args),
        Command::Train(args) => cli::train::execute(*args),
        Command::Drift(args) => cli::drift::execute(args),
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
