//! Window syntax. A windowed aggregation names its window in `GROUP BY`:
//!
//! ```sql
//! GROUP BY tumble(ts, INTERVAL '10' SECOND), machine_id
//! GROUP BY hop(ts, INTERVAL '5' SECOND, INTERVAL '30' SECOND), machine_id   -- slide, size
//! GROUP BY session(ts, INTERVAL '30' SECOND), machine_id                    -- gap
//! ```
//!
//! and selects `window_start` and `window_end` like columns. Planning rewrites
//! the window call into the two grouping columns `window_start, window_end`
//! (which the source exposes to windowed queries) and hands the window's
//! shape to the engine, which assigns rows to windows on event time.

use std::time::Duration;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query, SelectItem,
    SetExpr,
};

use crate::error::{Location, Result, SqlError};
use crate::interval::interval_duration;

/// Name of the window's start column.
pub const WINDOW_START: &str = "window_start";
/// Name of the window's end column.
pub const WINDOW_END: &str = "window_end";

/// The shape of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size`, aligned to the epoch.
    Tumble {
        /// Window length.
        size: Duration,
    },
    /// Windows of `size` starting every `slide` (aligned to the epoch); a row
    /// belongs to `size / slide` windows.
    Hop {
        /// Window length.
        size: Duration,
        /// Distance between window starts.
        slide: Duration,
    },
    /// Per key, a window that stays open while rows keep arriving less than
    /// `gap` apart; it ends `gap` after its last row.
    Session {
        /// Inactivity that closes a session.
        gap: Duration,
    },
}

/// A windowed aggregation's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Its shape.
    pub kind: WindowKind,
    /// The event-time column it is computed on.
    pub time_column: String,
}

const WINDOW_FUNCTIONS: [&str; 3] = ["tumble", "hop", "session"];

/// Finds the window call in `query`'s GROUP BY, replaces it with
/// `window_start, window_end` and returns its spec (`None`: no window).
pub fn extract_window(query: &mut Query, location: Location) -> Result<Option<WindowSpec>> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(None);
    };
    check_not_in_projection(&select.projection, location)?;
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Ok(None);
    };
    let mut found = None;
    let mut rewritten = Vec::with_capacity(exprs.len() + 1);
    for expr in exprs.drain(..) {
        match window_call(&expr) {
            Some((name, args)) => {
                if found.is_some() {
                    return Err(plan(location, "only one window per GROUP BY".into()));
                }
                found = Some(window_spec(name, &args).map_err(|m| plan(location, m))?);
                rewritten.push(Expr::Identifier(Ident::new(WINDOW_START)));
                rewritten.push(Expr::Identifier(Ident::new(WINDOW_END)));
            }
            None => rewritten.push(expr),
        }
    }
    *exprs = rewritten;
    Ok(found)
}

fn check_not_in_projection(items: &[SelectItem], location: Location) -> Result<()> {
    for item in items {
        let text = item.to_string().to_ascii_lowercase();
        if let Some(name) = WINDOW_FUNCTIONS
            .iter()
            .find(|f| text.contains(&format!("{f}(")))
        {
            return Err(plan(
                location,
                format!(
                    "{name}() belongs in GROUP BY; select `window_start` and `window_end` instead"
                ),
            ));
        }
    }
    Ok(())
}

/// The window function's name and argument expressions, if `expr` is one.
fn window_call(expr: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = expr else { return None };
    let name = f.name.to_string().to_ascii_lowercase();
    if !WINDOW_FUNCTIONS.contains(&name.as_str()) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return Some((name, Vec::new()));
    };
    let args = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    Some((name, args))
}

fn window_spec(name: String, args: &[Expr]) -> Result<WindowSpec, String> {
    let usage = match name.as_str() {
        "tumble" => "tumble(time_column, INTERVAL size)",
        "hop" => "hop(time_column, INTERVAL slide, INTERVAL size)",
        _ => "session(time_column, INTERVAL gap)",
    };
    let time_column = match args.first() {
        Some(Expr::Identifier(ident)) => ident.value.clone(),
        Some(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        _ => {
            return Err(format!(
                "{name}() needs the event-time column first: {usage}"
            ));
        }
    };
    let durations = args[1..]
        .iter()
        .map(interval_duration)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}; usage: {usage}"))?;
    let kind = match (name.as_str(), durations.as_slice()) {
        ("tumble", [size]) => WindowKind::Tumble { size: *size },
        ("hop", [slide, size])
            if slide <= size && (size.as_millis() % slide.as_millis().max(1)) == 0 =>
        {
            WindowKind::Hop {
                size: *size,
                slide: *slide,
            }
        }
        ("hop", [_, _]) => {
            return Err(format!(
                "hop(): the size must be a multiple of the slide; usage: {usage}"
            ));
        }
        ("session", [gap]) => WindowKind::Session { gap: *gap },
        _ => return Err(format!("wrong arguments; usage: {usage}")),
    };
    if durations.iter().any(|d| d.subsec_nanos() % 1_000_000 != 0) {
        return Err(format!("{name}(): window sizes are whole milliseconds"));
    }
    Ok(WindowSpec { kind, time_column })
}

fn plan(location: Location, message: String) -> SqlError {
    SqlError::Plan { message, location }
}
