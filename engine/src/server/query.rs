//! `POST /api/query`: SQL over the Parquet history, answered as JSON, CSV or
//! an Arrow IPC stream by `Accept`. Only one `SELECT` (or `WITH … SELECT`)
//! runs: DDL, `COPY`, `CREATE EXTERNAL TABLE`, `SET` and DML are refused
//! before planning (and DataFusion's own `SQLOptions` refuse them again), URL
//! tables stay off, so user SQL reads only the tables under the history
//! root. Each query gets a memory pool of its own, a row limit and a
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::error::{EngineError, Result};
use crate::history::register_history;

/// The content type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// What one query may use.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// At most this many rows come back (more are cut; the answer says so).
    pub max_rows: usize,
    /// A query still running after this is cancelled.
    pub timeout: Duration,
    /// DataFusion's memory pool for the query, in bytes.
    pub memory: usize,
}

/// The body of `POST /api/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    /// Fewer rows than the server's limit.
    #[serde(default)]
    limit: Option<usize>,
    /// A shorter timeout than the server's, in milliseconds.
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// A query's rows.
#[derive(Debug)]
pub struct QueryResult {
    /// Their schema (also when there are none).
    pub schema: SchemaRef,
    /// The rows, at most the limit.
    pub batches: Vec<RecordBatch>,
    /// Whether rows beyond the limit were cut.
    pub truncated: bool,
}

/// Refuses anything but a single query.
fn check_select(sql: &str) -> Result<()> {
    let statements =
        DFParser::parse_sql(sql).map_err(EngineError::datafusion("parsing the query"))?;
    let refused = |what: &str| {
        Err(EngineError::Refused(format!(
            "only SELECT queries run over the history; {what} is refused"
        )))
    };
    match statements.len() {
        0 => return refused("an empty text"),
        1 => {}
        _ => return refused("more than one statement"),
    }
    match statements.front() {
        Some(Statement::Statement(s)) if matches!(**s, SqlStatement::Query(_)) => Ok(()),
        Some(Statement::CreateExternalTable(_)) => refused("CREATE EXTERNAL TABLE"),
        Some(Statement::CopyTo(_)) => refused("COPY"),
        Some(Statement::Statement(s)) => {
            let text = s.to_string();
            let keyword = text.split_whitespace().next().unwrap_or("this statement");
            refused(&keyword.to_uppercase())
        }
        Some(_) => refused("this statement"),
        None => refused("an empty text"),
    }
}

/// A runtime for one query: a memory pool of `memory` bytes of its own, and
/// the process's shared file caches.
fn memory_pool(memory: usize) -> Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_memory_limit(memory, 1.0)
        .with_cache_manager(crate::history::session::shared_file_caches())
        .build_arc()
        .map_err(EngineError::datafusion("creating the query's memory pool"))
}

/// A history-query session (all cores, see `history::session`) with a
/// memory pool of its own and no tables.
fn limited_session(memory: usize) -> Result<SessionContext> {
    Ok(crate::history::query_session(Some(memory_pool(memory)?)))
}

/// The jobs' session (one partition) with a memory pool of its own: the
/// plant endpoints' small reads of one table keep their row order and sums.
fn limited_job_session(memory: usize) -> Result<SessionContext> {
    let base = spindle_sql::context::new_session();
    let state = SessionStateBuilder::new_from_existing(base.state())
        .with_runtime_env(memory_pool(memory)?)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The Parquet table at `location` (a directory or `s3://…`) in a session
/// of its own with `memory` bytes; `None` while it has no files.
pub(super) async fn table_at(location: &str, memory: usize) -> Result<Option<DataFrame>> {
    let ctx = limited_job_session(memory)?;
    if !crate::history::register_location(&ctx, "t", location).await? {
        return Ok(None);
    }
    let frame = ctx
        .table("t")
        .await
        .map_err(EngineError::datafusion(format!(
            "reading the table at {location}"
        )))?;
    Ok(Some(frame))
}

/// A session over the history under `root` with a memory pool of its own.
async fn session(root: &str, memory: usize) -> Result<SessionContext> {
    let ctx = limited_session(memory)?;
    register_history(&ctx, root).await?;
    Ok(ctx)
}

/// Runs `work` as a task of its own, so the timeout fires even while it
/// keeps a worker thread busy; on timeout the task is aborted.
pub(super) async fn bounded<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let mut task = tokio::spawn(work);
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(joined) => {
            joined.map_err(|e| EngineError::Internal(format!("{what}'s task failed: {e}")))?
        }
        Err(_) => {
            task.abort();
            Err(EngineError::Timeout {
                what: what.into(),
                after: timeout,
            })
        }
    }
}

/// Runs one `SELECT` over the history under `root` within `limits`.
pub async fn run_query(root: &str, sql: &str, limits: QueryLimits) -> Result<QueryResult> {
    check_select(sql)?;
    let work = collect(root.to_string(), sql.to_string(), limits);
    let (schema, batches) = bounded("the query", limits.timeout, work).await?;
    let (batches, truncated) = cut(batches, limits.max_rows);
    Ok(QueryResult {
        schema,
        batches,
        truncated,
    })
}

