//! `'connector' = 'webhook'`: one JSON message per row POSTed to `'url'`,
//! for alerts people read (a chat channel, an on-call tool).
//!
//! - The message is the row as a JSON object (nulls left out, timestamps in
//!   RFC 3339), or `'template'` filled in (see [`template`]).
//! - `'cooldown'` per `'key.column'` ([`cooldown`]): once a key's message is
//!   sent, its rows within the period are suppressed and counted. The clock
//!   is the row's `'time.column'` (event time: the same alerts on a replay)
//!   or, without one, the wall clock.
//! - [`sender`]: bounded requests in flight (backpressure), retries with
//!   full-jitter backoff honouring `Retry-After`, refused messages to the
//!   dead-letter output. `flush`/`commit` wait for every message under way.

mod cooldown;
mod sender;
mod template;

#[cfg(test)]
mod http_tests;

use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use arrow::util::display::ArrayFormatter;
use async_trait::async_trait;
use spindle_sql::ddl::{Options, TableDef};

use self::cooldown::CoolDown;
use self::sender::{Sender, SenderSettings, shown_url};
use self::template::Template;
use super::json::{JsonRows, display_options};
use super::options::{option_error, parse_http_url, pull_positive, pull_retry_policy};
use super::{Sink, SinkContext};
use crate::error::{EngineError, Result};
use crate::side_output::{Rejected, SideOutput};

/// Every option the sink reads (for "did you mean" hints).
pub const OPTIONS: &[&str] = &[
    "url",
    "template",
    "key.column",
    "cooldown",
    "time.column",
    "max-in-flight",
    "timeout",
    "retry.initial-delay",
    "retry.max-delay",
    "retry.max-time",
];

/// The wall clock in milliseconds (replaced in tests).
pub(crate) type Clock = fn() -> i64;

fn wall_clock() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Posts a table's rows as alert messages.
#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    template: Option<Template>,
    key_column: Option<usize>,
    time_column: Option<usize>,
    cooldown: CoolDown,
    clock: Clock,
    /// `None` when `'url'` is empty: rows are counted, nothing is sent.
    sender: Option<Sender>,
    dead_letter: SideOutput,
    rows: u64,
}

