//! The DataFusion session every job is planned (and run) in.

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

/// A session for streaming jobs: one partition per plan (parallelism comes
/// from source partitions, not from DataFusion repartitioning), spans
/// collected so planning errors point at the user's text.
pub fn new_session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(8192)
        .with_information_schema(false);
    config.options_mut().sql_parser.collect_spans = true;
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    spindle_anomaly::register(&ctx);
    ctx
}
