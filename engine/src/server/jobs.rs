//! The job routes: validate, submit, list, show, stop, restart, delete.
//! Each maps one request onto a [`JobManager`](super::manager::JobManager) call.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use super::manager::{JobView, Submission, Validated};

/// A JSON body, or a 400 naming what is wrong with it (413 when too large).
pub(super) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("request body is not what this endpoint takes: {e}"))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    sql: String,
}

/// `POST /api/jobs/validate`.
pub(super) async fn validate(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Validated>, ApiError> {
    let request: ValidateRequest = json_body(body)?;
    Ok(Json(app.manager.validate(&request.sql).await?))
}

/// `POST /api/jobs`.
pub(super) async fn submit(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let submission: Submission = json_body(body)?;
    Ok((
        StatusCode::CREATED,
        Json(app.manager.submit(submission).await?),
    ))
}

/// `GET /api/jobs`.
pub(super) async fn list(State(app): State<AppState>) -> Json<Vec<JobView>> {
    Json(app.manager.list())
}

/// `GET /api/jobs/{id}`.
pub(super) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(app.manager.get(&id)?))
}

/// `POST /api/jobs/{id}/stop`.
pub(super) async fn stop(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(app.manager.stop(&id).await?))
}

/// `POST /api/jobs/{id}/restart`.
pub(super) async fn restart(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(app.manager.restart(&id).await?))
}

/// `DELETE /api/jobs/{id}`.
pub(super) async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.manager.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
