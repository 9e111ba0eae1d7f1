//! The sink's `WITH (…)` options, checked against the table before anything
//! starts. Every error names the option.

use std::time::Duration;

use arrow::datatypes::{DataType, Schema};
use spindle_sql::ddl::{Options, TableDef};
use url::Url;

use super::encode::{FieldKind, Layout, Measurement};
use super::request::{Api, Precision, Target, Token, token_is_sendable};
use super::retry::RetryPolicy;
use crate::error::{EngineError, Result};
use crate::sinks::options::{
    option_error, parse_http_url, pull_bool, pull_positive, pull_retry_policy,
};

/// Every option the sink reads (for "did you mean" hints).
pub const OPTIONS: &[&str] = &[
    "url",
    "api",
    "database",
    "bucket",
    "org",
    "retention-policy",
    "measurement",
    "measurement.column",
    "tags",
    "fields",
    "time.column",
    "precision",
    "token.env",
    "token.file",
    "batch.max-lines",
    "batch.max-bytes",
    "batch.interval",
    "gzip",
    "max-in-flight",
    "timeout",
    "retry.initial-delay",
    "retry.max-delay",
    "retry.max-time",
    "accept-partial",
    "no-sync",
];

/// When pending lines are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    /// At most this many lines per request …
    pub max_lines: usize,
    /// … about this many bytes (before gzip) …
    pub max_bytes: usize,
    /// … and lines wait at most this long.
    pub interval: Duration,
}

/// Everything the sink needs, read from the options.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Where and how requests go.
    pub target: Target,
    /// Which columns become what.
    pub layout: Layout,
    /// When to send.
    pub limits: BatchLimits,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Where the token came from, for messages (never the token).
    pub token_source: String,
}

/// Reads and checks the options of `table`.
pub(crate) fn parse(table: &TableDef, options: &mut Options) -> Result<Settings> {
    let api = options.pull_parsed("api", Api::parse)?.unwrap_or(Api::V3);
    let url = options.pull_parsed("url", parse_url)?.ok_or_else(|| {
        EngineError::from(options.error_at("url", "required but missing", options.table_location()))
    })?;
    let database = database(options)?;
    let org = options.pull_str("org");
    let retention_policy = options.pull_str("retention-policy");
    for (key, given, only) in [
        ("org", org.is_some(), Api::V2),
        ("retention-policy", retention_policy.is_some(), Api::V1),
    ] {
        if given && api != only {
            return Err(option_error(
                options,
                key,
                &format!("is for api {only:?} only"),
            ));
        }
    }
    let precision = options
        .pull_parsed("precision", Precision::parse)?
        .unwrap_or(Precision::Nanoseconds);
    let (token, token_source) = token(options)?;
    let target = Target {
        api,
        url,
        database,
        org,
        retention_policy,
        precision,
        accept_partial: pull_bool(options, "accept-partial", true)?,
        no_sync: pull_bool(options, "no-sync", false)?,
        gzip: pull_bool(options, "gzip", true)?,
        token,
    };
    let layout = layout(table, options, precision, api)?;
    let limits = BatchLimits {
        max_lines: pull_positive(options, "batch.max-lines", 5_000)?,
        max_bytes: options.pull_bytes("batch.max-bytes")?.unwrap_or(4 << 20) as usize,
        interval: options
            .pull_duration("batch.interval")?
            .unwrap_or(Duration::from_secs(1)),
    };
    let retry = pull_retry_policy(options)?;
    Ok(Settings {
        target,
        layout,
        limits,
        max_in_flight: pull_positive(options, "max-in-flight", 4)?,
        timeout: options
            .pull_duration("timeout")?
            .unwrap_or(Duration::from_secs(10)),
        retry,
        token_source,
    })
}

fn parse_url(text: &str) -> std::result::Result<Url, String> {
    let url = parse_http_url(text)?;
    if url.query().is_some() {
        return Err("give the server URL without query or credentials (see 'token.env')".into());
    }
    Ok(url)
}

/// `'database'`, or `'bucket'` (the same thing under its 2.x name).
fn database(options: &mut Options) -> Result<String> {
    match (options.pull_str("database"), options.pull_str("bucket")) {
        (Some(_), Some(_)) => Err(option_error(
            options,
            "bucket",
            "give 'database' or 'bucket', not both",
        )),
        (Some(name), None) | (None, Some(name)) if !name.is_empty() => Ok(name),
        _ => Err(option_error(
            options,
            "database",
            "required but missing (or 'bucket' for api v2)",
        )),
    }
}

/// The token from `'token.env'` (a variable's name) or `'token.file'`, and
/// a description of its source for messages.
fn token(options: &mut Options) -> Result<(Option<Token>, String)> {
    let token = match (
        options.pull_str("token.env"),
        options.pull_str("token.file"),
    ) {
        (Some(_), Some(_)) => {
            return Err(option_error(
                options,
                "token.file",
                "give 'token.env' or 'token.file', not both",
            ));
        }
        (Some(var), None) => match std::env::var(&var) {
            Ok(value) if !value.trim().is_empty() => {
                (Some(Token::new(&value)), format!("token from ${var}"))
            }
            _ => (None, format!("no token (${var} is unset or empty)")),
        },
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                option_error(options, "token.file", &format!("cannot read {path}: {e}"))
            })?;
            (Some(Token::new(&text)), format!("token from {path}"))
        }
        (None, None) => (
            None,
            "no token ('token.env' or 'token.file' give one)".into(),
        ),
    };
    if let Some(t) = &token.0
        && !token_is_sendable(t)
    {
        return Err(option_error(
            options,
            "token.env",
            "the token has characters a header cannot carry",
        ));
    }
    Ok(token)
}

