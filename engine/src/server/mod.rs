//! `spindle server`: the job service. An axum router over a
//! [`JobManager`](manager::JobManager) (jobs persisted in the state
//! directory, resumed on start), history queries, `/metrics` and
//! `/healthz`, behind an optional bearer token and a body size limit.
//!
//! One file per concern: [`jobs`], [`query`], [`anomalies`] and [`predict`]
//! (routes), `dashboard` (the web page at `/`), [`health`]
//! (`/healthz`, `/metrics`), [`auth`] (the token), [`manager`] (job
//! lifecycle), [`store`] (persistence), [`secrets`] (masking substituted
//! values), [`openapi`] (the document), [`error`] (errors → HTTP answers).
//! Only this module knows HTTP.

pub mod anomalies;
pub mod auth;
mod dashboard;
pub mod error;
pub mod health;
mod jobs;
pub mod manager;
pub mod openapi;
pub mod predict;
pub mod query;
pub mod secrets;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use crate::error::{EngineError, Result};
use crate::metrics::Metrics;
use auth::Token;
use manager::JobManager;
use query::QueryLimits;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where jobs and their side outputs are kept.
    pub state_dir: PathBuf,
    /// History root for `POST /api/query` (a directory or `s3://…`).
    pub history: String,
    /// The API token, if any.
    pub token: Token,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Limits of one history query.
    pub query: QueryLimits,
    /// Where the plant endpoints find alerts, features and models.
    pub plant: PlantConfig,
}

/// Where the plant endpoints (`/api/anomalies*`, `/api/predict`) read.
#[derive(Debug, Clone)]
pub struct PlantConfig {
    /// The alerts table: a name under the history root, or a path or `s3://` URL.
    pub alerts: String,
    /// The windowed features table the built-in `gaussian` model fits from
    /// (a name under the history root, or a path or URL).
    pub features: String,
    /// The folder of model files (`<name>.json`), if any.
    pub models: Option<PathBuf>,
}

/// The plant endpoints' state.
#[derive(Debug)]
pub struct Plant {
    /// Where the alerts table is (a directory or `s3://…`).
    alerts: String,
    /// The models `/api/predict` can use.
    models: predict::ModelRegistry,
}

impl Plant {
    /// Resolves `config`'s table names against the history `root`.
    pub fn new(root: &str, config: &PlantConfig) -> Self {
        let features = crate::history::table_location(root, &config.features);
        Self {
            alerts: crate::history::table_location(root, &config.alerts),
            models: predict::ModelRegistry::new(&features, config.models.clone()),
        }
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    manager: Arc<JobManager>,
    metrics: Arc<Metrics>,
    history: Arc<str>,
    limits: QueryLimits,
    plant: Arc<Plant>,
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(app: &AppState) -> Self {
        Arc::clone(&app.metrics)
    }
}

/// Every route: method, path (as in the OpenAPI document), handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/", get(dashboard::index)),
        (Method::GET, "/assets/{file}", get(dashboard::asset)),
        (Method::GET, "/healthz", get(health::healthz)),
        (Method::GET, "/metrics", get(health::metrics)),
        (Method::GET, "/api/openapi.json", get(openapi::document)),
        (Method::POST, "/api/jobs/validate", post(jobs::validate)),
        (Method::POST, "/api/jobs", post(jobs::submit)),
        (Method::GET, "/api/jobs", get(jobs::list)),
        (Method::GET, "/api/jobs/{id}", get(jobs::show)),
        (Method::DELETE, "/api/jobs/{id}", delete(jobs::delete)),
        (Method::POST, "/api/jobs/{id}/stop", post(jobs::stop)),
        (Method::POST, "/api/jobs/{id}/restart", post(jobs::restart)),
        (Method::POST, "/api/query", post(query::query)),
        (Method::GET, "/api/tables", get(query::tables)),
        (Method::GET, "/api/anomalies", get(anomalies::latest)),
        (Method::GET, "/api/anomalies/count", get(anomalies::counts)),
        (Method::POST, "/api/predict", post(predict::predict)),
        (Method::GET, "/api/models", get(predict::models)),
    ]
}

/// The router over `app`, behind `token`, with bodies up to `body_limit` bytes.
pub fn router(app: AppState, token: Token, body_limit: usize) -> Router {
    let routes = routes()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        });
    routes
        .with_state(app)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ))
}

/// A bound server whose stored jobs have been resumed.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    manager: Arc<JobManager>,
}

impl Server {
    /// Binds `config.listen`, loads the stored jobs and starts those that
    /// should run.
    pub async fn start(config: ServerConfig) -> Result<Self> {
        let metrics = Arc::new(Metrics::new()?);
        let manager = JobManager::new(
            &config.state_dir,
            Arc::clone(&metrics),
            secrets::process_env,
        )?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(EngineError::io(format!("listening on {}", config.listen)))?;
        manager.resume().await?;
        let app = AppState {
            manager: Arc::clone(&manager),
            metrics,
            history: Arc::from(config.history.as_str()),
            limits: config.query,
            plant: Arc::new(Plant::new(&config.history, &config.plant)),
        };
        Ok(Self {
            listener,
            router: router(app, config.token, config.body_limit),
            manager,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(EngineError::io("reading the server's address"))
    }

    /// Serves until `shutdown` completes, then stops every job (they resume
    /// when the server starts again).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(EngineError::io("serving HTTP"));
        self.manager.shutdown().await;
        served
    }
}

/// Serves `/metrics` (and `/healthz`) on `listener` until the process ends
/// (`spindle run --metrics-listen`).
pub async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) -> Result<()> {
    axum::serve(listener, health::metrics_router(metrics))
        .await
        .map_err(EngineError::io("serving /metrics"))
}

#[cfg(test)]
mod tests;
