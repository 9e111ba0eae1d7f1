//! A parsed [`Job`] → a [`JobPlan`]: which tables are sources and sinks, and
//! for each `INSERT` a DataFusion logical plan, its window, and a final
//! projection that casts the result to the sink's columns by position.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::empty::EmptyTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, cast, col};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::ddl::TableDef;
use crate::error::{Location, Result, SqlError};
use crate::job::{InsertDef, Job, JobStatement};
use crate::window::{WINDOW_END, WINDOW_START, WindowSpec, extract_window};

/// One `INSERT INTO sink SELECT … FROM source`.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// The sink table's name.
    pub sink: String,
    /// The source table's name.
    pub source: String,
    /// The window of a windowed aggregation.
    pub window: Option<WindowSpec>,
    /// The query, ending in a projection onto the sink's columns.
    pub plan: LogicalPlan,
    /// Where the INSERT is.
    pub location: Location,
}

/// Everything a job declares and computes.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Tables read by at least one pipeline.
    pub sources: Vec<TableDef>,
    /// Tables written by at least one pipeline.
    pub sinks: Vec<TableDef>,
    /// The pipelines, in job order.
    pub pipelines: Vec<PipelinePlan>,
    /// `SET` statements, in order.
    pub settings: Vec<(String, String, Location)>,
}

/// Plans every pipeline of `job` in `ctx`. Errors carry the user's positions.
pub async fn plan_job(job: &Job, ctx: &SessionContext) -> Result<JobPlan> {
    plan_statements(job, ctx)
        .await
        .map_err(|e| job.text.relocate(e))
}

async fn plan_statements(job: &Job, ctx: &SessionContext) -> Result<JobPlan> {
    let tables = declared_tables(job)?;
    let sink_names: Vec<&str> = job.inserts().map(|i| i.sink.as_str()).collect();
    let mut pipelines = Vec::new();
    for insert in job.inserts() {
        let sink = tables.get(&insert.sink).ok_or_else(|| SqlError::Plan {
            message: format!(
                "INSERT INTO unknown table `{}`; declare it with CREATE TABLE",
                insert.sink
            ),
            location: insert.location,
        })?;
        pipelines.push(plan_insert(insert, sink, &tables, &sink_names, ctx).await?);
    }
    if pipelines.is_empty() {
        return Err(SqlError::Plan {
            message: "the job has no INSERT INTO … SELECT, so it computes nothing".into(),
            location: Location { line: 1, column: 1 },
        });
    }
    let used = |name: &str, f: fn(&PipelinePlan) -> &str| pipelines.iter().any(|p| f(p) == name);
    Ok(JobPlan {
        sources: tables
            .values()
            .filter(|t| used(&t.name, |p| &p.source))
            .cloned()
            .collect(),
        sinks: tables
            .values()
            .filter(|t| used(&t.name, |p| &p.sink))
            .cloned()
            .collect(),
        settings: job
            .statements
            .iter()
            .filter_map(|s| match s {
                JobStatement::Set {
                    key,
                    value,
                    location,
                } => Some((key.clone(), value.clone(), *location)),
                _ => None,
            })
            .collect(),
        pipelines,
    })
}

fn declared_tables(job: &Job) -> Result<BTreeMap<String, TableDef>> {
    let mut tables = BTreeMap::new();
    for table in job.tables() {
        if tables.insert(table.name.clone(), table.clone()).is_some() {
            return Err(SqlError::Plan {
                message: format!("table `{}` is declared twice", table.name),
                location: table.location,
            });
        }
    }
    Ok(tables)
}

async fn plan_insert(
    insert: &InsertDef,
    sink: &TableDef,
    tables: &BTreeMap<String, TableDef>,
    sink_names: &[&str],
    ctx: &SessionContext,
) -> Result<PipelinePlan> {
    let mut query = insert.query.clone();
    let window = extract_window(&mut query, insert.location)?;
    register_sources(ctx, tables, sink_names, window.is_some())?;
    let statement = DfStatement::Statement(Box::new(Statement::Query(query)));
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(|e| datafusion_error(e, insert.location))?;
    let source = single_source(&plan, tables, sink_names, insert)?;
    if let Some(window) = &window {
        check_window_time_column(window, &tables[&source], insert.location)?;
    }
    let plan = project_onto_sink(plan, sink, insert.location)?;
    Ok(PipelinePlan {
        sink: sink.name.clone(),
        source,
        window,
        plan,
        location: insert.location,
    })
}

