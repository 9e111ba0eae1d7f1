//! The job service's HTTP client for `spindle submit`, `spindle jobs` and
//! `spindle query --server`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The job service's URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SPINDLE_SERVER",
        default_value = "http://127.0.0.1:8480"
    )]
    pub(crate) server: String,
    /// File whose first line is the API token (`SPINDLE_TOKEN` wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// A client of one server.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(args: &ServerArgs) -> Result<Self> {
        let token = spindle_engine::server::auth::load_token(
            std::env::var("SPINDLE_TOKEN").ok(),
            args.token_file.as_deref(),
        )?;
        Ok(Self {
            base: args.server.trim_end_matches('/').to_string(),
            token: token.0.map(|t| t.to_string()),
            http: reqwest::Client::builder().build()?,
        })
    }

    /// Sends a request; an answer other than 2xx becomes an error carrying
    /// the server's message (and located problems, prefixed with `file`).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: &str,
        file: &str,
    ) -> Result<bytes::Bytes> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {url}"))?;
        if status.is_success() {
            return Ok(bytes);
        }
        bail!("{}", describe_error(status, &bytes, file))
    }

    /// Sends and parses a JSON answer.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        file: &str,
    ) -> Result<Value> {
        let bytes = self
            .send(method, path, body, "application/json", file)
            .await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// `file:line:column: message` per located problem, else the server's message.
fn describe_error(status: reqwest::StatusCode, body: &[u8], file: &str) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return match status {
            reqwest::StatusCode::UNAUTHORIZED => {
                "401 Unauthorized: set SPINDLE_TOKEN or --token-file".into()
            }
            _ => format!("{status}: {}", String::from_utf8_lossy(body).trim()),
        };
    };
    let problems: Vec<String> = value["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{file}:{}:{}: {}",
                        e["line"],
                        e["column"],
                        text(&e["message"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if problems.is_empty() {
        format!("{status}: {}", text(&value["error"]))
    } else {
        problems.join("\n")
    }
}

/// A JSON string without quotes (other values as JSON).
pub(crate) fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}
