//! Spindle's factory sensor simulator.
//!
//! Code map:
//! - [`spec`]: the profile (TOML) — machines, sensors, faults — and its validation.
//! - [`profiles`]: built-in profiles (`packing_line`).
//! - [`sensor`]: one sensor's random walk that recalibrates toward its distribution.
//! - [`fault`]: fault onsets, kinds and effects; the ground-truth log.
//! - [`factory`]: the simulated clock and machines; readings in nominal time order.
//! - [`replay`]: a recorded CSV as a source instead.
//! - [`stream`]: limits (count, duration) and injected late/out-of-order readings.
//! - [`format`]: JSON, InfluxDB line protocol, OpenMetrics encoders.
//! - [`output`]: Kafka, file and stdout destinations.
//! - [`pacing`], [`report`], [`run`]: the driver behind `spindle simulate`.

pub mod error;
pub mod factory;
pub mod fault;
pub mod format;
pub mod output;
pub mod pacing;
pub mod profiles;
pub mod record;
pub mod replay;
pub mod report;
pub mod run;
pub mod sensor;
pub mod spec;
pub mod stream;

pub use error::{Result, SimError};
pub use factory::{Factory, FactoryOptions};
pub use format::Format;
pub use run::{Destination, SimulationConfig, SourceConfig, simulate};
