//! The DataFusion session history queries run in (`spindle query`,
//! `POST /api/query` and the server's other reads of the history).
//!
//! Streaming jobs plan in `spindle_sql::context::new_session`, with one
//! partition per plan on purpose (their parallelism comes from source
//! partitions). A query over the history is one batch job over many files,
//! so it gets the same dialect and functions with what a batch engine
//! needs (measured in docs/BENCHMARKS.md, section "History queries"):
//! - `target_partitions` = the cores, and file scans split by byte range
//!   (`repartition_file_scans`), so every core decodes Parquet;
//! - filters evaluated inside the Parquet scan (`pushdown_filters`), so the
//!   other columns are decoded only for the rows that pass;
//! - `date_trunc` with an integer fast path for UTC ([`super::date_trunc`]);
//! - the range-join bounds rule ([`super::join_bounds`]), right after
//!   DataFusion's join selection;
//! - file caches shared by every query of the process ([`shared_file_caches`]).

use std::sync::{Arc, OnceLock};

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::cache_manager::{
    CacheManager, CacheManagerConfig, FileMetadataCache, FileStatisticsCache,
};
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

use super::date_trunc::UtcDateTrunc;
use super::join_bounds::JoinRangeBounds;

/// Turns parts of the history session off, for comparison and as an escape
/// hatch: a comma-separated list of `parallel`, `pushdown`, `date_trunc`,
/// `join_bounds` (docs/server.md, "History queries").
pub const OFF_VAR: &str = "SPINDLE_HISTORY_QUERY_OFF";

/// A session for queries over the history; `runtime` carries a memory pool
/// (the server's per-query limit), `None` DataFusion's default (unbounded).
pub fn query_session(runtime: Option<Arc<RuntimeEnv>>) -> SessionContext {
    let off = std::env::var(OFF_VAR).unwrap_or_default();
    let off = |part: &str| off.split(',').any(|p| p.trim() == part);
    let base = spindle_sql::context::new_session();
    let mut config = base.state().config().clone();
    if !off("parallel") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        config = config
            .with_target_partitions(cores)
            .with_repartition_file_scans(true);
    }
    if !off("pushdown") {
        // Late materialisation: the scan decodes a filter's columns first
        // and the other columns only for the rows that pass (one machine's
        // last hour reads 8 columns of 100 rows, not of a million).
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
    }
    let mut builder = SessionStateBuilder::new_from_existing(base.state()).with_config(config);
    if !off("join_bounds") {
        builder = builder.with_physical_optimizer_rules(optimizer_rules());
    }
    if let Some(runtime) = runtime {
        builder = builder.with_runtime_env(runtime);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    if !off("date_trunc") {
        ctx.register_udf(ScalarUDF::from(UtcDateTrunc::default()));
    }
    ctx
}

/// The file caches every history query of this process shares: Parquet
/// footers (with page indexes) and per-file statistics. The server answers
/// many queries and each one gets a runtime of its own (for its memory
/// pool), which would otherwise start with empty caches and read the footer
/// of every file again, twice (schema inference, then the scan): on a
/// history of 142 files that was most of a short query's time
/// (docs/BENCHMARKS.md, "queries"). Both caches check an entry against the
/// file's size and modification time before using it, so a rewritten file
/// is read again; DataFusion evicts least recently used entries beyond
/// their limits (50 MiB of footers, 20 MiB of statistics). File *listings*
/// are not cached: a file published a moment ago must be part of the next
/// answer.
pub fn shared_file_caches() -> CacheManagerConfig {
    static SHARED: OnceLock<Option<(Arc<FileMetadataCache>, Arc<FileStatisticsCache>)>> =
        OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let manager = CacheManager::try_new(&CacheManagerConfig::default()).ok()?;
        Some((
            manager.get_file_metadata_cache(),
            manager.get_file_statistic_cache()?,
        ))
    });
    let config = CacheManagerConfig::default().with_list_files_cache_limit(0);
    match shared {
        Some((footers, statistics)) => config
            .with_file_metadata_cache(Some(Arc::clone(footers)))
            .with_file_statistics_cache(Some(Arc::clone(statistics))),
        None => config,
    }
}

/// DataFusion's physical optimizer rules with [`JoinRangeBounds`] after its
/// join selection (which fixes each hash join's build side) and so before
/// its first filter pushdown (which moves the bound into the scan).
fn optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    // Before join selection the build side is not known yet: without it
    // (a renamed rule in a later DataFusion) the bounds stay off.
    if let Some(at) = rules.iter().position(|r| r.name() == "join_selection") {
        rules.insert(at + 1, Arc::new(JoinRangeBounds));
    }
    rules
}
