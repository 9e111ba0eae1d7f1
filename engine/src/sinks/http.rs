//! What the HTTP sinks (InfluxDB, webhook) share: the client, a bounded
//! set of requests under way (starting one more waits while the set is
//! full: backpressure to the job and its source; the first failure comes
//! back from the next call), and errors on one line.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::error::{EngineError, Result};

/// An HTTP client with a `timeout` per request (and at most 5 s to
/// connect).
pub(crate) fn client(sink: &str, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| EngineError::Sink {
            sink: sink.to_string(),
            message: format!("creating the HTTP client: {e}"),
        })
}

/// Requests under way, at most `max` at once.
#[derive(Debug)]
pub(crate) struct InFlight {
    tasks: JoinSet<Result<()>>,
    max: usize,
    /// Names the sink in a failed task's error.
    sink: String,
}

impl InFlight {
    /// An empty set that holds at most `max` (≥ 1) tasks.
    pub(crate) fn new(sink: &str, max: usize) -> Self {
        Self {
            tasks: JoinSet::new(),
            max: max.max(1),
            sink: sink.to_string(),
        }
    }

    /// Starts `task`, first waiting while `max` tasks are under way; fails
    /// with the first finished task's failure.
    pub(crate) async fn start<F>(&mut self, task: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        self.reap()?;
        while self.tasks.len() >= self.max {
            if let Some(done) = self.tasks.join_next().await {
                self.finished(done)?;
            }
        }
        self.tasks.spawn(task);
        Ok(())
    }

    /// Collects the tasks that have finished, without waiting; the first
    /// failure among them, if any.
    pub(crate) fn reap(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.finished(done)?;
        }
        Ok(())
    }

    /// Waits for every task; the first failure, if any.
    pub(crate) async fn drain(&mut self) -> Result<()> {
        let mut result = Ok(());
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = self.finished(done)
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }

    fn finished(
        &self,
        done: std::result::Result<Result<()>, tokio::task::JoinError>,
    ) -> Result<()> {
        done.map_err(|e| EngineError::Internal(format!("sink {} request task: {e}", self.sink)))?
    }
}

/// An error and its causes on one line (reqwest's own message is terse).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
