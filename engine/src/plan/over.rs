//! Cuts a physical plan with `OVER (…)` window functions into the three
//! parts [`crate::window::over::OverOperator`] runs: the stateless part
//! below the window (per micro-batch), the window functions themselves (one
//! long-running `BoundedWindowAggExec` fed rows in event-time order), and
//! the part above (per batch of results).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::WindowFrameBound;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::windows::{
    BoundedWindowAggExec, WindowAggExec, WindowExpr, WindowUDFExpr, create_udwf_window_expr,
};
use datafusion::physical_plan::{ExecutionPlan, InputOrderMode};
use spindle_anomaly::keyed::stateful;

use super::slot::{Slot, SlotExec};
use futures::channel::mpsc::UnboundedSender;

use super::over_needs::replay_needs;
use crate::window::over::detectors::DetectorSlot;
use crate::window::over::{OverOperator, feed};
use crate::window::over_replay::ReplayLog;
use datafusion::physical_plan::projection::ProjectionExec;

/// `SPINDLE_DETECTOR_STATE=off`: detector calls run as plain DataFusion
/// window functions and their state is not checkpointed (they restart
/// from the replayed rows, as before version 3 of the checkpoint format).
/// For measuring what carrying the state costs (scripts/bench/detector_state.sh).
pub const DETECTOR_STATE_VAR: &str = "SPINDLE_DETECTOR_STATE";

/// The parts of an `OVER` pipeline.
#[derive(Debug)]
pub struct OverParts {
    /// Rows of the source → rows the window functions read.
    pub pre: Arc<dyn ExecutionPlan>,
    /// Buffers, orders and evaluates the window functions.
    pub operator: OverOperator,
    /// Where window results go in…
    pub results: Slot,
    /// …for the rest of the query.
    pub post: Arc<dyn ExecutionPlan>,
}

/// Whether `plan` computes window functions.
pub fn has_window_functions(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    Ok(first_window(plan)?.is_some())
}

fn is_window_exec(node: &dyn ExecutionPlan) -> bool {
    node.is::<BoundedWindowAggExec>() || node.is::<WindowAggExec>()
}

/// Splits `physical` around its window functions, which must be ordered by
/// the event-time column `time_column` (ascending). Window nodes stacked on
/// each other (a detector over another's score, different PARTITION BYs)
/// all run on the stream: each keeps the event-time order of its input.
pub fn split(
    physical: Arc<dyn ExecutionPlan>,
    time_column: &str,
    task: Arc<TaskContext>,
) -> Result<OverParts> {
    let top = topmost_window(&physical)?;
    let mut chain = Chain {
        time_column,
        bottom: None,
        exprs: Vec::new(),
        row_preserving: true,
        answered: Arc::new(AtomicI64::new(i64::MIN)),
        detectors: Vec::new(),
        keep_detectors: std::env::var(DETECTOR_STATE_VAR).map_or(true, |v| v != "off"),
    };
    let window = chain.rebuild(&top)?;
    let Some(bottom) = chain.bottom else {
        return Err(DataFusionError::Internal(
            "no window functions in the plan".into(),
        ));
    };
    let results = Slot::default();
    let result_leaf = SlotExec::new(window.schema(), None, results.clone())?;
    let post = replace_window(physical, result_leaf)?;
    let output = window.execute(0, task)?;
    let schema = bottom.pre.schema();
    let position = schema.index_of(time_column)?;
    // Answers are matched to rows by count: only when no node between the
    // window nodes adds or drops rows.
    let replay = chain.row_preserving.then(|| {
        let needs = replay_needs(
            &chain.exprs,
            schema.field(position).data_type(),
            chain.keep_detectors,
        );
        ReplayLog::new(needs, Arc::clone(&schema), position).answering(&chain.answered)
    });
    if replay.is_none() {
        // Nothing is replayed after a restore: detectors keep no verdicts.
        chain.answered.store(i64::MAX, Ordering::Relaxed);
    }
    let operator = OverOperator::new(
        schema,
        position,
        bottom.order,
        bottom.sender,
        output,
        replay,
    )
    .with_detectors(chain.detectors);
    Ok(OverParts {
        pre: bottom.pre,
        operator,
        results,
        post,
    })
}

