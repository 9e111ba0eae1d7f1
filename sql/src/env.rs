//! `${VAR}` and `${VAR:-default}` substitution, done on the job text before
//! parsing (so it works inside strings, identifiers and numbers alike).
//!
//! `$${` writes a literal `${`. Names are `[A-Za-z_][A-Za-z0-9_]*`. The
//! result remembers which output ranges came from which input ranges, so a
//! parser error in the substituted text can be reported at the user's
//! original line and column, and which ranges hold values from the
//! environment (possibly secrets), so they can be masked.

use crate::error::{Location, Result, SqlError};

/// One piece of output: copied from the input, or a substituted value.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    /// Start in the output text (bytes).
    out_start: usize,
    /// Start in the input text (bytes): the copied text, or the `${`.
    in_start: usize,
    /// Whether this piece is a value taken from the environment.
    from_env: bool,
}

/// Job text after substitution.
#[derive(Debug, Clone, PartialEq)]
pub struct Substituted {
    /// The text to parse.
    pub text: String,
    original: String,
    segments: Vec<Segment>,
}

impl Substituted {
    /// Maps a byte offset in [`Self::text`] back to the user's line and column.
    /// Offsets inside a substituted value map to its `${`.
    pub fn original_location(&self, out_offset: usize) -> Location {
        let i = self
            .segments
            .partition_point(|s| s.out_start <= out_offset)
            .saturating_sub(1);
        let in_offset = match self.segments.get(i) {
            Some(s) if s.from_env => s.in_start,
            Some(s) => s.in_start + (out_offset - s.out_start),
            None => out_offset,
        };
        location_of(&self.original, in_offset)
    }

    /// The output text with every value taken from the environment replaced
    /// by `***`, for logs and API responses.
    pub fn masked(&self) -> String {
        let mut masked = String::with_capacity(self.text.len());
        for (i, s) in self.segments.iter().enumerate() {
            let end = self
                .segments
                .get(i + 1)
                .map_or(self.text.len(), |n| n.out_start);
            if s.from_env {
                masked.push_str("***");
            } else {
                masked.push_str(&self.text[s.out_start..end]);
            }
        }
        masked
    }
}

/// Substitutes from the process environment.
pub fn substitute(text: &str) -> Result<Substituted> {
    substitute_with(text, |name| std::env::var(name).ok())
}

/// Substitutes with a caller-supplied lookup (tests, the job service).
pub fn substitute_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Substituted> {
    let mut out = Substituted {
        text: String::with_capacity(text.len()),
        original: text.to_string(),
        segments: Vec::new(),
    };
    let mut rest = 0;
    while let Some(found) = text[rest..].find('$').map(|i| rest + i) {
        if text[found..].starts_with("$${") {
            out.copy(&text[rest..found + 1], rest);
            rest = found + 2; // the next piece starts at the `{`
            continue;
        }
        if !text[found..].starts_with("${") {
            out.copy(&text[rest..found + 1], rest);
            rest = found + 1;
            continue;
        }
        out.copy(&text[rest..found], rest);
        let (value, end) = resolve(text, found, &lookup)?;
        out.segments.push(Segment {
            out_start: out.text.len(),
            in_start: found,
            from_env: true,
        });
        out.text.push_str(&value);
        rest = end;
    }
    out.copy(&text[rest..], rest);
    Ok(out)
}

impl Substituted {
    fn copy(&mut self, piece: &str, in_start: usize) {
        if piece.is_empty() {
            return;
        }
        self.segments.push(Segment {
            out_start: self.text.len(),
            in_start,
            from_env: false,
        });
        self.text.push_str(piece);
    }
}

/// Resolves the reference starting at `start` (`${`); returns the value and
/// the offset just past the closing `}`.
fn resolve(
    text: &str,
    start: usize,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(String, usize)> {
    let malformed = |message: String| SqlError::MalformedVariable {
        message,
        location: location_of(text, start),
    };
    let body_start = start + 2;
    let close = text[body_start..]
        .find('}')
        .map(|i| body_start + i)
        .ok_or_else(|| malformed("missing `}`".into()))?;
    let body = &text[body_start..close];
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_variable_name(name) {
        return Err(malformed(format!("{name:?} is not a variable name")));
    }
    match (lookup(name), default) {
        (Some(value), _) => Ok((value, close + 1)),
        (None, Some(default)) => Ok((default.to_string(), close + 1)),
        (None, None) => Err(SqlError::UnsetVariable {
            name: name.to_string(),
            location: location_of(text, start),
        }),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Line and column (1-based, columns in characters) of a byte offset.
pub(crate) fn location_of(text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BROKERS" => Some("10.0.0.1:9092".into()),
            "PASSWORD" => Some("hunter2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<Substituted> {
        substitute_with(text, env)
    }

    #[test]
    fn set_variables_win_over_defaults_and_unset_ones_take_them() {
        let s =
            sub("'${BROKERS:-127.0.0.1:9092}' '${TOPIC:-factory.sensors}' '${EMPTY:-x}'").unwrap();
        assert_eq!(s.text, "'10.0.0.1:9092' 'factory.sensors' ''");
    }

    #[test]
    fn unset_without_default_names_variable_and_position() {
        let error = sub("SELECT 1;\n  WHERE x = '${MISSING}'").unwrap_err();
        assert_eq!(
            error,
            SqlError::UnsetVariable {
                name: "MISSING".into(),
                location: Location {
                    line: 2,
                    column: 14
                }
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("2:14: environment variable `MISSING`")
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(matches!(
            sub("${BROKERS"),
            Err(SqlError::MalformedVariable { .. })
        ));
        assert!(matches!(
            sub("${1X}"),
            Err(SqlError::MalformedVariable { .. })
        ));
        assert!(matches!(
            sub("${}"),
            Err(SqlError::MalformedVariable { .. })
        ));
    }

    #[test]
    fn dollars_without_braces_and_escapes_are_kept() {
        let s = sub("price $5, literal $${BROKERS}, end$").unwrap();
        assert_eq!(s.text, "price $5, literal ${BROKERS}, end$");
    }

    #[test]
    fn output_offsets_map_back_to_the_original_text() {
        let original = "a = '${BROKERS}',\nb = bad";
        let s = sub(original).unwrap();
        let bad = s.text.find("bad").unwrap();
        assert_eq!(s.original_location(bad), Location { line: 2, column: 5 });
        let inside_value = s.text.find("10.0").unwrap() + 3;
        assert_eq!(
            s.original_location(inside_value),
            Location { line: 1, column: 6 }
        );
    }

    #[test]
    fn masking_hides_every_substituted_value() {
        let s = sub("'password' = '${PASSWORD}', 'x' = '${X:-dflt}'").unwrap();
        assert!(s.text.contains("hunter2"));
        assert_eq!(s.masked(), "'password' = '***', 'x' = '***'");
    }

    #[test]
    fn multibyte_text_keeps_character_columns() {
        let s = sub("-- é\n'${BROKERS}' ü bad").unwrap();
        let bad = s.text.find("bad").unwrap();
        assert_eq!(
            s.original_location(bad),
            Location {
                line: 2,
                column: 16
            }
        );
    }
}
