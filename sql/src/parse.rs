//! Tokenising job text, splitting it into statements and turning sqlparser's
//! errors into located [`SqlError`]s.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Location, Result, SqlError};

/// The dialect jobs are written in.
pub(crate) static DIALECT: GenericDialect = GenericDialect {};

/// Where a token starts.
pub(crate) fn location_of_token(token: &TokenWithSpan) -> Location {
    Location {
        line: token.span.start.line.max(1) as usize,
        column: token.span.start.column.max(1) as usize,
    }
}

/// sqlparser reports positions inside its message (" at Line: 3, Column: 7");
/// pull them out into a [`SqlError::Syntax`].
pub(crate) fn parser_error(error: ParserError) -> SqlError {
    let text = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nested too deeply".to_string(),
    };
    let (message, location) = split_location(&text);
    SqlError::Syntax { message, location }
}

fn split_location(text: &str) -> (String, Location) {
    let Some(at) = text.rfind(" at Line: ") else {
        return (text.to_string(), Location { line: 1, column: 1 });
    };
    let numbers: Vec<usize> = text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let location = match numbers.as_slice() {
        [line, column, ..] => Location {
            line: *line,
            column: *column,
        },
        _ => Location { line: 1, column: 1 },
    };
    (text[..at].to_string(), location)
}

/// Tokenises `text` and splits it at top-level semicolons; empty statements
/// (comments only) are dropped.
pub(crate) fn split_statements(text: &str) -> Result<Vec<Vec<TokenWithSpan>>> {
    let tokens = Tokenizer::new(&DIALECT, text)
        .tokenize_with_location()
        .map_err(|e| {
            let (message, location) = split_location(&e.to_string());
            SqlError::Syntax { message, location }
        })?;
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match token.token {
            Token::SemiColon => statements.push(std::mem::take(&mut current)),
            Token::Whitespace(_) => {}
            _ => current.push(token),
        }
    }
    statements.push(current);
    statements.retain(|s| !s.is_empty());
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_from_parser_messages() {
        let (message, location) = split_location("Expected: ), found: x at Line: 3, Column: 17");
        assert_eq!(message, "Expected: ), found: x");
        assert_eq!(
            location,
            Location {
                line: 3,
                column: 17
            }
        );
    }

    #[test]
    fn statements_split_at_semicolons_and_comments_vanish() {
        let parts = split_statements("SELECT 1; -- note\n ; SELECT 'a;b';").unwrap();
        assert_eq!(parts.len(), 2);
    }
}
