//! `spindle server`: the job service (see docs/server.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use spindle_engine::server::query::QueryLimits;
use spindle_engine::server::{PlantConfig, Server, ServerConfig, auth};

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(
        long,
        value_name = "ADDR",
        env = "SPINDLE_LISTEN",
        default_value = "127.0.0.1:8480"
    )]
    listen: SocketAddr,
    /// Where submitted jobs (jobs/<id>.json) and their side outputs are kept.
    #[arg(
        long,
        value_name = "DIR",
        env = "SPINDLE_STATE_DIR",
        default_value = "data/server"
    )]
    state_dir: PathBuf,
    #[command(flatten)]
    history: super::query::HistoryArg,
    /// File whose first line is the API token (the SPINDLE_TOKEN environment
    /// variable wins). Without either, the API is open: bind 127.0.0.1 only.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Largest request body (bytes, or with KiB/MiB).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    body_limit: usize,
    /// Most rows one history query returns (more are cut, and the answer says so).
    #[arg(long, value_name = "ROWS", default_value_t = 10_000)]
    query_max_rows: usize,
    /// A history query running longer is cancelled.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    query_timeout: Duration,
    /// Memory pool of one history query (bytes, or with KiB/MiB/GiB).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_size)]
    query_memory: usize,
    /// The alert rows /api/anomalies reads: a table name under --history, or
    /// a directory or s3:// URL.
    #[arg(
        long,
        value_name = "NAME|PATH",
        env = "SPINDLE_ALERTS_TABLE",
        default_value = "alerts"
    )]
    alerts_table: String,
    /// The windowed features the built-in `gaussian` model of /api/predict
    /// fits from: a table name under --history, or a directory or s3:// URL.
    #[arg(
        long,
        value_name = "NAME|PATH",
        env = "SPINDLE_FEATURES_TABLE",
        default_value = "features"
    )]
    features_table: String,
}

/// `123`, `64KiB`, `1MiB`, `2GiB`.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1048576, 64KiB, 1MiB, 2GiB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub(crate) fn execute(args: ServerArgs) -> Result<ExitCode> {
    let token = auth::load_token(
        std::env::var("SPINDLE_TOKEN").ok(),
        args.token_file.as_deref(),
    )?;
    if token.0.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve an open API on {}: set SPINDLE_TOKEN or --token-file, or listen on 127.0.0.1",
            args.listen
        );
    }
    let config = ServerConfig {
        listen: args.listen,
        state_dir: args.state_dir,
        history: args.history.root,
        token,
        body_limit: args.body_limit,
        query: QueryLimits {
            max_rows: args.query_max_rows,
            timeout: args.query_timeout,
            memory: args.query_memory,
        },
        plant: PlantConfig {
            alerts: args.alerts_table,
            features: args.features_table,
            // `spindle --models DIR` (SPINDLE_MODELS, default ./models).
            models: Some(spindle_anomaly::trained::store::default_directory()),
        },
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        let address = server.local_addr()?;
        // The last stdout line is the address (tests and scripts read it).
        println!("listening on http://{address}");
        tracing::info!("spindle server on http://{address}");
        server.run(shutdown_signal()).await
    })?;
    tracing::info!("spindle server stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert!(parse_size("1MB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