/// Plans a bare `SELECT` over `sources` (no sink, no final cast): for tests
/// and ad-hoc streaming queries. `location` is where the query starts.
pub async fn plan_query(
    query: &datafusion::sql::sqlparser::ast::Query,
    sources: &[TableDef],
    location: Location,
    ctx: &SessionContext,
) -> Result<PipelinePlan> {
    let tables: BTreeMap<String, TableDef> = sources
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let mut query = Box::new(query.clone());
    let window = extract_window(&mut query, location)?;
    register_sources(ctx, &tables, &[], window.is_some())?;
    let statement = DfStatement::Statement(Box::new(Statement::Query(query.clone())));
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(|e| datafusion_error(e, location))?;
    let insert = InsertDef {
        sink: String::new(),
        query,
        location,
    };
    let source = single_source(&plan, &tables, &[], &insert)?;
    if let Some(window) = &window {
        check_window_time_column(window, &tables[&source], location)?;
    }
    Ok(PipelinePlan {
        sink: String::new(),
        source,
        window,
        plan,
        location,
    })
}

/// Registers every table that is not a sink, with the window columns when
/// the query is windowed.
fn register_sources(
    ctx: &SessionContext,
    tables: &BTreeMap<String, TableDef>,
    sink_names: &[&str],
    windowed: bool,
) -> Result<()> {
    for table in tables
        .values()
        .filter(|t| !sink_names.contains(&t.name.as_str()))
    {
        let schema = source_schema(table, windowed);
        let _ = ctx.deregister_table(table.name.as_str());
        ctx.register_table(table.name.as_str(), Arc::new(EmptyTable::new(schema)))
            .map_err(|e| datafusion_error(e, table.location))?;
    }
    Ok(())
}

/// A source's schema as queries see it: its columns, plus `window_start` and
/// `window_end` (typed like the event-time column) for windowed queries.
pub fn source_schema(table: &TableDef, windowed: bool) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if windowed {
        let time_type = table
            .watermark
            .as_ref()
            .and_then(|w| table.columns.iter().find(|c| c.name == w.column))
            .map(|c| c.data_type.clone())
            .unwrap_or(DataType::Timestamp(
                arrow::datatypes::TimeUnit::Millisecond,
                Some("UTC".into()),
            ));
        fields.push(Field::new(WINDOW_START, time_type.clone(), false));
        fields.push(Field::new(WINDOW_END, time_type, false));
    }
    Arc::new(Schema::new(fields))
}

fn single_source(
    plan: &LogicalPlan,
    tables: &BTreeMap<String, TableDef>,
    sink_names: &[&str],
    insert: &InsertDef,
) -> Result<String> {
    let mut scanned = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scanned.push(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scanned.dedup();
    let fail = |message: String| SqlError::Plan {
        message,
        location: insert.location,
    };
    match scanned.as_slice() {
        [one] if sink_names.contains(&one.as_str()) => Err(fail(format!(
            "`{one}` is written by an INSERT, so it cannot also be read as a source"
        ))),
        [one] if tables.contains_key(one) => Ok(one.clone()),
        [] => Err(fail("the query reads no source table".into())),
        [one] => Err(fail(format!("unknown table `{one}`"))),
        many => Err(fail(format!(
            "a pipeline reads one source; this one reads {}",
            many.join(", ")
        ))),
    }
}

fn check_window_time_column(
    window: &WindowSpec,
    source: &TableDef,
    location: Location,
) -> Result<()> {
    let fail = |message: String| Err(SqlError::Plan { message, location });
    match &source.watermark {
        None => fail(format!(
            "windows run on event time: declare `WATERMARK FOR {} AS {} - INTERVAL '5' SECOND` on `{}`",
            window.time_column, window.time_column, source.name
        )),
        Some(w) if w.column != window.time_column => fail(format!(
            "the window is on `{}` but `{}`'s watermark is on `{}`",
            window.time_column, source.name, w.column
        )),
        Some(_) => Ok(()),
    }
}

/// Casts the query's columns to the sink's, by position, named as the sink's.
fn project_onto_sink(
    plan: LogicalPlan,
    sink: &TableDef,
    location: Location,
) -> Result<LogicalPlan> {
    let output = plan.schema().clone();
    if output.fields().len() != sink.columns.len() {
        return Err(SqlError::Plan {
            message: format!(
                "the query returns {} columns but sink `{}` has {} ({})",
                output.fields().len(),
                sink.name,
                sink.columns.len(),
                sink.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            location,
        });
    }
    let exprs = output
        .columns()
        .into_iter()
        .zip(&sink.columns)
        .map(|(column, target)| cast(col(column), target.data_type.clone()).alias(&target.name))
        .collect::<Vec<_>>();
    LogicalPlanBuilder::from(plan)
        .project(exprs)
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| datafusion_error(e, location))
}

/// A DataFusion planning error, at its diagnostic span when it has one.
pub fn datafusion_error(error: DataFusionError, fallback: Location) -> SqlError {
    let location = error
        .diagnostic()
        .and_then(|d| d.span)
        .filter(|s| s.start.line > 0)
        .map(|s| Location {
            line: s.start.line as usize,
            column: s.start.column as usize,
        })
        .unwrap_or(fallback);
    // The root error says the most ("No field named x. Valid fields are …").
    let message = error.find_root().strip_backtrace();
    SqlError::Plan { message, location }
}
