//! The plant's alert endpoints: `GET /api/anomalies` (the latest alerts)
//! and `GET /api/anomalies/count` (how many, by machine and model), read
//! with DataFusion from the alert rows jobs write to the Parquet history
//! (by default the table `alerts` under `--history`; `--alerts-table`).
//!
//! An alert row has `machine_id`, `ts` and `model` (needed) and `score`,
//! `threshold` and `reason` (shown when present) — the columns
//! `jobs/anomaly_detection.sql` writes. Queries are built with DataFusion's
//! DataFrame API, never by pasting parameters into SQL, and run within the
//! server's query limits.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::prelude::{Expr, cast, col, lit};
use datafusion::scalar::ScalarValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::query::{QueryLimits, bounded, cut, json_rows, table_at};
use crate::error::{EngineError, Result};

/// Columns every alert row has.
const NEEDED: [&str; 3] = ["machine_id", "ts", "model"];
/// Columns shown when the table has them.
const OPTIONAL: [&str; 3] = ["score", "threshold", "reason"];
/// Alerts answered when the request does not say.
const DEFAULT_LIMIT: usize = 100;

/// The query string of `GET /api/anomalies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LatestParams {
    /// `1h`, `15m`, `2d` back from now, or an RFC 3339 time (default `1h`).
    since: Option<String>,
    /// Only this machine.
    machine: Option<String>,
    /// Only this model.
    model: Option<String>,
    /// At most this many alerts, newest first (default 100; never more than
    /// the server's query row limit).
    limit: Option<usize>,
}

/// The query string of `GET /api/anomalies/count`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CountParams {
    /// `1h`, `15m`, `2d` back from now, or an RFC 3339 time (default `1h`).
    range: Option<String>,
    /// Only this machine.
    machine: Option<String>,
}

/// The start of a time range: a duration back from `now` or an RFC 3339 time.
pub(super) fn parse_since(
    name: &str,
    text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    let text = text.unwrap_or("1h").trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let back = humantime::parse_duration(text).map_err(|e| {
        ApiError::bad_request(format!(
            "{name}={text:?} is neither a duration (like 1h, 15m, 2d) nor an RFC 3339 time: {e}"
        ))
    })?;
    chrono::Duration::from_std(back)
        .ok()
        .and_then(|back| now.checked_sub_signed(back))
        .ok_or_else(|| ApiError::bad_request(format!("{name}={text:?} reaches too far back")))
}

fn query_params<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

fn engine_error(error: &EngineError) -> ApiError {
    ApiError::from_engine(error, str::to_string)
}

/// The alert table as a DataFrame filtered to rows since `since` (and the
/// machine and model, when given); `None` while no job has written alerts.
async fn alerts_since(
    location: &str,
    memory: usize,
    since: DateTime<Utc>,
    machine: Option<String>,
    model: Option<String>,
) -> Result<Option<DataFrame>> {
    let Some(frame) = table_at(location, memory).await? else {
        return Ok(None);
    };
    let schema = frame.schema().clone();
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|c| schema.field_with_unqualified_name(c).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(EngineError::Internal(format!(
            "the alerts table at {location} has no column {}; alert rows need {}",
            missing.join(", "),
            NEEDED.join(", ")
        )));
    }
    let ts_type = schema
        .field_with_unqualified_name("ts")
        .map(|f| f.data_type().clone())
        .map_err(EngineError::datafusion("reading the alerts table"))?;
    let mut filter = col("ts").gt_eq(time_literal(since, &ts_type));
    // Hive partitions: read only the days that can hold matching rows.
    if schema.field_with_unqualified_name("date").is_ok() {
        let day = since.format("%Y-%m-%d").to_string();
        filter = filter.and(col("date").gt_eq(lit(day)));
    }
    if let Some(machine) = machine {
        filter = filter.and(col("machine_id").eq(lit(machine)));
    }
    if let Some(model) = model {
        filter = filter.and(col("model").eq(lit(model)));
    }
    let mut columns: Vec<&str> = NEEDED.to_vec();
    columns.extend(
        OPTIONAL
            .into_iter()
            .filter(|c| schema.field_with_unqualified_name(c).is_ok()),
    );
    let frame = frame
        .filter(filter)
        .and_then(|f| f.select_columns(&columns))
        .map_err(EngineError::datafusion("filtering the alerts"))?;
    Ok(Some(frame))
}