/// Plans and runs `sql`, fetching at most one row more than the limit.
async fn collect(
    root: String,
    sql: String,
    limits: QueryLimits,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let ctx = session(&root, limits.memory).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(&sql, options)
        .await
        .map_err(EngineError::datafusion("planning the query"))?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame
        .limit(0, Some(limits.max_rows.saturating_add(1)))
        .map_err(EngineError::datafusion("limiting the query"))?
        .collect()
        .await
        .map_err(EngineError::datafusion("running the query"))?;
    Ok((schema, batches))
}

/// The first `max_rows` rows; whether any were cut.
pub(super) fn cut(batches: Vec<RecordBatch>, max_rows: usize) -> (Vec<RecordBatch>, bool) {
    let mut left = max_rows;
    let mut kept = Vec::new();
    let mut truncated = false;
    for batch in batches {
        if batch.num_rows() > left {
            truncated = true;
            if left > 0 {
                kept.push(batch.slice(0, left));
            }
            left = 0;
        } else {
            left -= batch.num_rows();
            kept.push(batch);
        }
    }
    (kept, truncated)
}

/// Output formats by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Arrow,
}

fn format(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains(ARROW_STREAM) {
        Format::Arrow
    } else if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Json
    }
}

fn encode(result: &QueryResult, format: Format) -> Result<(Vec<u8>, &'static str)> {
    let failed = |what: &'static str| {
        move |e: arrow::error::ArrowError| EngineError::Internal(format!("encoding {what}: {e}"))
    };
    let mut out = Vec::new();
    match format {
        Format::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)
                .map_err(failed("Arrow IPC"))?;
            for batch in &result.batches {
                writer.write(batch).map_err(failed("Arrow IPC"))?;
            }
            writer.finish().map_err(failed("Arrow IPC"))?;
            drop(writer);
            Ok((out, ARROW_STREAM))
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for batch in &result.batches {
                writer.write(batch).map_err(failed("CSV"))?;
            }
            drop(writer);
            Ok((out, "text/csv; charset=utf-8"))
        }
        Format::Json => {
            let rows = json_rows(&result.batches)?;
            let columns: Vec<serde_json::Value> = result
                .schema
                .fields()
                .iter()
                .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            let body = serde_json::json!({
                "columns": columns,
                "rows": rows,
                "truncated": result.truncated,
            });
            out = serde_json::to_vec(&body)
                .map_err(|e| EngineError::Internal(format!("encoding JSON: {e}")))?;
            Ok((out, "application/json"))
        }
    }
}

/// The rows of `batches` as a JSON array of objects (column → value; nulls
/// left out).
pub(super) fn json_rows(batches: &[RecordBatch]) -> Result<serde_json::Value> {
    let failed = |e: arrow::error::ArrowError| EngineError::Internal(format!("encoding JSON: {e}"));
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    for batch in batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    let rows = writer.into_inner();
    if rows.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&rows).map_err(|e| EngineError::Internal(format!("encoding JSON: {e}")))
}

/// `GET /api/tables`: every table under the history root with its columns
/// (name and Arrow type), by name.
pub(super) async fn tables(State(app): State<AppState>) -> Result<Response, ApiError> {
    let (root, memory) = (app.history.to_string(), app.limits.memory);
    let work = async move {
        let ctx = limited_session(memory)?;
        let mut names = register_history(&ctx, &root).await?;
        names.sort();
        let mut tables = Vec::new();
        for name in names {
            let provider = ctx
                .table_provider(name.as_str())
                .await
                .map_err(EngineError::datafusion(format!("reading table {name}")))?;
            let columns: Vec<serde_json::Value> = provider
                .schema()
                .fields()
                .iter()
                .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            tables.push(serde_json::json!({"name": name, "columns": columns}));
        }
        Ok(serde_json::Value::Array(tables))
    };
    let tables = bounded("listing the tables", app.limits.timeout, work)
        .await
        .map_err(|e| ApiError::from_engine(&e, str::to_string))?;
    Ok(axum::Json(tables).into_response())
}

/// `POST /api/query`.
pub(super) async fn query(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: QueryRequest = super::jobs::json_body(body)?;
    let mut limits = app.limits;
    if let Some(limit) = request.limit {
        limits.max_rows = limits.max_rows.min(limit);
    }
    if let Some(ms) = request.timeout_ms {
        limits.timeout = limits.timeout.min(Duration::from_millis(ms));
    }
    let result = run_query(&app.history, &request.sql, limits)
        .await
        .map_err(|e| ApiError::from_engine(&e, str::to_string))?;
    let (body, content_type) =
        encode(&result, format(&headers)).map_err(|e| ApiError::from_engine(&e, str::to_string))?;
    let truncated = HeaderValue::from_static(if result.truncated { "true" } else { "false" });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::HeaderName::from_static("x-spindle-truncated"),
                truncated,
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests;
