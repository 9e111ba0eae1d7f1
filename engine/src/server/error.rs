//! The one place errors become HTTP answers: a status and a JSON body
//! `{"error": message, "errors": [{"line", "column", "message"}]}` (`errors`
//! only for a job's text, located in the user's SQL).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{EngineError, ErrorKind};

/// One located problem in a job's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqlProblem {
    /// 1-based line in the text as submitted (before `${VAR}` substitution).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, without the location prefix.
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong (secrets already masked).
    pub message: String,
    /// Located problems in a job's text.
    pub problems: Vec<SqlProblem>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "<[SqlProblem]>::is_empty")]
    errors: &'a [SqlProblem],
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// 404 for an unknown job id.
    pub fn no_job(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no job with id {id:?}"))
    }

    /// 400 for a body that is not what the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// An engine error, with every secret in `mask` replaced (see
    /// [`super::secrets::Secrets`]): a job's text error is 422 with its
    /// location, other user errors 400, the outside world 502, ours 500.
    pub fn from_engine(error: &EngineError, mask: impl Fn(&str) -> String) -> Self {
        let message = mask(&error.to_string());
        let problems = match error {
            EngineError::Job { source, .. } => vec![SqlProblem {
                line: source.location().line,
                column: source.location().column,
                message: mask(&source.message()),
            }],
            _ => Vec::new(),
        };
        let status = match (error, error.kind()) {
            (EngineError::Job { .. }, _) => StatusCode::UNPROCESSABLE_ENTITY,
            (EngineError::Timeout { .. }, _) => StatusCode::GATEWAY_TIMEOUT,
            (_, ErrorKind::User) => StatusCode::BAD_REQUEST,
            (_, ErrorKind::External) => StatusCode::BAD_GATEWAY,
            (_, ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            message,
            problems,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            errors: &self.problems,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}
