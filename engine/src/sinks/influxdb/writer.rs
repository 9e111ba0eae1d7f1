//! Sending batches: at most `'max-in-flight'` requests at once (a full set
//! makes [`Writer::submit`] wait: backpressure to the job and its source),
//! each retried on network errors, 429 and 5xx until `'retry.max-time'`,
//! split on 413, and its refused lines sent to the dead-letter output.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use super::lines::Lines;
use super::options::Settings;
use super::refusal::{self, Refusal};
use super::request::Target;
use super::retry::{Jitter, RetryPolicy, Verdict, parse_retry_after, verdict};
use crate::error::{EngineError, Result};
use crate::side_output::{Rejected, SideOutput};
use crate::sinks::http::{self, InFlight, error_chain};

/// Counters of one sink's requests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Lines the server took.
    pub written: AtomicU64,
    /// Lines the server refused (dead-lettered).
    pub refused: AtomicU64,
    /// Requests sent (every attempt).
    pub requests: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
    /// Batches split after a 413.
    pub splits: AtomicU64,
    /// Body bytes sent (after gzip).
    pub bytes: AtomicU64,
}

/// What every request task shares.
#[derive(Debug)]
struct Shared {
    sink: String,
    client: reqwest::Client,
    target: Target,
    url: Url,
    headers: HeaderMap,
    retry: RetryPolicy,
    token_source: String,
    dead_letter: SideOutput,
    counters: Arc<Counters>,
}

/// Sends batches with bounded concurrency.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    in_flight: InFlight,
}

impl Writer {
    /// A writer for `settings`; no connection is made until the first batch.
    pub(crate) fn new(sink: &str, settings: &Settings, dead_letter: SideOutput) -> Result<Self> {
        let client = http::client(sink, settings.timeout)?;
        Ok(Self {
            shared: Arc::new(Shared {
                sink: sink.to_string(),
                client,
                url: settings.target.write_url(),
                headers: settings.target.headers(),
                target: settings.target.clone(),
                retry: settings.retry,
                token_source: settings.token_source.clone(),
                dead_letter,
                counters: Arc::new(Counters::default()),
            }),
            in_flight: InFlight::new(sink, settings.max_in_flight),
        })
    }

    /// The counters (shared with the request tasks).
    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Starts sending `lines`, first waiting while `'max-in-flight'`
    /// requests are under way; fails with the first failed batch.
    pub(crate) async fn submit(&mut self, lines: Lines) -> Result<()> {
        self.in_flight
            .start(send(Arc::clone(&self.shared), lines))
            .await
    }

    /// The first failure of a batch that has finished meanwhile, if any
    /// (without waiting for the others).
    pub(crate) fn reap(&mut self) -> Result<()> {
        self.in_flight.reap()
    }

    /// Waits for every batch under way; the first failure, if any.
    pub(crate) async fn drain(&mut self) -> Result<()> {
        self.in_flight.drain().await
    }
}