impl WebhookSink {
    /// Reads and checks the options; nothing is sent until rows arrive.
    pub fn open(table: &TableDef, options: &mut Options, context: &SinkContext) -> Result<Self> {
        let schema = table.schema();
        // An empty URL (`'url' = '${ALERT_WEBHOOK_URL:-}'`) turns the sink off.
        let url = match options.peek("url") {
            Some("") => {
                options.pull_str("url");
                None
            }
            _ => Some(
                options
                    .pull_parsed("url", parse_http_url)?
                    .ok_or_else(|| option_error(options, "url", "required but missing"))?,
            ),
        };
        let template = options.pull_parsed("template", |t| Template::parse(t, &schema))?;
        let key_column = column_option(table, options, "key.column", None)?;
        let time_column = column_option(table, options, "time.column", Some("a timestamp"))?;
        let cooldown = options.pull_duration("cooldown")?.unwrap_or(Duration::ZERO);
        let max_in_flight = pull_positive(options, "max-in-flight", 4)?;
        let timeout = options
            .pull_duration("timeout")?
            .unwrap_or(Duration::from_secs(10));
        let retry = pull_retry_policy(options)?;
        let sender = match url {
            Some(url) => {
                let settings = SenderSettings {
                    url,
                    max_in_flight,
                    timeout,
                    retry,
                };
                Some(Sender::new(
                    &table.name,
                    settings,
                    context.dead_letter.clone(),
                )?)
            }
            None => {
                tracing::warn!(sink = %table.name, "webhook sink: 'url' is empty, so no message is sent");
                None
            }
        };
        Ok(Self {
            name: table.name.clone(),
            template,
            key_column,
            time_column,
            cooldown: CoolDown::new(i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX)),
            clock: wall_clock,
            sender,
            dead_letter: context.dead_letter.clone(),
            rows: 0,
        })
    }

    /// Uses `clock` instead of the wall clock (tests).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn error(&self, message: &str) -> EngineError {
        EngineError::Sink {
            sink: self.name.clone(),
            message: message.to_string(),
        }
    }

    /// Each row's cool-down key (all rows share one without `'key.column'`).
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        let Some(index) = self.key_column else {
            return Ok(vec![String::new(); batch.num_rows()]);
        };
        let column = batch.column(index);
        let options = display_options();
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| self.error(&format!("formatting 'key.column': {e}")))?;
        Ok((0..batch.num_rows())
            .map(|i| formatter.value(i).to_string())
            .collect())
    }

    /// Each row's cool-down time in ms: its event time, or now. A row
    /// without an event time is never suppressed (`None`).
    fn times(&self, batch: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let Some(index) = self.time_column else {
            return Ok(vec![Some((self.clock)()); batch.num_rows()]);
        };
        let millis = cast(
            batch.column(index),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )
        .map_err(|e| self.error(&format!("reading 'time.column': {e}")))?;
        let millis = millis.as_primitive::<TimestampMillisecondType>();
        Ok((0..millis.len())
            .map(|i| millis.is_valid(i).then(|| millis.value(i)))
            .collect())
    }

    /// The message of each row.
    fn messages(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        match &self.template {
            Some(template) => template
                .render(batch)
                .map_err(|e| self.error(&format!("filling in 'template': {e}"))),
            None => {
                let rows = JsonRows::encode(batch, &self.name)?;
                Ok((0..rows.len())
                    .map(|i| String::from_utf8_lossy(rows.row(i)).into_owned())
                    .collect())
            }
        }
    }

    fn summary(&self) -> String {
        let Some(sender) = &self.sender else {
            return format!(
                "webhook sink {}: {} rows; not sent ('url' is empty)",
                self.name, self.rows
            );
        };
        let c = sender.counters();
        format!(
            "webhook sink {}: {} rows; {} suppressed by the cool-down; {} messages sent, \
             {} refused (dead-letter); {} requests ({} retried) to {}",
            self.name,
            self.rows,
            self.cooldown.suppressed,
            c.sent.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.requests.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
            shown_url(sender.url()),
        )
    }
}

/// An optional column-name option; `Some("a timestamp")` asks for a
/// timestamp column.
fn column_option(
    table: &TableDef,
    options: &mut Options,
    key: &str,
    timestamp: Option<&str>,
) -> Result<Option<usize>> {
    let Some(name) = options.pull_str(key) else {
        return Ok(None);
    };
    let schema = table.schema();
    let index = schema
        .index_of(&name)
        .map_err(|_| option_error(options, key, &format!("no column {name:?} in the table")))?;
    let data_type = schema.field(index).data_type();
    if let Some(wanted) = timestamp
        && !matches!(data_type, DataType::Timestamp(..))
    {
        return Err(option_error(
            options,
            key,
            &format!("column {name:?} is {data_type}, not {wanted}"),
        ));
    }
    Ok(Some(index))
}

#[async_trait]
impl Sink for WebhookSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        if self.sender.is_none() {
            return Ok(());
        }
        let keys = self.keys(&batch)?;
        let times = self.times(&batch)?;
        let admitted: Vec<bool> = keys
            .iter()
            .zip(&times)
            .map(|(key, at)| at.is_none_or(|at| self.cooldown.admit(key, at)))
            .collect();
        if !admitted.contains(&true) {
            return Ok(());
        }
        let messages = self.messages(&batch)?;
        for (message, _) in messages.into_iter().zip(admitted).filter(|(_, a)| *a) {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&message) {
                let rejected = Rejected {
                    error: format!("'template' gave no JSON for this row: {e}"),
                    raw: Some(message),
                    lines: 1,
                };
                self.dead_letter.write_rejected(&self.name, &[rejected])?;
                continue;
            }
            if let Some(sender) = self.sender.as_mut() {
                sender.submit(message).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        match self.sender.as_mut() {
            Some(sender) => sender.drain().await,
            None => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<()> {
        let result = self.flush().await;
        tracing::info!("{}", self.summary());
        result
    }
}
