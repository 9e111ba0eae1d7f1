//! What a pipeline's checkpointed state depends on, so that a job whose SQL
//! was edited can tell which pipelines' state still applies.
//!
//! The state batches alone do not say: `TUMBLE(ts, 1 minute)` and
//! `TUMBLE(ts, 5 minutes)` keep the same columns, and so do
//! `avg(temperature)` and `avg(temperature * 2)` or two `WHERE` clauses;
//! restoring one into the other would silently merge old rows into the new
//! windows. So every snapshot batch carries a [`StateShape`] in its Arrow
//! schema metadata (Arrow IPC keeps it; the checkpoint format is unchanged),
//! and a restore compares it with the edited job's ([`StateShape::changes`]).
//!
//! Expressions are compared by their exact logical form (qualified columns,
//! typed literals, casts) and shown as SQL (DataFusion's unparser, columns
//! unqualified).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use serde::{Deserialize, Serialize};
use spindle_sql::PipelinePlan;
use spindle_sql::window::{WINDOW_END, WINDOW_START, WindowKind, WindowSpec};

/// The schema metadata key a snapshot batch's [`StateShape`] is stored
/// under (as JSON).
pub const METADATA_KEY: &str = "spindle.state.shape";

/// What kind of state a pipeline keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// None: rows pass straight through.
    Stateless,
    /// Open windows: accumulators per window and key.
    Window,
    /// `OVER (…)` functions: unreleased rows and frame context.
    Over,
}

impl StateKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Stateless => "a stateless query",
            Self::Window => "a windowed aggregate",
            Self::Over => "OVER (…) functions",
        }
    }
}

/// One expression (or window) the state depends on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Term {
    /// As SQL, for messages.
    pub shown: String,
    /// The exact logical form, compared.
    pub exact: String,
}

impl PartialEq for Term {
    fn eq(&self, other: &Self) -> bool {
        self.exact == other.exact
    }
}

/// What one pipeline's state depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateShape {
    /// The sink the pipeline writes (its identity in a checkpoint).
    pub sink: String,
    /// The source table it reads.
    pub source: String,
    /// Its kind of state.
    pub kind: StateKind,
    /// The window (windowed aggregates).
    pub window: Option<Term>,
    /// The grouping keys besides the window (windowed aggregates).
    pub keys: Vec<Term>,
    /// The aggregates, with their `DISTINCT` and `FILTER (WHERE …)`.
    pub aggregates: Vec<Term>,
    /// The `OVER (…)` functions with their partitioning, order and frame.
    pub functions: Vec<Term>,
    /// The predicates that pick the rows reaching the state (`WHERE`).
    pub filters: Vec<Term>,
    /// The rest of the plan below the state (projections, views,
    /// subqueries), one line per node: an expression an aggregate reads
    /// through a view column changes here, not in the aggregate.
    #[serde(default)]
    pub input: Vec<String>,
    /// How many state columns each aggregate keeps, in order (windowed
    /// aggregates): what moving state between aggregate orders needs.
    #[serde(default)]
    pub state_widths: Vec<usize>,
}

