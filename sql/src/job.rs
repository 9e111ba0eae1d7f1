//! A job's text → its statements: tables (`CREATE TABLE`), named queries
//! (`CREATE VIEW name AS SELECT …`), pipelines (`INSERT INTO sink SELECT …`)
//! and settings (`SET key = value`).
//!
//! A view is not a table: each INSERT that follows gets the views declared
//! before it as common table expressions (`WITH name AS (…)`), so DataFusion
//! inlines them and several INSERTs can share one definition.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    Cte, Ident, Query, Statement, TableAlias, TableObject, With,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::ddl::{TableDef, parse_create_table};
use crate::env::{Substituted, substitute_with};
use crate::error::{Location, Result, SqlError};
use crate::parse::{DIALECT, location_of_token, parser_error, split_statements};

/// `INSERT INTO sink SELECT …`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertDef {
    /// The sink table.
    pub sink: String,
    /// The query feeding it.
    pub query: Box<Query>,
    /// Where the statement starts.
    pub location: Location,
}

/// One statement of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatement {
    /// A source or sink declaration.
    CreateTable(TableDef),
    /// A pipeline.
    Insert(InsertDef),
    /// `CREATE VIEW name AS query`: a named query later INSERTs can read.
    View {
        /// The view's name.
        name: String,
        /// Its query.
        query: Box<Query>,
        /// Where the statement starts.
        location: Location,
    },
    /// `SET key = value`: a job setting.
    Set {
        /// Setting name.
        key: String,
        /// Its value, unquoted.
        value: String,
        /// Where.
        location: Location,
    },
}

/// A parsed job: its statements, and its text after substitution.
#[derive(Debug, Clone)]
pub struct Job {
    /// Statements in order.
    pub statements: Vec<JobStatement>,
    /// The text as parsed (secrets included: do not log; see [`Substituted::masked`]).
    pub text: Substituted,
}

