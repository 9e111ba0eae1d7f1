//! Data skipping for range joins: an inner hash join whose filter bounds a
//! column of the probe side by a column of the build side (`a.ts >=
//! f.window_start AND a.ts < f.window_end`, the features joined with their
//! alerts) can only match probe rows inside the build side's range. This
//! rule passes that range to the probe side's scan: once the build side is
//! read, `f.window_start <= max(a.ts) AND f.window_end >= min(a.ts)` becomes
//! a dynamic filter, which the Parquet scan uses to skip files and row
//! groups by their statistics (DuckDB does the same; DataFusion 55's own
//! join dynamic filters cover only the equality keys).
//!
//! Why the results cannot change: in an inner join a probe row is output
//! only when the whole filter is true for some build row, so each conjunct
//! `probe <= build` is true for some build value `b`, hence `probe <=
//! max(build)`; likewise `probe >= build` gives `probe >= min(build)`. A
//! NULL on either side makes the conjunct NULL (no match), and the added
//! predicate NULL or false too (the row is dropped by both). Before the
//! build side is complete the filter is `true`. Other join types (outer,
//! semi, anti) keep rows without a match and are left alone.
//!
//! The rule runs right after DataFusion's join selection (which fixes the
//! build side) and before its first filter pushdown, which moves the new
//! `FilterExec` into the scan (`datafusion.execution.parquet.pushdown_filters`
//! off: the scan prunes with it, the `FilterExec` stays and drops rows).

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::JoinSide;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{JoinType, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, DynamicFilterPhysicalExpr, lit,
};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;

mod exec;

pub(crate) use exec::JoinBoundsExec;

/// The optimizer rule (see the module comment).
#[derive(Debug, Default)]
pub(crate) struct JoinRangeBounds;

impl PhysicalOptimizerRule for JoinRangeBounds {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match bound_join(join)? {
                Some(bounded) => Transformed::yes(bounded),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "spindle_join_range_bounds"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One conjunct of a join filter that bounds a probe-side expression by a
/// build-side one.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// Over the build (left) input's schema.
    pub(crate) build: Arc<dyn PhysicalExpr>,
    /// Over the probe (right) input's schema.
    pub(crate) probe: Arc<dyn PhysicalExpr>,
    /// `probe <= max(build)` when true, `probe >= min(build)` when false.
    pub(crate) at_most: bool,
}

/// The join with the bounds wired in, or `None` when it has none.
fn bound_join(join: &HashJoinExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if *join.join_type() != JoinType::Inner {
        return Ok(None);
    }
    let Some(filter) = join.filter() else {
        return Ok(None);
    };
    let (left, right) = (join.left().schema(), join.right().schema());
    let bounds: Vec<Bound> = split_conjunction(filter.expression())
        .into_iter()
        .filter_map(|conjunct| bound_of(conjunct, filter, &left, &right))
        .collect();
    if bounds.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    for bound in &bounds {
        bound.probe.apply(|e| {
            if e.downcast_ref::<Column>().is_some()
                && !columns.iter().any(|c| c.as_ref() == e.as_ref())
            {
                columns.push(Arc::clone(e));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
    }
    let dynamic = Arc::new(DynamicFilterPhysicalExpr::new(columns, lit(true)));
    let build = Arc::new(JoinBoundsExec::new(
        Arc::clone(join.left()),
        bounds,
        Arc::clone(&dynamic),
    )?);
    let probe = Arc::new(FilterExec::try_new(dynamic, Arc::clone(join.right()))?);
    let bounded = join
        .builder()
        .with_new_children(vec![build, probe])?
        .recompute_properties()
        .build_exec()?;
    Ok(Some(bounded))
}

/// `conjunct` as a bound when it compares a probe-side column (possibly
/// cast) with a build-side one, of an ordered type whose min and max bound
/// every value (integers, dates, times, timestamps; not floats with NaN).
fn bound_of(
    conjunct: &Arc<dyn PhysicalExpr>,
    filter: &JoinFilter,
    left: &Schema,
    right: &Schema,
) -> Option<Bound> {
    let binary = conjunct.downcast_ref::<BinaryExpr>()?;
    let lower = match binary.op() {
        Operator::Lt | Operator::LtEq => true,
        Operator::Gt | Operator::GtEq => false,
        _ => return None,
    };
    let (l, r) = (binary.left(), binary.right());
    let (l_side, r_side) = (side_of(l, filter)?, side_of(r, filter)?);
    // Normalise to `probe OP build`; `lower` then means probe <= build.
    let (probe, build, at_most) = match (l_side, r_side) {
        (JoinSide::Right, JoinSide::Left) => (l, r, lower),
        (JoinSide::Left, JoinSide::Right) => (r, l, !lower),
        _ => return None,
    };
    let build = remap(build, filter, left)?;
    let probe = remap(probe, filter, right)?;
    let build_type = build.data_type(left).ok()?;
    if build_type != probe.data_type(right).ok()? || !is_ordered(&build_type) {
        return None;
    }
    Some(Bound {
        build,
        probe,
        at_most,
    })
}

fn is_ordered(t: &DataType) -> bool {
    t.is_integer() || t.is_temporal()
}

/// The side of a join-filter operand that is a column or a cast column.
fn side_of(expr: &Arc<dyn PhysicalExpr>, filter: &JoinFilter) -> Option<JoinSide> {
    let column = column_of(expr)?;
    Some(filter.column_indices().get(column.index())?.side)
}

fn column_of(expr: &Arc<dyn PhysicalExpr>) -> Option<&Column> {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return Some(column);
    }
    let cast = expr.downcast_ref::<CastExpr>()?;
    cast.expr().downcast_ref::<Column>()
}

/// A join-filter operand rewritten over its own input's schema.
fn remap(
    expr: &Arc<dyn PhysicalExpr>,
    filter: &JoinFilter,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    Arc::clone(expr)
        .transform_up(|e| {
            let Some(column) = e.downcast_ref::<Column>() else {
                return Ok(Transformed::no(e));
            };
            let Some(index) = filter.column_indices().get(column.index()).map(|c| c.index) else {
                return datafusion::common::plan_err!("join filter column {column} has no input");
            };
            let name = schema.field(index).name();
            Ok(Transformed::yes(
                Arc::new(Column::new(name, index)) as Arc<dyn PhysicalExpr>
            ))
        })
        .data()
        .ok()
}

/// The probe-side predicate for the build side's `(min, max)` per bound:
/// `false` when a bound's build values are all NULL (or there are none),
/// since then no probe row can match.
pub(crate) fn predicate(
    bounds: &[Bound],
    extremes: &[(
        datafusion::common::ScalarValue,
        datafusion::common::ScalarValue,
    )],
) -> Arc<dyn PhysicalExpr> {
    let mut conjuncts: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    for (bound, (min, max)) in bounds.iter().zip(extremes) {
        let (op, value) = if bound.at_most {
            (Operator::LtEq, max)
        } else {
            (Operator::GtEq, min)
        };
        if value.is_null() {
            return lit(false);
        }
        conjuncts.push(Arc::new(BinaryExpr::new(
            Arc::clone(&bound.probe),
            op,
            lit(value.clone()),
        )));
    }
    datafusion::physical_expr::utils::conjunction(conjuncts)
}

#[cfg(test)]
mod tests;
