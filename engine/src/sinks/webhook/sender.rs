//! Posting alert messages: at most `'max-in-flight'` requests at once (a
//! full set makes [`Sender::submit`] wait), each retried on network errors,
//! 408, 429 and 5xx with full-jitter backoff or after `Retry-After`, until
//! `'retry.max-time'`. A 400 or 422 refuses the message itself: no retry,
//! it goes to the dead-letter output with the server's answer. Any other
//! 4xx (wrong URL, missing permission) stops the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use url::Url;

use crate::error::{EngineError, Result};
use crate::side_output::{Rejected, SideOutput};
use crate::sinks::http::{self, InFlight, error_chain};
use crate::sinks::retry::{Jitter, RetryPolicy, parse_retry_after};

/// Counters of one sink's requests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Messages the server took.
    pub sent: AtomicU64,
    /// Messages the server refused (dead-lettered).
    pub refused: AtomicU64,
    /// Requests made (every attempt).
    pub requests: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
}

/// What every request task shares.
#[derive(Debug)]
struct Shared {
    sink: String,
    client: reqwest::Client,
    url: Url,
    retry: RetryPolicy,
    dead_letter: SideOutput,
    counters: Counters,
}

/// How the sender is set up.
#[derive(Debug, Clone)]
pub(crate) struct SenderSettings {
    /// Where messages go.
    pub url: Url,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Backoff.
    pub retry: RetryPolicy,
}

/// Posts messages with bounded concurrency.
#[derive(Debug)]
pub(crate) struct Sender {
    shared: Arc<Shared>,
    in_flight: InFlight,
}

impl Sender {
    /// A sender; no connection is made until the first message.
    pub(crate) fn new(
        sink: &str,
        settings: SenderSettings,
        dead_letter: SideOutput,
    ) -> Result<Self> {
        let client = http::client(sink, settings.timeout)?;
        Ok(Self {
            shared: Arc::new(Shared {
                sink: sink.to_string(),
                client,
                url: settings.url,
                retry: settings.retry,
                dead_letter,
                counters: Counters::default(),
            }),
            in_flight: InFlight::new(sink, settings.max_in_flight),
        })
    }

    /// The counters (shared with the request tasks).
    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Where messages go.
    pub(crate) fn url(&self) -> &Url {
        &self.shared.url
    }

    /// Starts posting `body`, first waiting for room in flight.
    pub(crate) async fn submit(&mut self, body: String) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.in_flight.start(post(shared, body)).await
    }

    /// Waits for every message under way; the first failure, if any.
    pub(crate) async fn drain(&mut self) -> Result<()> {
        self.in_flight.drain().await
    }
}

/// What an answer means for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sent,
    Refused,
    Retry,
    Fatal,
}

fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Sent,
        400 | 422 => Verdict::Refused,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Fatal,
    }
}

/// The URL as messages show it: scheme, host and port only, since chat
/// webhooks carry their secret in the path.
pub(crate) fn shown_url(url: &Url) -> String {
    let origin = url.origin().ascii_serialization();
    if url.path() == "/" && url.query().is_none() {
        origin
    } else {
        format!("{origin}/…")
    }
}

impl Shared {
    fn error(&self, what: &str) -> EngineError {
        EngineError::Sink {
            sink: self.sink.clone(),
            message: format!("POST {} {what}", shown_url(&self.url)),
        }
    }

    fn refuse(&self, body: &str, status: u16, answer: &str) -> Result<()> {
        let error = format!("HTTP {status}: {}", answer.trim());
        tracing::warn!(sink = %self.sink, "webhook refused a message (dead-letter output): {error}");
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        self.dead_letter.write_rejected(
            &self.sink,
            &[Rejected {
                error,
                raw: Some(body.to_string()),
                lines: 1,
            }],
        )
    }
}

/// Posts one message until it is sent, refused (dead-lettered) or the
/// retry budget is spent (an error).
async fn post(shared: Arc<Shared>, body: String) -> Result<()> {
    let mut jitter = Jitter::from_clock();
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let sent = shared
            .client
            .post(shared.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let (why, retry_after) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let answer = response.text().await.unwrap_or_default();
                match verdict(status) {
                    Verdict::Sent => {
                        shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Verdict::Refused => return shared.refuse(&body, status, &answer),
                    Verdict::Fatal => {
                        return Err(shared.error(&format!("HTTP {status}: {}", answer.trim())));
                    }
                    Verdict::Retry => (format!("HTTP {status}: {}", answer.trim()), retry_after),
                }
            }
            Err(e) => (error_chain(&e), None),
        };
        let delay = shared.retry.delay(attempt, retry_after, &mut jitter);
        let elapsed = started.elapsed();
        if elapsed + delay > shared.retry.max_time {
            return Err(shared.error(&format!(
                "failed after {} attempts in {elapsed:.1?} ('retry.max-time' is {:?}): {why}",
                attempt + 1,
                shared.retry.max_time
            )));
        }
        tracing::warn!(sink = %shared.sink, "webhook post failed ({why}); retry {} in {delay:.1?}", attempt + 1);
        shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_send_refuse_retry_or_stop() {
        assert_eq!(verdict(200), Verdict::Sent);
        assert_eq!(verdict(204), Verdict::Sent);
        assert_eq!(verdict(400), Verdict::Refused);
        assert_eq!(verdict(422), Verdict::Refused);
        for code in [408, 429, 500, 502, 503, 504] {
            assert_eq!(verdict(code), Verdict::Retry, "{code}");
        }
        for code in [401, 403, 404, 410] {
            assert_eq!(verdict(code), Verdict::Fatal, "{code}");
        }
    }

    #[test]
    fn urls_in_messages_hide_the_path() {
        let slack = Url::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(shown_url(&slack), "https://hooks.slack.com/…");
        let plain = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(shown_url(&plain), "http://127.0.0.1:8080");
    }
}
