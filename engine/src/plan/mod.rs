//! From a planned pipeline (DataFusion logical plan) to something that runs
//! micro-batch by micro-batch.
//!
//! A stateless pipeline is one physical plan over a [`slot::SlotExec`] leaf,
//! executed once per micro-batch. A windowed pipeline is cut at its
//! `AggregateExec`: the part below (filters, projections, scalar functions)
//! runs per micro-batch as above; the aggregate itself is replaced by a
//! [`crate::window::WindowOperator`] built from the same DataFusion
//! accumulators; the part above (HAVING, projections) runs over each batch of
//! closed windows.

pub mod over;
mod over_needs;
mod partitioned;
pub mod slot;
pub mod state_shape;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, collect};
use spindle_sql::PipelinePlan;
use spindle_sql::ddl::TableDef;
use spindle_sql::planner::source_schema;
use spindle_sql::window::{WindowKind, WindowSpec};

use crate::window::assign::{Shape, WindowAssigner, millis_to_unit};
use crate::window::fixed::FixedWindows;
use crate::window::session::SessionWindows;
use crate::window::{AggregateSpec, GroupLayout, WindowOperator};
pub use partitioned::Tagged;
use partitioned::{Over, Windowed};
use slot::{Slot, SlotExec, SlotTable};
use state_shape::StateShape;

/// What one micro-batch produced.
#[derive(Debug, Default)]
pub struct Produced {
    /// Rows for the sink.
    pub rows: Vec<RecordBatch>,
    /// Late rows (source columns plus `window_start`, `window_end`).
    pub late: Option<RecordBatch>,
}

/// A pipeline ready to run.
#[derive(Debug)]
pub struct CompiledPipeline {
    /// The sink's name.
    pub sink: String,
    /// The source's name.
    pub source: String,
    input: Slot,
    task: Arc<TaskContext>,
    stage: Stage,
    /// What its state depends on, and that as JSON (stored with every
    /// snapshot batch).
    shape: StateShape,
    shape_json: String,
    /// Where its INSERT is, for messages.
    location: spindle_sql::Location,
}

#[derive(Debug)]
enum Stage {
    Stateless(Arc<dyn ExecutionPlan>),
    Windowed(Box<Windowed>),
    Over(Box<Over>),
}

/// Operators that would need all of an unbounded input before emitting.
const BLOCKING: [(&str, &str); 6] = [
    (
        "SortExec",
        "ORDER BY needs a window: sort within windowed results",
    ),
    ("SortPreservingMergeExec", "ORDER BY needs a window"),
    ("GlobalLimitExec", "LIMIT is not supported on a stream"),
    ("HashJoinExec", "joining streams is not supported yet"),
    ("NestedLoopJoinExec", "joining streams is not supported yet"),
    (
        "WindowAggExec",
        "OVER (…) and a GROUP BY window cannot share one INSERT yet: compute the OVER \
         features in an INSERT of their own",
    ),
];

impl CompiledPipeline {
    /// Plans `pipeline` physically in `ctx` against its source table.
    pub async fn compile(
        pipeline: &PipelinePlan,
        source: &TableDef,
        lateness_ms: i64,
        ctx: &SessionContext,
    ) -> Result<Self> {
        let input = Slot::default();
        let schema = source_schema(source, pipeline.window.is_some());
        let table = Arc::new(SlotTable::new(Arc::clone(&schema), input.clone()));
        let logical = scan_from(pipeline.plan.clone(), &source.name, table)?;
        tracing::debug!(plan = %logical.display_indent(), "pipeline logical plan");
        let physical = ctx.state().create_physical_plan(&logical).await?;
        let mut shape = StateShape::of(pipeline)?;
        if pipeline.window.is_some() {
            shape.state_widths = state_widths(&physical)?;
        }
        let stage = match &pipeline.window {
            None if over::has_window_functions(&physical)? => {
                Stage::Over(Box::new(split_over(physical, source, ctx.task_ctx())?))
            }
            None => {
                reject_blocking(&physical, true)?;
                Stage::Stateless(physical)
            }
            Some(window) => {
                let assigner = assigner(window, source, schema, lateness_ms)?;
                Stage::Windowed(Box::new(split_windowed(physical, window, &assigner)?))
            }
        };
        Ok(Self {
            sink: pipeline.sink.clone(),
            source: pipeline.source.clone(),
            input,
            task: ctx.task_ctx(),
            stage,
            shape_json: shape.to_json(),
            shape,
            location: pipeline.location,
        })
    }