/// The first window node from the top of the plan.
fn topmost_window(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    first_window(plan)?
        .ok_or_else(|| DataFusionError::Internal("no window functions in the plan".into()))
}

/// The first window node from the top, if any.
fn first_window(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let mut found = None;
    plan.apply(|node| {
        if is_window_exec(node.as_ref()) {
            found = Some(Arc::clone(node));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// Where the stream enters the lowest window node.
struct Bottom {
    pre: Arc<dyn ExecutionPlan>,
    order: Vec<datafusion::physical_expr::PhysicalSortExpr>,
    sender: UnboundedSender<Result<arrow::array::RecordBatch>>,
}

/// Rebuilds a stack of window nodes to run on rows fed in event-time order.
struct Chain<'a> {
    time_column: &'a str,
    bottom: Option<Bottom>,
    /// Every window function of the stack.
    exprs: Vec<Arc<dyn WindowExpr>>,
    /// Whether every node between the window nodes keeps its input rows.
    row_preserving: bool,
    /// The event time before which every row has been answered (the
    /// operator's replay log moves it; detectors keep verdicts from it on).
    answered: Arc<AtomicI64>,
    /// Each detector call's per-key state, in plan order.
    detectors: Vec<DetectorSlot>,
    /// Whether detector calls keep their state for checkpoints.
    keep_detectors: bool,
}

impl Chain<'_> {
    fn rebuild(&mut self, node: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(sort) = node.downcast_ref::<SortExec>() {
            // Rows already arrive in time order; keys may interleave.
            return self.rebuild(sort.input());
        }
        let Some((exprs, input)) = window_parts(node.as_ref()) else {
            if !node.is::<ProjectionExec>() {
                self.row_preserving = false;
            }
            let [child] = node.children()[..] else {
                return Err(DataFusionError::Plan(format!(
                    "{} between OVER windows is not supported on a stream",
                    node.name()
                )));
            };
            let child = self.rebuild(child)?;
            #[allow(deprecated)]
            return Arc::clone(node).with_new_children(vec![child]);
        };
        for expr in &exprs {
            check_streamable(expr.as_ref(), self.time_column)?;
        }
        self.exprs.extend(exprs.iter().cloned());
        let schema = input.schema();
        let exprs = exprs
            .iter()
            .map(|e| self.keep_state(e, &schema))
            .collect::<Result<Vec<_>>>()?;
        let input = match input.downcast_ref::<SortExec>() {
            Some(sort) => Arc::clone(sort.input()),
            None => input,
        };
        let child = if has_window_functions(&input)? {
            self.rebuild(&input)?
        } else {
            self.feed_from(input, &exprs)?
        };
        Ok(Arc::new(BoundedWindowAggExec::try_new(
            exprs,
            child,
            InputOrderMode::Linear,
            false,
        )?))
    }

    /// A detector call planned again to keep each key's detector where
    /// checkpoints reach it (`spindle_anomaly::keyed`): the same call with
    /// the `PARTITION BY` keys and the time as hidden trailing arguments.
    /// Other functions come back unchanged.
    fn keep_state(
        &mut self,
        expr: &Arc<dyn WindowExpr>,
        schema: &Schema,
    ) -> Result<Arc<dyn WindowExpr>> {
        if !self.keep_detectors {
            return Ok(Arc::clone(expr));
        }
        let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() else {
            return Ok(Arc::clone(expr));
        };
        let function = standard.get_standard_func_expr();
        let Some(udf) = function.as_any().downcast_ref::<WindowUDFExpr>() else {
            return Ok(Arc::clone(expr));
        };
        let (Some(time), keys) = (expr.order_by().first(), expr.partition_by()) else {
            return Ok(Arc::clone(expr));
        };
        let call = function.name();
        let call = call.split(" PARTITION BY").next().unwrap_or(call);
        let Some((keyed, states)) =
            stateful(udf.fun(), udf.args(), keys.len(), call, &self.answered)?
        else {
            return Ok(Arc::clone(expr));
        };
        let mut args = udf.args().to_vec();
        args.extend(keys.iter().cloned());
        args.push(Arc::clone(&time.expr));
        let key_types = keys
            .iter()
            .map(|k| k.data_type(schema))
            .collect::<Result<Vec<_>>>()?;
        self.detectors.push(DetectorSlot { states, key_types });
        let keyed = create_udwf_window_expr(
            &Arc::new(keyed),
            &args,
            schema,
            function.name().to_string(),
            false,
        )?;
        Ok(Arc::new(StandardWindowExpr::new(
            keyed,
            keys,
            expr.order_by(),
            Arc::clone(expr.get_window_frame()),
        )))
    }

    /// The streaming leaf that replaces `pre` under the lowest window node.
    fn feed_from(
        &mut self,
        pre: Arc<dyn ExecutionPlan>,
        exprs: &[Arc<dyn WindowExpr>],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = pre.schema();
        let (sender, source) = feed(Arc::clone(&schema));
        let leaf = StreamingTableExec::try_new(
            schema,
            vec![Arc::new(source)],
            None,
            Vec::new(),
            true,
            None,
        )?;
        let order = exprs
            .first()
            .map(|e| e.order_by().to_vec())
            .unwrap_or_default();
        self.bottom = Some(Bottom { pre, order, sender });
        Ok(Arc::new(leaf))
    }
}

/// A window node's expressions and its input.
type WindowNode = (Vec<Arc<dyn WindowExpr>>, Arc<dyn ExecutionPlan>);

/// A window node's expressions and input.
fn window_parts(node: &dyn ExecutionPlan) -> Option<WindowNode> {
    if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        return Some((w.window_expr().to_vec(), Arc::clone(w.input())));
    }
    node.downcast_ref::<WindowAggExec>()
        .map(|w| (w.window_expr().to_vec(), Arc::clone(w.input())))
}

/// Refuses window functions that would need the future or unbounded state.
fn check_streamable(expr: &dyn WindowExpr, time_column: &str) -> Result<()> {
    let name = expr.name().to_ascii_lowercase();
    let short = name.split(" partition by").next().unwrap_or(&name);
    let ordered_by_time = expr.order_by().first().is_some_and(|sort| {
        !sort.options.descending
            && sort
                .expr
                .downcast_ref::<Column>()
                .is_some_and(|c| c.name() == time_column)
    });
    if !ordered_by_time {
        return Err(DataFusionError::Plan(format!(
            "{short}: OVER (…) on a stream must ORDER BY the event-time column `{time_column}` \
             (ascending), e.g. OVER (PARTITION BY machine_id ORDER BY {time_column})"
        )));
    }
    // RANGE … CURRENT ROW includes peers (rows with the same time): those are
    // released together, so only explicit FOLLOWING bounds need the future.
    let frame = expr.get_window_frame();
    let follows = [&frame.start_bound, &frame.end_bound]
        .iter()
        .any(|b| matches!(b, WindowFrameBound::Following(_)));
    if name.starts_with("lead(") || follows {
        return Err(DataFusionError::Plan(format!(
            "{short}: looking at FOLLOWING rows would wait for the future on a stream; \
             use lag or a PRECEDING frame"
        )));
    }
    if !expr.uses_bounded_memory() {
        return Err(DataFusionError::Plan(format!(
            "{short}: this window would keep every row of the stream; bound its frame, \
             e.g. RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW"
        )));
    }
    Ok(())
}

fn replace_window(plan: Arc<dyn ExecutionPlan>, leaf: SlotExec) -> Result<Arc<dyn ExecutionPlan>> {
    let leaf: Arc<dyn ExecutionPlan> = Arc::new(leaf);
    let replaced = plan.transform_down(|node| {
        if is_window_exec(node.as_ref()) {
            Ok(Transformed::new(
                Arc::clone(&leaf),
                true,
                TreeNodeRecursion::Jump,
            ))
        } else {
            Ok(Transformed::no(node))
        }
    })?;
    Ok(replaced.data)
}
