//! Option helpers the sinks share: booleans, positive counts, HTTP URLs and
//! the `'retry.*'` backoff settings. Every error names the option.

use spindle_sql::ddl::Options;
use url::Url;

use super::retry::RetryPolicy;
use crate::error::{EngineError, Result};

/// An error about option `key`, located at the table.
pub(crate) fn option_error(options: &Options, key: &str, message: &str) -> EngineError {
    options
        .error_at(key, message, options.table_location())
        .into()
}

/// `'true'` or `'false'`, else `default`.
pub(crate) fn pull_bool(options: &mut Options, key: &str, default: bool) -> Result<bool> {
    Ok(options
        .pull_parsed(key, |v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("{other:?} is not true or false")),
        })?
        .unwrap_or(default))
}

/// A whole number of at least 1, else `default`.
pub(crate) fn pull_positive(options: &mut Options, key: &str, default: usize) -> Result<usize> {
    match options.pull_u64(key)? {
        Some(0) => Err(option_error(options, key, "must be at least 1")),
        Some(n) => Ok(n as usize),
        None => Ok(default),
    }
}

/// An `http://` or `https://` URL without credentials (those belong in a
/// token option, never in text that messages may show).
pub(crate) fn parse_http_url(text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("give the URL without credentials".into());
    }
    Ok(url)
}

/// `'retry.initial-delay'`, `'retry.max-delay'`, `'retry.max-time'`, each
/// defaulting to [`RetryPolicy::default`].
pub(crate) fn pull_retry_policy(options: &mut Options) -> Result<RetryPolicy> {
    let defaults = RetryPolicy::default();
    Ok(RetryPolicy {
        initial_delay: options
            .pull_duration("retry.initial-delay")?
            .unwrap_or(defaults.initial_delay),
        max_delay: options
            .pull_duration("retry.max-delay")?
            .unwrap_or(defaults.max_delay),
        max_time: options
            .pull_duration("retry.max-time")?
            .unwrap_or(defaults.max_time),
    })
}