    /// Runs one micro-batch of source rows from `partition`; `watermark`
    /// is the job watermark before this batch (event-time unit).
    pub async fn process(
        &mut self,
        partition: i32,
        batch: &RecordBatch,
        watermark: i64,
    ) -> Result<Produced> {
        let late = match &mut self.stage {
            Stage::Stateless(plan) => {
                self.input.fill(vec![batch.clone()]);
                return Ok(Produced {
                    rows: collect(Arc::clone(plan), Arc::clone(&self.task)).await?,
                    late: None,
                });
            }
            Stage::Windowed(w) => {
                let assigned = w.assigner.assign(batch, watermark)?;
                self.input.fill(vec![assigned.on_time]);
                let rows = collect(Arc::clone(&w.pre), Arc::clone(&self.task)).await?;
                let operator = w.operator(partition)?;
                for rows in rows {
                    operator.process(&rows)?;
                }
                assigned.late
            }
            Stage::Over(o) => {
                let time_column = o.time_column;
                let parts = o.parts(partition, &self.task)?;
                let released = parts.operator.released();
                let split = crate::window::over::split_late(batch, time_column, released)?;
                self.input.fill(vec![split.on_time]);
                let rows = collect(Arc::clone(&o.pre), Arc::clone(&self.task)).await?;
                let parts = o.parts(partition, &self.task)?;
                for rows in rows {
                    parts.operator.buffer(rows)?;
                }
                split.late
            }
        };
        Ok(Produced {
            rows: Vec::new(),
            late: (late.num_rows() > 0).then_some(late),
        })
    }

    /// Emits every window the watermark has passed (and, for `OVER`
    /// pipelines, the rows it released), tagged with their partition.
    pub async fn advance(&mut self, watermark: i64) -> Result<Vec<Tagged>> {
        match &mut self.stage {
            Stage::Stateless(_) => Ok(Vec::new()),
            Stage::Windowed(w) => w.advance(watermark, &self.task).await,
            Stage::Over(o) => o.advance(watermark, &self.task).await,
        }
    }

    /// Open windows and approximate state bytes (0 for stateless pipelines).
    pub fn state(&self) -> (usize, usize) {
        match &self.stage {
            Stage::Stateless(_) => (0, 0),
            Stage::Windowed(w) => w.operators.values().fold((0, 0), |(n, b), o| {
                (n + o.open_windows(), b + o.state_size())
            }),
            Stage::Over(o) => (0, o.parts.values().map(|p| p.operator.pending_rows()).sum()),
        }
    }

    /// The oldest event time whose rows may not be in the output yet
    /// (`None`: every row processed so far has been emitted).
    pub fn oldest_held(&self) -> Option<i64> {
        match &self.stage {
            Stage::Stateless(_) => None,
            Stage::Windowed(w) => w.operators.values().filter_map(|o| o.oldest_held()).min(),
            Stage::Over(o) => o
                .parts
                .values()
                .filter_map(|p| p.operator.oldest_held())
                .min(),
        }
    }

    /// `partition`'s state, for a checkpoint, each batch carrying the
    /// pipeline's [`StateShape`] in its schema metadata.
    pub fn snapshot(&mut self, partition: i32) -> Result<Vec<RecordBatch>> {
        let batches = self.operator_snapshot(partition)?;
        batches
            .into_iter()
            .map(|b| state_shape::with_shape(b, &self.shape_json))
            .collect()
    }

    /// What the pipeline's state depends on.
    pub fn shape(&self) -> &StateShape {
        &self.shape
    }

    /// Where the pipeline's INSERT is in the job's text.
    pub fn location(&self) -> spindle_sql::Location {
        self.location
    }

    fn operator_snapshot(&mut self, partition: i32) -> Result<Vec<RecordBatch>> {
        match &mut self.stage {
            Stage::Stateless(_) => Ok(Vec::new()),
            Stage::Windowed(w) => match w.operators.get_mut(&partition) {
                Some(operator) => operator.snapshot(),
                None => Ok(Vec::new()),
            },
            Stage::Over(o) => match o.parts.get(&partition) {
                Some(parts) => parts.operator.snapshot(),
                None => Ok(Vec::new()),
            },
        }
    }

