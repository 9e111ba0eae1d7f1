//! Spindle's SQL dialect and job planning. This crate does no I/O.
//!
//! Code map:
//! - [`env`]: `${VAR:-default}` substitution in job text, with a map back to
//!   the user's original positions for error messages.
//! - [`error`]: [`SqlError`], the crate's one error type.

pub mod env;
pub mod error;

pub use error::{Result, SqlError};
