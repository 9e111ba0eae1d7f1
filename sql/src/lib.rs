//! Spindle's SQL dialect and job planning. This crate does no I/O.
//!
//! Code map:
//! - [`env`]: `${VAR:-default}` substitution, with a map back to the user's
//!   original positions and masking of substituted values.
//! - [`job`]: job text → statements (`CREATE TABLE`, `INSERT INTO … SELECT`, `SET`).
//! - [`ddl`]: Flink-style `CREATE TABLE … WITH (…)`, `WATERMARK FOR`, column types, options.
//! - [`window`]: `tumble` / `hop` / `session` in `GROUP BY` → a [`window::WindowSpec`].
//! - [`planner`]: a job → DataFusion logical plans, one per pipeline.
//! - [`context`]: the DataFusion session jobs are planned in.
//! - [`error`]: [`SqlError`], located at the user's line and column.

pub mod context;
pub mod ddl;
pub mod env;
pub mod error;
pub mod interval;
pub mod job;
mod parse;
pub mod planner;
pub mod window;

pub use error::{Location, Result, SqlError};
pub use job::Job;
pub use planner::{JobPlan, PipelinePlan, plan_job};