    /// Replaces `partition`'s state with a checkpointed one whose windows
    /// were closed up to `closed_through`. Whether the state fits this
    /// pipeline's SQL is the caller's check (`job::upgrade`); state without
    /// rows restores as none.
    pub fn restore(
        &mut self,
        partition: i32,
        state: &[RecordBatch],
        closed_through: i64,
    ) -> Result<()> {
        self.forget(partition);
        let state = match state.iter().all(|b| b.num_rows() == 0) {
            true => Vec::new(),
            false => state
                .iter()
                .map(state_shape::without_shape)
                .collect::<Result<Vec<_>>>()?,
        };
        let state = &state[..];
        match &mut self.stage {
            Stage::Stateless(_) => Ok(()),
            Stage::Windowed(w) => w.operator(partition)?.restore(state),
            Stage::Over(o) => {
                let released = o.released.max(closed_through);
                let parts = o.parts(partition, &self.task)?;
                let not_carried = parts.operator.not_carried();
                if !not_carried.is_empty() && !state.is_empty() {
                    tracing::warn!(
                        partition,
                        functions = ?not_carried,
                        "these OVER functions keep state no frame bounds: after the restore they \
                         restart from the rows their frames still reach"
                    );
                }
                parts.operator.restore(state, released)
            }
        }
    }

    /// Drops `partition`'s state (it moved to another worker).
    pub fn forget(&mut self, partition: i32) {
        match &mut self.stage {
            Stage::Stateless(_) => {}
            Stage::Windowed(w) => {
                w.operators.remove(&partition);
            }
            Stage::Over(o) => {
                o.parts.remove(&partition);
            }
        }
    }

    /// Whether the pipeline holds rows until the watermark passes them.
    pub fn is_windowed(&self) -> bool {
        !matches!(self.stage, Stage::Stateless(_))
    }
}

