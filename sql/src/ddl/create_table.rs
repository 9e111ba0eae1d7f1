//! `CREATE TABLE name (col TYPE [NOT NULL], …, WATERMARK FOR col AS col - INTERVAL …) WITH ('k' = 'v', …)`,
//! parsed with sqlparser's primitives so every piece keeps its position.

use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{BinaryOperator, ColumnOption, Expr};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::options::{OptionValue, Options};
use super::types::sql_to_arrow;
use crate::error::{Location, Result, SqlError};
use crate::interval::interval_duration;
use crate::parse::{location_of_token, parser_error};

/// One declared column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// False for `NOT NULL`.
    pub nullable: bool,
}

/// `WATERMARK FOR column AS column - INTERVAL …`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// How far behind the largest event time seen the watermark trails.
    pub delay: Duration,
    /// Where the clause is.
    pub location: Location,
}

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Event-time declaration, for sources.
    pub watermark: Option<WatermarkDef>,
    /// The `WITH` options.
    pub options: Options,
    /// Where the table name is.
    pub location: Location,
}

impl TableDef {
    /// The declared columns as an Arrow schema.
    pub fn schema(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        )
    }
}

/// Parses a CREATE TABLE; the parser stands at `CREATE`.
pub fn parse_create_table(parser: &mut Parser<'_>) -> Result<TableDef> {
    expect_keywords(parser, &[Keyword::CREATE, Keyword::TABLE])?;
    let _ = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let location = location_of_token(&parser.peek_token());
    let name = parser
        .parse_object_name(false)
        .map_err(parser_error)?
        .to_string();
    parser.expect_token(&Token::LParen).map_err(parser_error)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    loop {
        if is_word(parser, "WATERMARK") {
            let clause = parse_watermark(parser)?;
            if watermark.replace(clause).is_some() {
                return Err(plan_at(parser, "a table can declare only one WATERMARK"));
            }
        } else {
            columns.push(parse_column(parser)?);
        }
        if parser.consume_token(&Token::RParen) {
            break;
        }
        parser.expect_token(&Token::Comma).map_err(parser_error)?;
    }
    let options = parse_with(parser, &name, location)?;
    let table = TableDef {
        name,
        columns,
        watermark,
        options,
        location,
    };
    check_watermark_column(&table)?;
    Ok(table)
}

fn parse_column(parser: &mut Parser<'_>) -> Result<ColumnDef> {
    let type_location = location_of_token(&parser.peek_token());
    let column = parser.parse_column_def().map_err(parser_error)?;
    let data_type = sql_to_arrow(&column.data_type).map_err(|message| SqlError::Plan {
        message: format!("column `{}`: {message}", column.name.value),
        location: type_location,
    })?;
    let nullable = !column
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::NotNull));
    Ok(ColumnDef {
        name: column.name.value,
        data_type,
        nullable,
    })
}

fn parse_watermark(parser: &mut Parser<'_>) -> Result<WatermarkDef> {
    let location = location_of_token(&parser.next_token()); // WATERMARK
    parser.expect_keyword(Keyword::FOR).map_err(parser_error)?;
    let column = parser.parse_identifier().map_err(parser_error)?.value;
    parser.expect_keyword(Keyword::AS).map_err(parser_error)?;
    let expr_location = location_of_token(&parser.peek_token());
    let expr = parser.parse_expr().map_err(parser_error)?;
    let delay = watermark_delay(&column, &expr).map_err(|message| SqlError::Plan {
        message,
        location: expr_location,
    })?;
    Ok(WatermarkDef {
        column,
        delay,
        location,
    })
}

/// Accepts `col` (no delay) or `col - INTERVAL …`.
fn watermark_delay(column: &str, expr: &Expr) -> Result<Duration, String> {
    let is_column = |e: &Expr| matches!(e, Expr::Identifier(i) if i.value == column);
    match expr {
        e if is_column(e) => Ok(Duration::ZERO),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_column(left) => interval_duration(right),
        other => Err(format!(
            "WATERMARK FOR {column} AS … must be `{column}` or `{column} - INTERVAL '5' SECOND`, found `{other}`"
        )),
    }
}

fn parse_with(parser: &mut Parser<'_>, table: &str, location: Location) -> Result<Options> {
    let mut options = Options::new(table, location);
    if !parser.parse_keyword(Keyword::WITH) {
        return Ok(options);
    }
    parser.expect_token(&Token::LParen).map_err(parser_error)?;
    loop {
        let key_location = location_of_token(&parser.peek_token());
        let key = parse_option_text(parser)?;
        parser.expect_token(&Token::Eq).map_err(parser_error)?;
        let value = parse_option_text(parser)?;
        options.insert(
            key,
            OptionValue {
                value,
                location: key_location,
            },
        )?;
        if parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        parser.expect_token(&Token::Comma).map_err(parser_error)?;
    }
}

/// An option key or value: a quoted string, a number, a word or `true`/`false`.
fn parse_option_text(parser: &mut Parser<'_>) -> Result<String> {
    let token = parser.next_token();
    match &token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s.clone()),
        Token::Number(n, _) => Ok(n.clone()),
        Token::Word(w) => Ok(w.value.clone()),
        _ => Err(SqlError::Syntax {
            message: format!(
                "expected a quoted option key or value, found {}",
                token.token
            ),
            location: location_of_token(&token),
        }),
    }
}

fn check_watermark_column(table: &TableDef) -> Result<()> {
    let Some(w) = &table.watermark else {
        return Ok(());
    };
    match table.columns.iter().find(|c| c.name == w.column) {
        Some(c) if matches!(c.data_type, DataType::Timestamp(..)) && !c.nullable => Ok(()),
        Some(c) if matches!(c.data_type, DataType::Timestamp(..)) => Err(SqlError::Plan {
            message: format!(
                "WATERMARK column `{}` must be NOT NULL: a row without an event time belongs to no window",
                c.name
            ),
            location: w.location,
        }),
        Some(c) => Err(SqlError::Plan {
            message: format!(
                "WATERMARK column `{}` must be a TIMESTAMP, not {}",
                c.name, c.data_type
            ),
            location: w.location,
        }),
        None => Err(SqlError::Plan {
            message: format!(
                "WATERMARK FOR unknown column `{}` in table `{}`",
                w.column, table.name
            ),
            location: w.location,
        }),
    }
}

fn expect_keywords(parser: &mut Parser<'_>, keywords: &[Keyword]) -> Result<()> {
    for k in keywords {
        parser.expect_keyword(*k).map_err(parser_error)?;
    }
    Ok(())
}

fn is_word(parser: &Parser<'_>, word: &str) -> bool {
    matches!(&parser.peek_token_ref().token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
}

fn plan_at(parser: &Parser<'_>, message: &str) -> SqlError {
    SqlError::Plan {
        message: message.to_string(),
        location: location_of_token(&parser.peek_token()),
    }
}
