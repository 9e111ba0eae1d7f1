//! The sqllogictest database: a streaming engine fed from memory.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use spindle_engine::job::validate_table;
use spindle_engine::plan::{CompiledPipeline, time_column};
use spindle_engine::watermark::WatermarkTracker;
use spindle_engine::window::assign::millis_to_unit;
use spindle_sql::ddl::TableDef;
use spindle_sql::job::JobStatement;
use sqllogictest::{DBOutput, DefaultColumnType};

/// Errors are plain messages: `statement error <regex>` matches them.
#[derive(Debug)]
pub(crate) struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn err(e: impl std::fmt::Display) -> SltError {
    SltError(e.to_string())
}

/// Tables, their inserted rows, and test settings.
pub(crate) struct StreamingDb {
    tables: Vec<TableDef>,
    batch: SessionContext,
    batch_rows: usize,
    lateness_ms: i64,
    last_late: u64,
    dir: tempfile::TempDir,
    models: Option<std::path::PathBuf>,
}

impl StreamingDb {
    pub(crate) fn new() -> Self {
        Self {
            tables: Vec::new(),
            batch: SessionContext::new(),
            batch_rows: 3,
            lateness_ms: 0,
            last_late: 0,
            dir: tempfile::tempdir().expect("temp dir"),
            models: None,
        }
    }

    fn create_table(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let text = sql.replace("${TMP}", &self.dir.path().display().to_string());
        let job = spindle_sql::Job::parse(&text).map_err(err)?;
        for statement in job.statements {
            let JobStatement::CreateTable(table) = statement else {
                continue;
            };
            if table.options.peek("connector").is_some() {
                validate_table(&table).map_err(err)?;
            }
            let schema = Arc::new(table.schema());
            let memory = MemTable::try_new(schema, vec![vec![]]).map_err(err)?;
            self.batch
                .register_table(table.name.as_str(), Arc::new(memory))
                .map_err(err)?;
            self.tables.push(table);
        }
        Ok(DBOutput::StatementComplete(0))
    }