/// `at` as a literal of the time column's own type.
pub(super) fn time_literal(at: DateTime<Utc>, column_type: &DataType) -> Expr {
    let micros = ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into()));
    cast(lit(micros), column_type.clone())
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The newest alerts since `since`, at most `limit`.
pub async fn latest_alerts(
    location: &str,
    limits: QueryLimits,
    since: DateTime<Utc>,
    machine: Option<String>,
    model: Option<String>,
    limit: usize,
) -> Result<(Value, bool)> {
    let location = location.to_string();
    let work = async move {
        let Some(frame) = alerts_since(&location, limits.memory, since, machine, model).await?
        else {
            return Ok(Vec::new());
        };
        frame
            .sort(vec![
                col("ts").sort(false, false),
                col("machine_id").sort(true, false),
            ])
            .and_then(|f| f.limit(0, Some(limit.saturating_add(1))))
            .map_err(EngineError::datafusion("ordering the alerts"))?
            .collect()
            .await
            .map_err(EngineError::datafusion("reading the alerts"))
    };
    let batches = bounded("the alerts query", limits.timeout, work).await?;
    let (batches, truncated) = cut(batches, limit);
    Ok((json_rows(&batches)?, truncated))
}

/// Alerts since `since` counted by machine and model, most first.
pub async fn count_alerts(
    location: &str,
    limits: QueryLimits,
    since: DateTime<Utc>,
    machine: Option<String>,
) -> Result<(Value, bool)> {
    let location = location.to_string();
    let work = async move {
        let Some(frame) = alerts_since(&location, limits.memory, since, machine, None).await?
        else {
            return Ok(Vec::new());
        };
        let has_score = frame.schema().field_with_unqualified_name("score").is_ok();
        let mut aggregates = vec![count(lit(1)).alias("count"), max(col("ts")).alias("last")];
        if has_score {
            aggregates.push(max(col("score")).alias("max_score"));
        }
        frame
            .aggregate(vec![col("machine_id"), col("model")], aggregates)
            .and_then(|f| {
                f.sort(vec![
                    col("count").sort(false, false),
                    col("machine_id").sort(true, false),
                    col("model").sort(true, false),
                ])
            })
            .and_then(|f| f.limit(0, Some(limits.max_rows.saturating_add(1))))
            .map_err(EngineError::datafusion("counting the alerts"))?
            .collect()
            .await
            .map_err(EngineError::datafusion("counting the alerts"))
    };
    let batches = bounded("the alerts count", limits.timeout, work).await?;
    let (batches, truncated) = cut(batches, limits.max_rows);
    Ok((json_rows(&batches)?, truncated))
}

/// `GET /api/anomalies`.
pub(super) async fn latest(
    State(app): State<AppState>,
    params: Result<Query<LatestParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(params)?;
    let since = parse_since("since", params.since.as_deref(), Utc::now())?;
    let limit = match params.limit {
        Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(app.limits.max_rows),
        None => DEFAULT_LIMIT.min(app.limits.max_rows),
    };
    let (alerts, truncated) = latest_alerts(
        &app.plant.alerts,
        app.limits,
        since,
        params.machine,
        params.model,
        limit,
    )
    .await
    .map_err(|e| engine_error(&e))?;
    Ok(Json(json!({
        "since": rfc3339(since),
        "alerts": alerts,
        "truncated": truncated,
    })))
}

/// `GET /api/anomalies/count`.
pub(super) async fn counts(
    State(app): State<AppState>,
    params: Result<Query<CountParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(params)?;
    let since = parse_since("range", params.range.as_deref(), Utc::now())?;
    let (counts, truncated) = count_alerts(&app.plant.alerts, app.limits, since, params.machine)
        .await
        .map_err(|e| engine_error(&e))?;
    let total: u64 = counts
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["count"].as_u64()).sum())
        .unwrap_or_default();
    Ok(Json(json!({
        "since": rfc3339(since),
        "total": total,
        "counts": counts,
        "truncated": truncated,
    })))
}

#[cfg(test)]
pub(super) mod tests;
