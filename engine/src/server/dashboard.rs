//! The web dashboard at `/`: a page shell and its script and style sheet
//! (`dashboard/`, compiled into the binary; no CDN, no build step). The
//! shell holds no data and is open; every data call it makes goes to the
//! API with the token the user types (see docs/server.md).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page.
const INDEX: &str = include_str!("dashboard/index.html");

/// Its assets by file name: content and type.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        include_str!("dashboard/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "charts.js",
        include_str!("dashboard/charts.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "app.css",
        include_str!("dashboard/app.css"),
        "text/css; charset=utf-8",
    ),
];

/// Scripts and styles only from this server; no inline code, no framing.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub(super) async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8")
}

/// `GET /assets/{file}`.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, body, content_type)) => page(body, content_type),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Whether `path` is part of the dashboard's open shell.
pub(super) fn is_shell(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix("/assets/")
            .is_some_and(|file| ASSETS.iter().any(|(name, _, _)| *name == file))
}
