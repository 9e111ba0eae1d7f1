//! `spindle query "SQL"`: SQL over the Parquet history, read here or (with
//! `--server`) by a running `spindle server`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use clap::{Args, ValueEnum};
use spindle_engine::history::{query_session, register_history};

/// `--history`: where the Parquet history is (shared by `query` and `server`).
#[derive(Debug, Clone, Args)]
pub(crate) struct HistoryArg {
    /// History root: a directory or s3://bucket/prefix.
    #[arg(
        id = "history",
        long = "history",
        value_name = "PATH",
        env = "SPINDLE_HISTORY",
        default_value = "data/history"
    )]
    pub(crate) root: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// An aligned table.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The SQL; tables are the directories under the history root.
    sql: String,
    #[command(flatten)]
    history: HistoryArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Ask this `spindle server` (its history) instead of reading files here.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// With --server: file whose first line is the API token (SPINDLE_TOKEN wins).
    #[arg(long, value_name = "FILE", requires = "server")]
    token_file: Option<std::path::PathBuf>,
}

pub(crate) fn execute(args: QueryArgs) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    let batches = match &args.server {
        Some(server) => {
            let server = super::client::ServerArgs {
                server: server.clone(),
                token_file: args.token_file.clone(),
            };
            runtime.block_on(query_server(&args.sql, &server))?
        }
        None => runtime.block_on(query(&args.sql, &args.history.root))?,
    };
    let mut out = std::io::stdout().lock();
    write_batches(&mut out, &batches, args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `sql` over the history under `root`.
pub(crate) async fn query(sql: &str, root: &str) -> Result<Vec<RecordBatch>> {
    let ctx = query_session(None);
    let tables = register_history(&ctx, root).await?;
    if tables.is_empty() {
        bail!("no history tables under {root} (each table is a directory of Parquet files)");
    }
    let frame = ctx
        .sql(sql)
        .await
        .with_context(|| format!("planning query over {}", tables.join(", ")))?;
    Ok(frame.collect().await?)
}

/// Runs `sql` on a server, fetching the rows as an Arrow IPC stream.
async fn query_server(sql: &str, server: &super::client::ServerArgs) -> Result<Vec<RecordBatch>> {
    let client = super::client::Client::new(server)?;
    let body = serde_json::json!({ "sql": sql });
    let bytes = client
        .send(
            reqwest::Method::POST,
            "/api/query",
            Some(&body),
            spindle_engine::server::query::ARROW_STREAM,
            "query",
        )
        .await?;
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .context("reading the server's Arrow stream")?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Writes batches in a format.
pub(crate) fn write_batches(
    out: &mut impl Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    match format {
        OutputFormat::Table => writeln!(out, "{}", pretty_format_batches(batches)?)?,
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow_json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}
