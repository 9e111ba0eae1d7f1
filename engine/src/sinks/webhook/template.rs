//! `'template'`: a JSON payload with `{column}` placeholders, for chat
//! tools that want their own shape (Slack `{"text": "…"}`, Teams
//! `{"title": …, "text": …}`). Each placeholder becomes the column's value
//! as text, JSON-escaped (quotes, backslashes, newlines, control
//! characters), so it is safe inside a JSON string; a null is `null`.
//!
//! A `{` starts a placeholder only when what follows up to the next `}` is a
//! column name, so the template's own braces (`{"text": …}`) stay as they
//! are; `{name}` with a plain identifier that is no column is an error.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::Schema;
use arrow::util::display::ArrayFormatter;

use crate::sinks::json::display_options;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(usize),
}

impl Template {
    /// Parses `text` against the sink's columns; the message says what is
    /// wrong (an unknown column, or not JSON once filled in).
    pub(crate) fn parse(text: &str, schema: &Schema) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name = after.find('}').map(|close| &after[..close]);
            match name.filter(|n| !n.contains('{')) {
                Some(n) if schema.index_of(n).is_ok() => {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                    parts.push(Part::Column(schema.index_of(n).map_err(|e| e.to_string())?));
                    rest = &after[n.len() + 1..];
                }
                Some(n) if is_identifier(n) => {
                    let columns: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(format!(
                        "{{{n}}} is no column of the table (columns: {})",
                        columns.join(", ")
                    ));
                }
                _ => {
                    literal.push('{');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        parts.push(Part::Text(literal));
        parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
        let template = Self { parts };
        let sample = template.fill(|_| "0".to_string());
        serde_json::from_str::<serde_json::Value>(&sample)
            .map_err(|e| format!("is not JSON once its placeholders are filled in: {e}"))?;
        Ok(template)
    }

    /// The payload of each row of `batch` (in the sink's schema).
    pub(crate) fn render(&self, batch: &RecordBatch) -> Result<Vec<String>, String> {
        let options = display_options();
        let columns = batch.columns();
        let formatters = self
            .columns()
            .map(|i| {
                ArrayFormatter::try_new(columns[i].as_ref(), &options)
                    .map(|f| (i, f))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((0..batch.num_rows())
            .map(|row| {
                self.fill(|column| {
                    let Some((_, formatter)) = formatters.iter().find(|(i, _)| *i == column) else {
                        return String::new();
                    };
                    if columns[column].is_null(row) {
                        "null".to_string()
                    } else {
                        json_escape(&formatter.value(row).to_string())
                    }
                })
            })
            .collect())
    }

    fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(i) => Some(*i),
            Part::Text(_) => None,
        })
    }

    fn fill(&self, mut value: impl FnMut(usize) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Column(i) => out.push_str(&value(*i)),
            }
        }
        out
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` as the inside of a JSON string.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("machine_id", DataType::Utf8, true),
            Field::new("reason", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ])
    }

    #[test]
    fn placeholders_are_columns_and_json_braces_stay() {
        let t = Template::parse(r#"{"text": "{machine_id}: {reason}"}"#, &schema()).unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Text(r#"{"text": ""#.into()),
                Part::Column(0),
                Part::Text(": ".into()),
                Part::Column(1),
                Part::Text(r#""}"#.into()),
            ]
        );
    }

    #[test]
    fn unknown_columns_and_broken_json_are_refused() {
        let e = Template::parse(r#"{"text": "{machine}"}"#, &schema()).unwrap_err();
        assert!(e.contains("{machine} is no column"), "{e}");
        assert!(e.contains("machine_id, reason, score"), "{e}");
        let e = Template::parse(r#"{"text": "{reason}""#, &schema()).unwrap_err();
        assert!(e.contains("is not JSON"), "{e}");
    }

    #[test]
    fn values_are_escaped_and_nulls_are_null() {
        let t = Template::parse(
            r#"{"text": "{machine_id} {reason} (score {score})", "score": {score}}"#,
            &schema(),
        )
        .unwrap();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("m \"1\" \\ é"), Some("m-2")])),
            Arc::new(StringArray::from(vec![Some("hot\nand\tloud"), None])),
            Arc::new(Float64Array::from(vec![Some(4.25), None])),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema()), columns).unwrap();
        let payloads = t.render(&batch).unwrap();
        let first: serde_json::Value = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"text": "m \"1\" \\ é hot\nand\tloud (score 4.25)", "score": 4.25})
        );
        let second: serde_json::Value = serde_json::from_str(&payloads[1]).unwrap();
        assert_eq!(
            second,
            serde_json::json!({"text": "m-2 null (score null)", "score": null})
        );
    }
}
