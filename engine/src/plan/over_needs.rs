//! How far back a stack of `OVER` window functions can look, read off their
//! frames: what [`crate::window::over_replay::ReplayLog`] must keep so that
//! a restored partition computes the same results as an uninterrupted one.

use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::logical_expr::{WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::window::{SlidingAggregateWindowExpr, StandardWindowExpr};
use datafusion::physical_plan::windows::{WindowExpr, WindowUDFExpr};
use datafusion::scalar::ScalarValue;

use crate::window::over_replay::ReplayNeeds;

/// The look-back of `exprs` on rows whose event time has type `time_type`;
/// `detectors_saved`: whether the detectors' state goes into checkpoints.
pub(crate) fn replay_needs(
    exprs: &[Arc<dyn WindowExpr>],
    time_type: &DataType,
    detectors_saved: bool,
) -> ReplayNeeds {
    let mut needs = ReplayNeeds {
        keys: exprs
            .first()
            .map(|e| e.partition_by().to_vec())
            .unwrap_or_default(),
        rows: 0,
        span: 0,
        not_carried: Vec::new(),
    };
    let first_keys: Vec<String> = needs.keys.iter().map(|k| k.to_string()).collect();
    for expr in exprs {
        let keys: Vec<String> = expr.partition_by().iter().map(|k| k.to_string()).collect();
        let name = short_name(expr.as_ref());
        if keys != first_keys {
            // Context is kept per key of the first function only.
            needs.not_carried.push(name);
            continue;
        }
        match look_back(expr.as_ref(), time_type) {
            Some(LookBack::Rows(n)) => needs.rows = needs.rows.max(n),
            Some(LookBack::Span(span)) => needs.span = needs.span.max(span),
            Some(LookBack::Saved) if detectors_saved => {}
            Some(LookBack::Saved) | None => needs.not_carried.push(name),
        }
    }
    needs
}

enum LookBack {
    Rows(usize),
    Span(i64),
    /// A detector: its state goes into the checkpoint itself.
    Saved,
}

fn short_name(expr: &dyn WindowExpr) -> String {
    let name = expr.name();
    name.split(" PARTITION BY")
        .next()
        .unwrap_or(name)
        .to_string()
}

/// What one function looks back at; `None` if its state is neither bounded
/// by a frame nor saved (running totals, `row_number`).
fn look_back(expr: &dyn WindowExpr, time_type: &DataType) -> Option<LookBack> {
    if let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() {
        let udf = standard
            .get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()?;
        if spindle_anomaly::keyed::keeps_state(udf.fun()) {
            return Some(LookBack::Saved);
        }
        let name = expr.name().to_ascii_lowercase();
        if name.starts_with("inter_arrival(") {
            // Its state is the previous row's time.
            return Some(LookBack::Rows(1));
        }
        if !name.starts_with("lag(") {
            return None;
        }
        let offset = match udf.args().get(1) {
            Some(arg) => literal_count(arg.downcast_ref::<Literal>()?.value())?,
            None => 1,
        };
        return Some(LookBack::Rows(offset));
    }
    expr.as_any().downcast_ref::<SlidingAggregateWindowExpr>()?;
    let frame = expr.get_window_frame();
    let WindowFrameBound::Preceding(value) = &frame.start_bound else {
        // CURRENT ROW: only the row and its peers.
        return Some(LookBack::Rows(0));
    };
    match frame.units {
        WindowFrameUnits::Rows => literal_count(value).map(LookBack::Rows),
        WindowFrameUnits::Range => span_in(value, time_type).map(LookBack::Span),
        WindowFrameUnits::Groups => None,
    }
}

fn literal_count(value: &ScalarValue) -> Option<usize> {
    match value {
        ScalarValue::UInt64(Some(n)) => usize::try_from(*n).ok(),
        ScalarValue::Int64(Some(n)) => usize::try_from(*n).ok(),
        _ => None,
    }
}

/// A `RANGE … PRECEDING` interval in the event-time column's unit
/// (months count as 31 days: an upper bound keeps more, never less).
fn span_in(value: &ScalarValue, time_type: &DataType) -> Option<i64> {
    let nanos: i128 = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            (i128::from(v.months) * 31 + i128::from(v.days)) * 86_400_000_000_000
                + i128::from(v.nanoseconds)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            (i128::from(v.days) * 86_400_000 + i128::from(v.milliseconds)) * 1_000_000
        }
        ScalarValue::IntervalYearMonth(Some(m)) => i128::from(*m) * 31 * 86_400_000_000_000,
        ScalarValue::DurationSecond(Some(v)) => i128::from(*v) * 1_000_000_000,
        ScalarValue::DurationMillisecond(Some(v)) => i128::from(*v) * 1_000_000,
        ScalarValue::DurationMicrosecond(Some(v)) => i128::from(*v) * 1_000,
        ScalarValue::DurationNanosecond(Some(v)) => i128::from(*v),
        _ => return None,
    };
    let per_unit: i128 = match time_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        _ => return None,
    };
    // Rounded up: keeping one unit more is harmless, one less is not.
    i64::try_from((nanos.max(0) + per_unit - 1) / per_unit).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::windows::BoundedWindowAggExec;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The window functions of `sql` over `t(k, ts, x)`.
    async fn window_exprs(sql: &str) -> Vec<Arc<dyn WindowExpr>> {
        let ctx = SessionContext::new();
        spindle_anomaly::register(&ctx);
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("x", DataType::Float64, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut exprs = Vec::new();
        plan.apply(|node| {
            if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
                exprs.extend(w.window_expr().iter().cloned());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        exprs
    }

    #[tokio::test]
    async fn detectors_are_carried_by_their_state_and_row_number_is_not() {
        let exprs = window_exprs(
            "SELECT gaussian_anomaly(x) OVER w, row_number() OVER w, inter_arrival(ts) OVER w \
             FROM t WINDOW w AS (PARTITION BY k ORDER BY ts)",
        )
        .await;
        assert_eq!(exprs.len(), 3);
        let time = DataType::Timestamp(TimeUnit::Millisecond, None);
        let saved = replay_needs(&exprs, &time, true);
        assert_eq!(saved.not_carried, ["row_number()"]);
        assert_eq!(saved.rows, 1, "inter_arrival needs the previous row");
        let unsaved = replay_needs(&exprs, &time, false);
        assert_eq!(unsaved.not_carried.len(), 2, "{:?}", unsaved.not_carried);
    }
}