/// Sends one batch to the end: written, split, or refused lines
/// dead-lettered. Fails when the server refuses for another reason or
/// stays unreachable past the retry budget.
async fn send(shared: Arc<Shared>, lines: Lines) -> Result<()> {
    let mut jitter = Jitter::from_clock();
    let mut stack = vec![lines];
    while let Some(lines) = stack.pop() {
        if lines.is_empty() {
            continue;
        }
        let (verdict, body) = post(&shared, &lines, &mut jitter).await?;
        match verdict {
            Verdict::Split if lines.len() > 1 => {
                shared.counters.splits.fetch_add(1, Ordering::Relaxed);
                let (first, second) = lines.split();
                stack.push(second);
                stack.push(first);
            }
            Verdict::Split => {
                let message = refusal::message(&body);
                let rejected = all_lines(&lines, &format!("too large for the server: {message}"));
                refuse(&shared, &lines, Refusal::Lines(rejected))?;
            }
            Verdict::Rejected => {
                let refusal = refusal::read(
                    shared.target.api,
                    &body,
                    &lines,
                    shared.target.accept_partial,
                );
                refuse(&shared, &lines, refusal)?;
            }
            _ => {
                shared
                    .counters
                    .written
                    .fetch_add(lines.len() as u64, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

fn all_lines(lines: &Lines, error: &str) -> Vec<Rejected> {
    lines
        .iter()
        .map(|line| Rejected {
            error: error.to_string(),
            raw: Some(String::from_utf8_lossy(line).into_owned()),
            lines: 1,
        })
        .collect()
}

/// Dead-letters refused lines (counting the rest as written), or fails
/// with the server's message when the refusal is not about the lines.
fn refuse(shared: &Shared, lines: &Lines, refusal: Refusal) -> Result<()> {
    let refused = refusal.lines().min(lines.len() as u64);
    match refusal {
        Refusal::Lines(rejected) => {
            tracing::warn!(
                sink = %shared.sink,
                "influxdb refused {refused} of {} lines (dead-letter output): {}",
                lines.len(),
                rejected.first().map(|r| r.error.as_str()).unwrap_or_default()
            );
            shared.dead_letter.write_rejected(&shared.sink, &rejected)?;
            let counters = &shared.counters;
            counters.refused.fetch_add(refused, Ordering::Relaxed);
            counters
                .written
                .fetch_add(lines.len() as u64 - refused, Ordering::Relaxed);
            Ok(())
        }
        Refusal::Other(message) => Err(shared.error(&format!("HTTP 400: {message}"))),
    }
}

impl Shared {
    fn error(&self, what: &str) -> EngineError {
        EngineError::Sink {
            sink: self.sink.clone(),
            message: format!("{} {what}", self.url_for_messages()),
        }
    }

    /// The write URL as messages show it (it never holds the token).
    fn url_for_messages(&self) -> String {
        format!("POST {}", self.url)
    }
}

/// Posts `lines` until the answer is final: the verdict and the body. Network
/// errors, 408, 429 and 5xx are retried with backoff (or after
/// `Retry-After`) while the retry budget lasts; 401/403/404 and other 4xx
/// fail at once with the server's message.
async fn post(shared: &Shared, lines: &Lines, jitter: &mut Jitter) -> Result<(Verdict, String)> {
    let body = shared
        .target
        .body(&lines.body)
        .map_err(|e| shared.error(&format!("compressing the body: {e}")))?;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let sent = shared
            .client
            .post(shared.url.clone())
            .headers(shared.headers.clone())
            .body(body.clone())
            .send()
            .await;
        let (why, retry_after) = match sent {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let text = response.text().await.unwrap_or_default();
                match verdict(status) {
                    Verdict::Retry => (
                        format!("HTTP {}: {}", status.as_u16(), refusal::message(&text)),
                        retry_after,
                    ),
                    Verdict::Fatal => return Err(shared.fatal(status, &text)),
                    final_verdict => return Ok((final_verdict, text)),
                }
            }
            Err(e) => (error_chain(&e), None),
        };
        let delay = shared.retry.delay(attempt, retry_after, jitter);
        let elapsed = started.elapsed();
        if elapsed + delay > shared.retry.max_time {
            return Err(shared.error(&format!(
                "failed after {} attempts in {:.1?} ('retry.max-time' is {:?}): {why}",
                attempt + 1,
                elapsed,
                shared.retry.max_time
            )));
        }
        tracing::warn!(
            sink = %shared.sink,
            "influxdb write of {} lines failed ({why}); retry {} in {delay:.1?}",
            lines.len(),
            attempt + 1
        );
        shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}

impl Shared {
    fn fatal(&self, status: reqwest::StatusCode, body: &str) -> EngineError {
        let hint = match status.as_u16() {
            401 | 403 => format!(" ({})", self.token_source),
            404 => " (does the database exist, and is 'api' right for this server?)".into(),
            _ => String::new(),
        };
        self.error(&format!(
            "HTTP {}: {}{hint}",
            status.as_u16(),
            refusal::message(body)
        ))
    }
}