impl StateShape {
    /// The shape of `pipeline`'s state, read off its logical plan.
    pub fn of(pipeline: &PipelinePlan) -> Result<Self> {
        let mut shape = Self {
            sink: pipeline.sink.clone(),
            source: pipeline.source.clone(),
            kind: StateKind::Stateless,
            window: pipeline.window.as_ref().map(window_term),
            keys: Vec::new(),
            aggregates: Vec::new(),
            functions: Vec::new(),
            filters: Vec::new(),
            input: Vec::new(),
            state_widths: Vec::new(),
        };
        let Some(stateful) = stateful_node(&pipeline.plan)? else {
            return Ok(shape);
        };
        match &stateful {
            LogicalPlan::Aggregate(aggregate) if pipeline.window.is_some() => {
                shape.kind = StateKind::Window;
                let window_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == WINDOW_START || c.name == WINDOW_END);
                shape.keys = terms(aggregate.group_expr.iter().filter(|e| !window_column(e)))?;
                shape.aggregates = terms(aggregate.aggr_expr.iter())?;
            }
            LogicalPlan::Window(_) => {
                shape.kind = StateKind::Over;
                let mut functions = Vec::new();
                stateful.apply(|node| {
                    if let LogicalPlan::Window(window) = node {
                        functions.extend(window.window_expr.iter().cloned());
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
                shape.functions = terms(functions.iter())?;
            }
            _ => return Ok(shape),
        }
        shape.filters = filters_below(&stateful)?;
        shape.input = input_below(&stateful);
        Ok(shape)
    }

    /// Everything that differs from `old` (the checkpointed shape) to this
    /// one, one phrase each; empty when the state carries over.
    pub fn changes(&self, old: &StateShape) -> Vec<String> {
        let mut out = Vec::new();
        if old.source != self.source {
            out.push(format!(
                "source changed from `{}` to `{}`",
                old.source, self.source
            ));
        }
        if old.kind != self.kind {
            out.push(format!(
                "changed from {} to {}",
                old.kind.describe(),
                self.kind.describe()
            ));
            return out;
        }
        if old.window != self.window {
            let show = |w: &Option<Term>| w.as_ref().map_or("none".into(), |t| t.shown.clone());
            out.push(format!(
                "window changed from {} to {}",
                show(&old.window),
                show(&self.window)
            ));
        }
        if old.keys != self.keys {
            out.push(format!(
                "keys changed: {} → {}",
                bracketed(&old.keys),
                bracketed(&self.keys)
            ));
        }
        list_changes("aggregate", &old.aggregates, &self.aggregates, &mut out);
        list_changes("OVER function", &old.functions, &self.functions, &mut out);
        if old.filters != self.filters {
            out.push(format!(
                "WHERE changed: {} → {}",
                conjunction(&old.filters),
                conjunction(&self.filters)
            ));
        }
        if out.is_empty() && old.input != self.input {
            let differs = |a: &[String], b: &[String]| {
                a.iter()
                    .find(|line| !b.contains(line))
                    .map_or("(nothing)".to_string(), String::clone)
            };
            out.push(format!(
                "the rows reaching the state are computed differently below it: `{}` → `{}`",
                differs(&old.input, &self.input),
                differs(&self.input, &old.input)
            ));
        }
        out
    }

    /// As JSON, for [`METADATA_KEY`].
    pub fn to_json(&self) -> String {
        // Strings, lists and a unit enum: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The shape stored with checkpointed state (the first batch's schema
    /// metadata); `None` when the state holds no rows or was written before
    /// shapes were recorded.
    pub fn of_state(state: &[RecordBatch]) -> Result<Option<Self>> {
        if state.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let Some(json) = state
            .first()
            .and_then(|b| b.schema().metadata().get(METADATA_KEY).cloned())
        else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            DataFusionError::Plan(format!(
                "the checkpointed state's description is unreadable: {e}"
            ))
        })
    }
}

/// `batch` with `json` (a [`StateShape`]) in its schema metadata.
pub fn with_shape(batch: RecordBatch, json: &str) -> Result<RecordBatch> {
    let mut metadata = batch.schema().metadata().clone();
    metadata.insert(METADATA_KEY.to_string(), json.to_string());
    set_metadata(batch, metadata)
}

/// `batch` without a [`StateShape`] in its schema metadata (operators
/// compare schemas; the shape is the job's business).
pub fn without_shape(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut metadata = batch.schema().metadata().clone();
    if metadata.remove(METADATA_KEY).is_none() {
        return Ok(batch.clone());
    }
    set_metadata(batch.clone(), metadata)
}

fn set_metadata(batch: RecordBatch, metadata: HashMap<String, String>) -> Result<RecordBatch> {
    let schema = batch.schema().as_ref().clone().with_metadata(metadata);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        batch.columns().to_vec(),
    )?)
}

