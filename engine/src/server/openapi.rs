//! `GET /api/openapi.json`: the hand-written OpenAPI 3 document
//! (`openapi.json` next to this file). A test checks that it lists exactly
//! the routes of [`super::routes`].

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`.
pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
