//! Reading a 400/422 answer: which lines the server refused and why.
//!
//! - InfluxDB 3 names them: `{"error": "partial write of line protocol
//!   occurred", "data": [{"original_line", "line_number", "error_message"}]}`.
//! - InfluxDB 1.x (`{"error": …}`) and 2.x (`{"code", "message"}`) name
//!   lines that do not parse (`unable to parse '<line>': <why>`) and only
//!   count the others (`partial write: … dropped=N`).
//!
//! Anything else in a 400 is not about the lines (a bad precision, a missing
//! database parameter) and stops the job with the server's message.

use super::lines::Lines;
use super::request::Api;
use crate::side_output::Rejected;

/// What a refusal means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// These lines were refused (named or counted); every other line of the
    /// batch was written.
    Lines(Vec<Rejected>),
    /// Not about the lines: the server's message.
    Other(String),
}

impl Refusal {
    /// How many lines the refusal stands for.
    pub(crate) fn lines(&self) -> u64 {
        match self {
            Self::Lines(rejected) => rejected.iter().map(|r| r.lines).sum(),
            Self::Other(_) => 0,
        }
    }
}

/// The server's message in an error body (`error`, `message`, or the text).
pub(crate) fn message(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    json.as_ref()
        .and_then(|j| j.get("error").or_else(|| j.get("message")))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(2000).collect())
}

/// Reads a refusal of `lines`; `accept_partial` is false when an InfluxDB 3
/// server was asked to refuse the whole batch if any line is bad.
pub(crate) fn read(api: Api, body: &str, lines: &Lines, accept_partial: bool) -> Refusal {
    if api == Api::V3
        && let Some(named) = v3_named(body)
    {
        if accept_partial {
            return Refusal::Lines(named);
        }
        return Refusal::Lines(whole_batch(lines, named, &message(body)));
    }
    let message = message(body);
    if message.contains("partial write") {
        let mut rejected = parse_errors(&message, lines);
        let named = rejected.len() as u64;
        if let Some(dropped) = dropped(&message)
            && dropped > named
        {
            rejected.push(Rejected {
                error: message.clone(),
                raw: None,
                lines: dropped - named,
            });
        }
        return Refusal::Lines(rejected);
    }
    if message.starts_with("unable to parse") || message.contains("parsing failed") {
        // Nothing was written: every line is refused, with its own reason
        // where the server named it.
        let named = parse_errors(&message, lines);
        return Refusal::Lines(whole_batch(lines, named, &message));
    }
    Refusal::Other(message)
}

/// InfluxDB 3's list of refused lines, if the body has one.
fn v3_named(body: &str) -> Option<Vec<Rejected>> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let data = json.get("data")?.as_array()?;
    let named: Vec<Rejected> = data
        .iter()
        .filter_map(|entry| {
            Some(Rejected {
                error: entry.get("error_message")?.as_str()?.to_string(),
                raw: Some(entry.get("original_line")?.as_str()?.to_string()),
                lines: 1,
            })
        })
        .collect();
    (!named.is_empty()).then_some(named)
}

/// Lines named in `unable to parse '<line>': <why>` messages.
fn parse_errors(message: &str, lines: &Lines) -> Vec<Rejected> {
    if !message.contains("unable to parse '") {
        return Vec::new();
    }
    lines
        .iter()
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let needle = format!("unable to parse '{line}': ");
            let at = message.find(&needle)? + needle.len();
            let rest = &message[at..];
            let end = rest
                .find("\nunable to parse '")
                .or_else(|| rest.find(" dropped="))
                .unwrap_or(rest.len());
            Some(Rejected {
                error: rest[..end].trim().to_string(),
                raw: Some(line.into_owned()),
                lines: 1,
            })
        })
        .collect()
}

/// Every line of `lines`: those in `named` with their reason, the others
/// with `message`.
fn whole_batch(lines: &Lines, named: Vec<Rejected>, message: &str) -> Vec<Rejected> {
    lines
        .iter()
        .map(|line| {
            let line = String::from_utf8_lossy(line).into_owned();
            named
                .iter()
                .find(|r| r.raw.as_deref() == Some(line.as_str()))
                .cloned()
                .unwrap_or_else(|| Rejected {
                    error: message.to_string(),
                    raw: Some(line),
                    lines: 1,
                })
        })
        .collect()
}

/// `dropped=N` at the end of a 1.x partial-write message.
fn dropped(message: &str) -> Option<u64> {
    let at = message.rfind("dropped=")? + "dropped=".len();
    let digits: String = message[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Lines {
        Lines::from_texts(texts)
    }

    fn named(raw: &str, error: &str) -> Rejected {
        Rejected {
            error: error.into(),
            raw: Some(raw.into()),
            lines: 1,
        }
    }

    #[test]
    fn influxdb3_names_the_refused_lines() {
        let body = r#"{"error":"partial write of line protocol occurred","data":[
            {"original_line":"m f=\"x\"","line_number":2,"error_message":"invalid column type for column 'f'"}]}"#;
        let batch = lines(&["m f=1", "m f=\"x\""]);
        assert_eq!(
            read(Api::V3, body, &batch, true),
            Refusal::Lines(vec![named(
                "m f=\"x\"",
                "invalid column type for column 'f'"
            )])
        );
        // Without accept_partial nothing was written: the whole batch.
        let all = read(Api::V3, body, &batch, false);
        assert_eq!(all.lines(), 2);
    }

    #[test]
    fn influxdb1_partial_writes_are_named_or_counted() {
        let batch = lines(&["m f=1 1", "m f= 2", "m f=3 3"]);
        let body =
            r#"{"error":"partial write: unable to parse 'm f= 2': missing field value dropped=0"}"#;
        assert_eq!(
            read(Api::V1, body, &batch, true),
            Refusal::Lines(vec![named("m f= 2", "missing field value")])
        );
        let body = r#"{"error":"partial write: field type conflict: input field \"f\" on measurement \"m\" is type integer, already exists as type float dropped=2"}"#;
        let Refusal::Lines(counted) = read(Api::V1, body, &batch, true) else {
            panic!("a refusal of lines");
        };
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].raw, None);
        assert_eq!(counted[0].lines, 2);
        assert!(counted[0].error.contains("field type conflict"));
    }

    #[test]
    fn nothing_parsed_refuses_every_line() {
        let batch = lines(&["m f=", "n g="]);
        let body = "{\"error\":\"unable to parse 'm f=': missing field value\\nunable to parse 'n g=': missing field value\"}";
        assert_eq!(
            read(Api::V1, body, &batch, true),
            Refusal::Lines(vec![
                named("m f=", "missing field value"),
                named("n g=", "missing field value")
            ])
        );
    }

    #[test]
    fn other_bad_requests_are_errors_with_the_server_message() {
        let batch = lines(&["m f=1"]);
        assert_eq!(
            read(
                Api::V2,
                r#"{"code":"invalid","message":"precision not supported"}"#,
                &batch,
                true
            ),
            Refusal::Other("precision not supported".into())
        );
        assert_eq!(
            read(Api::V1, "plain text", &batch, true),
            Refusal::Other("plain text".into())
        );
    }
}