/// Points the plan's scans of `table_name` at `table` (planning used a
/// schema-only stand-in).
fn scan_from(plan: LogicalPlan, table_name: &str, table: Arc<SlotTable>) -> Result<LogicalPlan> {
    let source = provider_as_source(table);
    let rewritten = plan.transform_up(|node| match node {
        LogicalPlan::TableScan(mut scan) if scan.table_name.table() == table_name => {
            scan.source = Arc::clone(&source);
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(rewritten.data)
}

/// The event-time column's position and unit in a source.
pub fn time_column(source: &TableDef, column: &str) -> Result<(usize, TimeUnit)> {
    let index = source
        .columns
        .iter()
        .position(|c| c.name == column)
        .ok_or_else(|| {
            DataFusionError::Plan(format!("no column `{column}` in `{}`", source.name))
        })?;
    match &source.columns[index].data_type {
        DataType::Timestamp(unit, _) => Ok((index, *unit)),
        other => Err(DataFusionError::Plan(format!(
            "`{column}` is {other}, not a TIMESTAMP"
        ))),
    }
}

fn assigner(
    window: &WindowSpec,
    source: &TableDef,
    schema: SchemaRef,
    lateness_ms: i64,
) -> Result<WindowAssigner> {
    let (index, unit) = time_column(source, &window.time_column)?;
    let shape = Shape::new(window, unit);
    Ok(WindowAssigner::new(
        shape,
        index,
        millis_to_unit(lateness_ms, unit),
        schema,
    ))
}

fn split_over(
    physical: Arc<dyn ExecutionPlan>,
    source: &TableDef,
    task: Arc<TaskContext>,
) -> Result<Over> {
    let watermark = source.watermark.as_ref().ok_or_else(|| {
        DataFusionError::Plan(format!(
            "OVER (…) on a stream runs in event-time order: declare WATERMARK FOR a \
             timestamp column of `{}`",
            source.name
        ))
    })?;
    let (time_column, _) = time_column(source, &watermark.column)?;
    let parts = over::split(Arc::clone(&physical), &watermark.column, task)?;
    if over::has_window_functions(&parts.pre)? || over::has_window_functions(&parts.post)? {
        return Err(DataFusionError::Plan(
            "OVER (…) windows in several branches of one INSERT (UNION, joins) are not \
             supported on a stream; use an INSERT per branch"
                .into(),
        ));
    }
    reject_blocking(&parts.pre, true)?;
    reject_blocking(&parts.post, true)?;
    Ok(Over {
        time_column,
        time_name: watermark.column.clone(),
        pre: Arc::clone(&parts.pre),
        physical,
        parts: std::collections::BTreeMap::new(),
        released: i64::MIN,
    })
}

fn split_windowed(
    physical: Arc<dyn ExecutionPlan>,
    window: &WindowSpec,
    assigner: &WindowAssigner,
) -> Result<Windowed> {
    let aggregate = find_aggregate(&physical)?;
    let layout = GroupLayout::of(&aggregate)?;
    let spec = AggregateSpec::new(
        aggregate.aggr_expr(),
        aggregate.filter_expr(),
        Arc::clone(&layout.key_schema),
    );
    let unit_lateness = assigner.lateness();
    let operator: Box<dyn WindowOperator> = match (window.kind, assigner.shape()) {
        (WindowKind::Session { .. }, Shape::Session { gap }) => Box::new(SessionWindows::new(
            layout,
            spec,
            aggregate.aggr_expr().to_vec(),
            gap,
            unit_lateness,
        )?),
        _ => Box::new(FixedWindows::new(layout, spec, unit_lateness)),
    };
    let closed = Slot::default();
    let output_schema = aggregate.schema();
    let pre = Arc::clone(aggregate.input());
    reject_blocking(&pre, false)?;
    let post = replace_aggregate(
        physical,
        SlotExec::new(output_schema, None, closed.clone())?,
    )?;
    if over::has_window_functions(&post)? {
        return Err(DataFusionError::Plan(BLOCKING[5].1.to_string()));
    }
    Ok(Windowed {
        assigner: assigner.clone(),
        pre,
        template: operator,
        operators: std::collections::BTreeMap::new(),
        closed,
        post,
    })
}

/// How many state columns each aggregate of a windowed plan keeps.
fn state_widths(plan: &Arc<dyn ExecutionPlan>) -> Result<Vec<usize>> {
    find_aggregate(plan)?
        .aggr_expr()
        .iter()
        .map(|a| Ok(a.state_fields()?.len()))
        .collect()
}

fn find_aggregate(plan: &Arc<dyn ExecutionPlan>) -> Result<AggregateExec> {
    let mut found: Option<AggregateExec> = None;
    plan.apply(|node| {
        if let Some(agg) = node.downcast_ref::<AggregateExec>() {
            found = Some(agg.clone());
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    let aggregate =
        found.ok_or_else(|| DataFusionError::Plan("a windowed query needs an aggregate".into()))?;
    match aggregate.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => Ok(aggregate),
        other => Err(DataFusionError::Internal(format!(
            "expected a single-stage aggregate with one partition, found {other:?}"
        ))),
    }
}

fn replace_aggregate(
    plan: Arc<dyn ExecutionPlan>,
    leaf: SlotExec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let leaf: Arc<dyn ExecutionPlan> = Arc::new(leaf);
    let replaced = plan.transform_down(|node| {
        if node.is::<AggregateExec>() {
            Ok(Transformed::yes(Arc::clone(&leaf)))
        } else {
            Ok(Transformed::no(node))
        }
    })?;
    Ok(replaced.data)
}

fn reject_blocking(plan: &Arc<dyn ExecutionPlan>, stateless: bool) -> Result<()> {
    let mut problem = None;
    plan.apply(|node| {
        if stateless && node.is::<AggregateExec>() {
            problem = Some(
                "GROUP BY on a stream needs a window: GROUP BY tumble(ts, INTERVAL '10' SECOND), …"
                    .to_string(),
            );
        } else if let Some((_, why)) = BLOCKING.iter().find(|(name, _)| *name == node.name()) {
            problem = Some((*why).to_string());
        } else if node.name() == "BoundedWindowAggExec" {
            problem = Some(BLOCKING[5].1.to_string());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    match problem {
        Some(message) => Err(DataFusionError::Plan(message)),
        None => Ok(()),
    }
}
