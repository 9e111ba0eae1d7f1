//! Shared support for Spindle's end-to-end tests: the services (started by
//! the project's own scripts) and the `spindle` binary.

// Test support: a failed step panics, which is how a test reports it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod browser;
pub mod disk;
pub mod http;
pub mod influxdb;
pub mod kafka;
pub mod proxy;
pub mod s3;
pub mod server;
pub mod services;
pub mod spindle;