/// The topmost aggregate or window node: the operator that keeps state.
fn stateful_node(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let mut found = None;
    plan.apply(|node| {
        if matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)) {
            found = Some(node.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// The `WHERE` predicates below `node`, split at `AND`.
fn filters_below(node: &LogicalPlan) -> Result<Vec<Term>> {
    let mut predicates = Vec::new();
    for input in node.inputs() {
        input.apply(|n| {
            if let LogicalPlan::Filter(filter) = n {
                predicates.extend(
                    datafusion::logical_expr::utils::split_conjunction(&filter.predicate)
                        .into_iter()
                        .cloned(),
                );
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    terms(predicates.iter())
}

/// The plan below `node` as text, less what [`StateShape`] compares
/// otherwise (filters, window functions).
fn input_below(node: &LogicalPlan) -> Vec<String> {
    node.inputs()
        .iter()
        .flat_map(|input| {
            input
                .display_indent()
                .to_string()
                .lines()
                .map(|line| line.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|line| !line.starts_with("Filter:") && !line.starts_with("WindowAggr:"))
        .collect()
}

fn terms<'a>(exprs: impl Iterator<Item = &'a Expr>) -> Result<Vec<Term>> {
    exprs.map(term).collect()
}

fn term(expr: &Expr) -> Result<Term> {
    let expr = expr.clone().unalias_nested().data;
    let exact = expr.to_string();
    let unqualified = expr
        .transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            other => Ok(Transformed::no(other)),
        })?
        .data;
    // `pretty`: no parentheses beyond what precedence needs.
    let shown = match &unqualified {
        Expr::Column(c) => c.name.clone(),
        _ => datafusion::sql::unparser::Unparser::default()
            .with_pretty(true)
            .expr_to_sql(&unqualified)
            .map_or_else(|_| exact.clone(), |sql| sql.to_string()),
    };
    Ok(Term { shown, exact })
}

fn window_term(window: &WindowSpec) -> Term {
    let column = &window.time_column;
    let shown = match window.kind {
        WindowKind::Tumble { size } => format!("TUMBLE({column}, {})", duration(size)),
        WindowKind::Hop { size, slide } => format!(
            "HOP({column}, slide {}, size {})",
            duration(slide),
            duration(size)
        ),
        WindowKind::Session { gap } => format!("SESSION({column}, gap {})", duration(gap)),
    };
    Term {
        exact: format!("{:?} on {column}", window.kind),
        shown,
    }
}

/// `90 seconds`, `1 minute`, `5 minutes`, `250 milliseconds`.
fn duration(d: Duration) -> String {
    let millis = d.as_millis();
    let (n, unit) = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
    ]
    .into_iter()
    .find(|(size, _)| millis > 0 && millis.is_multiple_of(*size))
    .map_or((millis, "millisecond"), |(size, unit)| {
        (millis / size, unit)
    });
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn bracketed(terms: &[Term]) -> String {
    let shown: Vec<&str> = terms.iter().map(|t| t.shown.as_str()).collect();
    format!("[{}]", shown.join(", "))
}

fn conjunction(terms: &[Term]) -> String {
    if terms.is_empty() {
        return "(none)".into();
    }
    let shown: Vec<&str> = terms.iter().map(|t| t.shown.as_str()).collect();
    shown.join(" AND ")
}

/// Added, removed and changed entries of a list of expressions; an entry
/// removed and one added with the same function name read as one change.
fn list_changes(what: &str, old: &[Term], new: &[Term], out: &mut Vec<String>) {
    let before = out.len();
    let mut removed: Vec<&Term> = old.iter().filter(|t| !new.contains(t)).collect();
    for added in new.iter().filter(|t| !old.contains(t)) {
        match removed
            .iter()
            .position(|r| function_name(r) == function_name(added))
        {
            Some(i) => {
                let was = removed.remove(i);
                let (from, to) = distinct_texts(was, added);
                out.push(format!("{what} changed: {from} → {to}"));
            }
            None => out.push(format!("{what} added: {}", added.shown)),
        }
    }
    for was in removed {
        out.push(format!("{what} removed: {}", was.shown));
    }
    if out.len() == before && old != new {
        out.push(format!(
            "{what}s reordered: {} → {}",
            bracketed(old),
            bracketed(new)
        ));
    }
}

/// The texts to show for a change: SQL, or the exact forms when the SQL
/// reads the same (a cast or literal type that differs).
fn distinct_texts<'a>(was: &'a Term, now: &'a Term) -> (&'a str, &'a str) {
    match was.shown == now.shown {
        true => (&was.exact, &now.exact),
        false => (&was.shown, &now.shown),
    }
}

fn function_name(term: &Term) -> &str {
    term.exact.split('(').next().unwrap_or_default()
}

mod reorder;
#[cfg(test)]
mod tests;

pub use reorder::Reordering;