    async fn insert(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let frame = self.batch.sql(sql).await.map_err(err)?;
        let result = frame.collect().await.map_err(err)?;
        let count = result.first().and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .map(|a| a.value(0))
        });
        Ok(DBOutput::StatementComplete(count.unwrap_or(0)))
    }

    fn set(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let body = sql.trim().trim_end_matches(';');
        let (key, value) = body[3..]
            .split_once('=')
            .ok_or_else(|| err("SET key = value"))?;
        let value = value.trim().trim_matches('\'');
        match key.trim() {
            "spindle.test.batch_rows" => {
                self.batch_rows = value.parse::<usize>().map_err(err)?.max(1)
            }
            // The model directory, relative to tests/.
            "spindle.models.dir" => {
                self.models = Some(spindle_tests::services::tests_dir().join(value));
            }
            "spindle.window.allowed_lateness" => {
                self.lateness_ms =
                    humantime::parse_duration(value).map_err(err)?.as_millis() as i64;
            }
            other => return Err(err(format!("unknown setting {other}"))),
        }
        Ok(DBOutput::StatementComplete(0))
    }

    async fn stream(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        if sql.contains("spindle_late()") {
            let rows = vec![vec![self.last_late.to_string()]];
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Integer],
                rows,
            });
        }
        let statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(err)?;
        let Some(Statement::Query(query)) = statements.into_iter().next() else {
            return Err(err("expected a SELECT"));
        };
        let ctx = spindle_sql::context::new_session();
        if let Some(dir) = &self.models {
            let store = spindle_anomaly::trained::store::ModelStore::new(dir);
            spindle_anomaly::trained::udf::register(&ctx, Arc::new(store));
        }
        let location = spindle_sql::Location { line: 1, column: 1 };
        let plan = spindle_sql::planner::plan_query(&query, &self.tables, location, &ctx)
            .await
            .map_err(err)?;
        let source = self
            .tables
            .iter()
            .find(|t| t.name == plan.source)
            .ok_or_else(|| err("no source"))?
            .clone();
        let mut pipeline = CompiledPipeline::compile(&plan, &source, self.lateness_ms, &ctx)
            .await
            .map_err(err)?;
        let input = self.input_batches(&source.name).await?;
        let mut tracker = watermark_tracker(&source)?;
        let mut out = Vec::new();
        self.last_late = 0;
        for batch in input {
            let now = std::time::Instant::now();
            let produced = pipeline
                .process(0, &batch, tracker.watermark(now))
                .await
                .map_err(err)?;
            self.last_late += produced.late.map_or(0, |l| l.num_rows() as u64);
            out.extend(produced.rows);
            if let Some((column, _)) = time_column_of(&source) {
                let times =
                    arrow::compute::cast(batch.column(column), &DataType::Int64).map_err(err)?;
                let ints = times
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .ok_or_else(|| err("time"))?;
                if let Some(max) = arrow::compute::max(ints) {
                    tracker.observe(0, max, now);
                }
            }
            let closed = pipeline
                .advance(tracker.watermark(now))
                .await
                .map_err(err)?;
            out.extend(closed.into_iter().map(|(_, rows)| rows));
        }
        let rest = pipeline.advance(i64::MAX).await.map_err(err)?;
        out.extend(rest.into_iter().map(|(_, rows)| rows));
        rows_output(&out)
    }

    /// The source's inserted rows, re-cut into micro-batches.
    async fn input_batches(&self, table: &str) -> Result<Vec<RecordBatch>, SltError> {
        let frame = self.batch.table(table).await.map_err(err)?;
        let batches = frame.collect().await.map_err(err)?;
        let Some(first) = batches.first() else {
            return Ok(Vec::new());
        };
        let all = arrow::compute::concat_batches(&first.schema(), &batches).map_err(err)?;
        Ok((0..all.num_rows())
            .step_by(self.batch_rows)
            .map(|start| all.slice(start, self.batch_rows.min(all.num_rows() - start)))
            .collect())
    }
}

fn time_column_of(table: &TableDef) -> Option<(usize, arrow::datatypes::TimeUnit)> {
    table
        .watermark
        .as_ref()
        .and_then(|w| time_column(table, &w.column).ok())
}

fn watermark_tracker(table: &TableDef) -> Result<WatermarkTracker, SltError> {
    let delay = match (&table.watermark, time_column_of(table)) {
        (Some(w), Some((_, unit))) => millis_to_unit(w.delay.as_millis() as i64, unit),
        _ => 0,
    };
    Ok(WatermarkTracker::new(
        delay,
        std::time::Duration::from_secs(3600),
    ))
}

fn rows_output(batches: &[RecordBatch]) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let Some(first) = batches.first() else {
        return Ok(DBOutput::Rows {
            types: vec![],
            rows: vec![],
        });
    };
    let types = first
        .schema()
        .fields()
        .iter()
        .map(|f| column_type(f.data_type()))
        .collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| format_value(&f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(DBOutput::Rows { types, rows })
}

/// Floats are rounded to 6 decimals so results do not hang on the last bit.
fn format_value(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(v) if text.contains('.') || text.contains('e') => {
            let rounded = format!("{v:.6}");
            rounded
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
        _ => text.to_string(),
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt64 => {
            DefaultColumnType::Integer
        }
        DataType::Float32 | DataType::Float64 => DefaultColumnType::FloatingPoint,
        DataType::Utf8 => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for StreamingDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let head = sql.trim_start().to_ascii_uppercase();
        if head.starts_with("CREATE TABLE") {
            self.create_table(sql)
        } else if head.starts_with("INSERT") {
            self.insert(sql).await
        } else if head.starts_with("SET") {
            self.set(sql)
        } else {
            self.stream(sql).await
        }
    }

    fn engine_name(&self) -> &str {
        "spindle"
    }

    async fn shutdown(&mut self) {}
}
