//! Bearer-token authentication. With a token configured, every request but
//! `GET /healthz`, `GET /metrics` and the dashboard's page shell (`/` and its
//! assets, which hold no data) needs `Authorization: Bearer <token>`;
//! anything else gets a bare 401 (no hint whether the header was missing,
//! malformed or wrong).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths anyone may read.
const OPEN: [&str; 2] = ["/healthz", "/metrics"];

/// The configured token, if any.
#[derive(Clone)]
pub struct Token(pub Option<Arc<str>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(***)"
        } else {
            "Token(none)"
        })
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware.
pub(super) async fn require_token(
    State(token): State<Token>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &token.0 else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if OPEN.contains(&path) || super::dashboard::is_shell(path) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response(),
    }
}

/// Reads the token: `SPINDLE_TOKEN`, else the first line of `file`; an
/// empty value means no token.
pub fn load_token(env: Option<String>, file: Option<&std::path::Path>) -> crate::Result<Token> {
    let raw = match (env, file) {
        (Some(value), _) => value,
        (None, Some(path)) => std::fs::read_to_string(path).map_err(crate::EngineError::io(
            format!("reading the token file {}", path.display()),
        ))?,
        (None, None) => String::new(),
    };
    let token = raw.lines().next().unwrap_or_default().trim().to_string();
    Ok(Token((!token.is_empty()).then(|| Arc::from(token))))
}