/// Which columns are the measurement, tags, fields and time.
fn layout(
    table: &TableDef,
    options: &mut Options,
    precision: Precision,
    api: Api,
) -> Result<Layout> {
    let schema = table.schema();
    let column = |options: &Options, key: &str, name: &str| {
        schema.index_of(name).map_err(|_| {
            option_error(
                options,
                key,
                &format!("no column `{name}` in `{}`", table.name),
            )
        })
    };
    let measurement = match (
        options.pull_str("measurement"),
        options.pull_str("measurement.column"),
    ) {
        (Some(name), None) => Measurement::Fixed(name),
        (None, Some(name)) => Measurement::Column(column(options, "measurement.column", &name)?),
        (Some(_), Some(_)) => {
            return Err(option_error(
                options,
                "measurement.column",
                "give 'measurement' or 'measurement.column', not both",
            ));
        }
        (None, None) => {
            return Err(option_error(
                options,
                "measurement",
                "required but missing (or 'measurement.column')",
            ));
        }
    };
    let mut used: Vec<usize> = match measurement {
        Measurement::Column(i) => vec![i],
        Measurement::Fixed(_) => Vec::new(),
    };
    let tags = names(options.pull_str("tags"))
        .map(|name| {
            Ok((
                name.clone(),
                claim(options, "tags", column(options, "tags", &name)?, &mut used)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let explicit_fields = options.pull_str("fields");
    let time = time_column(
        options,
        &schema,
        &column,
        &mut used,
        explicit_fields.as_deref(),
    )?;
    let fields = match explicit_fields {
        Some(list) => names(Some(list))
            .map(|name| {
                let i = claim(
                    options,
                    "fields",
                    column(options, "fields", &name)?,
                    &mut used,
                )?;
                field(options, "fields", &schema, i)
            })
            .collect::<Result<Vec<_>>>()?,
        None => (0..schema.fields().len())
            .filter(|i| !used.contains(i))
            .map(|i| field(options, "fields", &schema, i))
            .collect::<Result<Vec<_>>>()?,
    };
    if fields.is_empty() {
        return Err(option_error(
            options,
            "fields",
            "no column is left to be a field",
        ));
    }
    let layout = Layout {
        measurement,
        tags,
        fields,
        time,
        precision,
        escaping: api.escaping(),
    };
    super::encode::LineEncoder::new(layout.clone())
        .map_err(|why| option_error(options, "measurement", &why))?;
    Ok(layout)
}

/// Column names in a comma-separated list; a name holding commas is
/// written in double quotes (`a,"b,c"`, `""` for a quote inside).
fn names(list: Option<String>) -> impl Iterator<Item = String> {
    let list = list.unwrap_or_default();
    let mut names = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => names.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    names.push(current);
    names
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

/// Marks column `i` as used, failing if another role has it.
fn claim(options: &Options, key: &str, i: usize, used: &mut Vec<usize>) -> Result<usize> {
    if used.contains(&i) {
        return Err(option_error(
            options,
            key,
            "a column can be only one of measurement, tag, field and time",
        ));
    }
    used.push(i);
    Ok(i)
}

fn field(
    options: &Options,
    key: &str,
    schema: &Schema,
    i: usize,
) -> Result<(String, usize, FieldKind)> {
    let f = schema.field(i);
    let kind = FieldKind::of(f.data_type()).ok_or_else(|| {
        option_error(
            options,
            key,
            &format!(
                "column `{}` of type {} cannot be a line-protocol field (list the fields in 'fields')",
                f.name(),
                f.data_type()
            ),
        )
    })?;
    Ok((f.name().clone(), i, kind))
}

/// `'time.column'`: a TIMESTAMP column, `none` (the server's time), or by
/// default the first TIMESTAMP column not used otherwise (nor listed in
/// `'fields'`).
fn time_column(
    options: &mut Options,
    schema: &Schema,
    column: &dyn Fn(&Options, &str, &str) -> Result<usize>,
    used: &mut Vec<usize>,
    explicit_fields: Option<&str>,
) -> Result<Option<(usize, arrow::datatypes::TimeUnit)>> {
    let index = match options.pull_str("time.column") {
        Some(name) if name == "none" => return Ok(None),
        Some(name) => Some(column(options, "time.column", &name)?),
        None => {
            let listed: Vec<String> = names(explicit_fields.map(str::to_string)).collect();
            schema.fields().iter().enumerate().position(|(i, f)| {
                matches!(f.data_type(), DataType::Timestamp(..))
                    && !used.contains(&i)
                    && !listed.contains(f.name())
            })
        }
    };
    let Some(i) = index else {
        return Ok(None);
    };
    match schema.field(i).data_type() {
        DataType::Timestamp(unit, _) => Ok(Some((claim(options, "time.column", i, used)?, *unit))),
        other => Err(option_error(
            options,
            "time.column",
            &format!(
                "column `{}` is {other}, not a TIMESTAMP",
                schema.field(i).name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn column_lists_split_on_commas_outside_quotes() {
        let list = |text: &str| names(Some(text.to_string())).collect::<Vec<_>>();
        assert_eq!(list("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(
            list(r#"machine id,"line,a=b c","say ""hi""""#),
            ["machine id", "line,a=b c", r#"say "hi""#]
        );
        assert!(list("").is_empty());
    }
}
