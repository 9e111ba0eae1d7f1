//! Spindle's streaming runtime.
//!
//! Code map:
//! - [`plan`]: a planned pipeline → physical plans around a window operator;
//!   [`plan::slot`] is the leaf the runtime feeds micro-batches through.
//! - [`window`]: window assignment, late rows, and the window operators on
//!   DataFusion accumulators.
//! - [`watermark`]: per-partition and job watermarks, idleness.
//! - [`sources`]: Kafka and the in-process simulator, on their own threads.
//! - [`decode`]: JSON / line protocol / OpenMetrics → Arrow, bad records split out.
//! - [`sinks`]: Parquet (object storage) and console.
//! - [`job`]: a job built from SQL, and its run loop.
//! - [`side_output`]: dead-letter and late-row files.
//! - [`storage`]: local or S3 object storage.
//! - [`metrics`]: Prometheus metric families and the per-job handle.
//! - [`server`]: `spindle server`, the job service (REST API, `/metrics`).
//! - [`error`]: the one error type, [`EngineError`].

pub mod checkpoint;
pub mod decode;
pub mod error;
pub mod history;
pub mod job;
pub mod metrics;
pub mod plan;
pub mod server;
pub mod side_output;
pub mod sinks;
pub mod sources;
pub mod storage;
pub mod watermark;
pub mod window;

pub use error::{EngineError, ErrorKind, Result};