impl Job {
    /// Substitutes `${VAR}`s from the environment and parses. Error
    /// locations point into `text` as the user wrote it.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// As [`Job::parse`] with a caller-supplied environment.
    pub fn parse_with_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let substituted = substitute_with(text, env)?;
        let mut statements =
            parse_statements(&substituted.text).map_err(|e| substituted.relocate(e))?;
        inline_views(&mut statements).map_err(|e| substituted.relocate(e))?;
        Ok(Self {
            statements,
            text: substituted,
        })
    }

    /// The declared tables.
    pub fn tables(&self) -> impl Iterator<Item = &TableDef> {
        self.statements.iter().filter_map(|s| match s {
            JobStatement::CreateTable(t) => Some(t),
            _ => None,
        })
    }

    /// Replaces the `WITH` options of table `name`, e.g. to swap a source's
    /// connector for the in-process simulator. Returns false if no such table.
    pub fn replace_options(&mut self, name: &str, options: &[(&str, &str)]) -> Result<bool> {
        for statement in &mut self.statements {
            if let JobStatement::CreateTable(table) = statement
                && table.name == name
            {
                let mut replaced = crate::ddl::Options::new(name, table.location);
                for (key, value) in options {
                    let value = crate::ddl::OptionValue {
                        value: value.to_string(),
                        location: table.location,
                    };
                    replaced.insert(key.to_string(), value)?;
                }
                table.options = replaced;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The pipelines.
    pub fn inserts(&self) -> impl Iterator<Item = &InsertDef> {
        self.statements.iter().filter_map(|s| match s {
            JobStatement::Insert(i) => Some(i),
            _ => None,
        })
    }
}

impl Substituted {
    /// Moves an error's location from the substituted text to the user's.
    pub fn relocate(&self, error: SqlError) -> SqlError {
        let at = error.location();
        let offset = offset_of(&self.text, at);
        error.relocated(self.original_location(offset))
    }
}

/// Byte offset of a line and (character) column.
fn offset_of(text: &str, at: Location) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(at.line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line = &text[line_start.min(text.len())..];
    let column: usize = line
        .chars()
        .take(at.column.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    line_start + column
}

fn parse_statements(text: &str) -> Result<Vec<JobStatement>> {
    split_statements(text)?
        .into_iter()
        .map(parse_statement)
        .collect()
}

fn parse_statement(tokens: Vec<TokenWithSpan>) -> Result<JobStatement> {
    let location = tokens
        .first()
        .map(location_of_token)
        .unwrap_or(Location { line: 1, column: 1 });
    let mut parser = Parser::new(&DIALECT).with_tokens_with_locations(tokens);
    if is_create_table(&parser) {
        return parse_create_table(&mut parser)
            .and_then(|t| expect_end(&parser).map(|()| JobStatement::CreateTable(t)));
    }
    let statement = parser.parse_statement().map_err(parser_error)?;
    expect_end(&parser)?;
    match statement {
        Statement::Insert(insert) => {
            let sink = match &insert.table {
                TableObject::TableName(name) => name.to_string(),
                other => return Err(plan(location, format!("cannot INSERT INTO {other}"))),
            };
            let query = insert
                .source
                .ok_or_else(|| plan(location, "INSERT needs a SELECT".into()))?;
            Ok(JobStatement::Insert(InsertDef {
                sink,
                query,
                location,
            }))
        }
        Statement::Set(set) => parse_set(set.to_string(), location),
        Statement::CreateView(view) => {
            if !view.columns.is_empty() || view.materialized {
                return Err(plan(
                    location,
                    "CREATE VIEW takes no column list and is not materialized: \
                     name the columns in its SELECT"
                        .into(),
                ));
            }
            Ok(JobStatement::View {
                name: view.name.to_string(),
                query: view.query,
                location,
            })
        }
        Statement::Query(_) => Err(plan(
            location,
            "a job's queries must write somewhere: INSERT INTO <sink> SELECT …".into(),
        )),
        other => Err(plan(
            location,
            format!(
                "unsupported statement in a job: {}",
                first_words(&other.to_string())
            ),
        )),
    }
}

/// Gives every INSERT the views declared before it as leading CTEs.
fn inline_views(statements: &mut [JobStatement]) -> Result<()> {
    let mut views: Vec<Cte> = Vec::new();
    let tables: Vec<String> = statements
        .iter()
        .filter_map(|s| match s {
            JobStatement::CreateTable(t) => Some(t.name.clone()),
            _ => None,
        })
        .collect();
    for statement in statements.iter_mut() {
        match statement {
            JobStatement::View {
                name,
                query,
                location,
            } => {
                if tables.contains(name) || views.iter().any(|v| v.alias.name.value == *name) {
                    return Err(plan(*location, format!("`{name}` is declared twice")));
                }
                views.push(Cte {
                    alias: TableAlias {
                        explicit: false,
                        name: Ident::new(name.clone()),
                        columns: Vec::new(),
                        at: None,
                    },
                    query: query.clone(),
                    from: None,
                    materialized: None,
                    closing_paren_token: AttachedToken::empty(),
                });
            }
            JobStatement::Insert(insert) if !views.is_empty() => {
                let with = insert.query.with.get_or_insert_with(|| With {
                    with_token: AttachedToken::empty(),
                    recursive: false,
                    cte_tables: Vec::new(),
                });
                let own = std::mem::take(&mut with.cte_tables);
                with.cte_tables = views.iter().cloned().chain(own).collect();
            }
            _ => {}
        }
    }
    Ok(())
}

/// `SET key = value` / `SET key TO value`.
fn parse_set(text: String, location: Location) -> Result<JobStatement> {
    let body = text.trim_start_matches("SET ").trim();
    let (key, value) = body
        .split_once(" = ")
        .or_else(|| body.split_once(" TO "))
        .ok_or_else(|| plan(location, format!("cannot read setting `{text}`")))?;
    let value = value.trim().trim_matches('\'').to_string();
    Ok(JobStatement::Set {
        key: key.trim().to_string(),
        value,
        location,
    })
}

fn is_create_table(parser: &Parser<'_>) -> bool {
    let first = parser.peek_token_ref();
    let is = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k);
    is(first, Keyword::CREATE) && is(&parser.peek_nth_token(1), Keyword::TABLE)
}

fn expect_end(parser: &Parser<'_>) -> Result<()> {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        Ok(())
    } else {
        Err(SqlError::Syntax {
            message: format!("unexpected {} (missing `;`?)", next.token),
            location: location_of_token(&next),
        })
    }
}

fn plan(location: Location, message: String) -> SqlError {
    SqlError::Plan { message, location }
}

fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const JOB: &str = "
        CREATE TABLE s (id VARCHAR NOT NULL, v DOUBLE);
        CREATE TABLE a (id VARCHAR, v DOUBLE) WITH ('connector' = 'console');
        CREATE VIEW big AS SELECT id, v FROM s WHERE v > 10;
        CREATE VIEW bigger AS SELECT id, v * 2 AS v FROM big;
        INSERT INTO a SELECT * FROM bigger;
        INSERT INTO a WITH mine AS (SELECT * FROM big) SELECT * FROM mine;";

    #[test]
    fn every_insert_gets_the_views_declared_before_it_as_leading_ctes() {
        let job = Job::parse_with_env(JOB, |_| None).unwrap();
        let ctes: Vec<Vec<String>> = job
            .inserts()
            .map(|i| {
                let with = i.query.with.as_ref().unwrap();
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.clone())
                    .collect()
            })
            .collect();
        assert_eq!(ctes, [vec!["big", "bigger"], vec!["big", "bigger", "mine"]]);
    }

    #[test]
    fn a_view_named_like_a_table_is_an_error_at_its_line() {
        let text = "CREATE TABLE s (v DOUBLE);\nCREATE VIEW s AS SELECT v FROM s;";
        let error = Job::parse_with_env(text, |_| None).unwrap_err().to_string();
        assert!(error.contains("`s` is declared twice"), "{error}");
        assert!(error.contains("2:1"), "{error}");
    }
}
