//! Shared support for Spindle's end-to-end tests: the services (started by
//! the project's own scripts) and the `spindle` binary.

pub mod kafka;
pub mod services;
pub mod spindle;
