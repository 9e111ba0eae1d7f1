//! End-to-end tests: the real `spindle` binary against real services
//! started by `scripts/`. One binary; one module per area.

mod simulator_cli;
mod simulator_kafka;
