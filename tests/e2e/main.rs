//! End-to-end tests: the real `spindle` binary against real services
//! started by `scripts/`. One binary; one module per area.

// Test code: a failed step panics, which is how a test reports it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod bad_input;
mod broker_restart;
mod dashboard;
mod deployment;
mod engine_oracle;
mod eval_cli;
mod influxdb_backpressure;
mod influxdb_faults;
mod influxdb_sink;
mod job_upgrade;
mod kafka_offsets;
mod kafka_sink;
mod models_cli;
mod oracle;
mod over_oracle;
mod parquet_files;
mod parquet_interop;
mod parquet_rolling;
mod parquet_s3;
mod parquet_unwritable;
mod prometheus_metrics;
mod recovery;
mod scale_out;
mod server_api;
mod simulator_cli;
mod simulator_kafka;
mod webhook_sink;
