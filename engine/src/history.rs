//! Querying Parquet history with DataFusion: every directory directly under
//! the history root is a table (`data/history/features` → `features`), its
//! Hive partition directories (`date=…/hour=…`, `col=value`) become columns,
//! so `WHERE date = '2026-01-01'` reads only that day's files.

use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectStore;

use crate::error::{EngineError, Result};
use crate::storage;

mod date_trunc;
mod join_bounds;
pub mod session;

pub use session::query_session;

/// Registers every table under `root` in `ctx`; returns their names.
pub async fn register_history(ctx: &SessionContext, root: &str) -> Result<Vec<String>> {
    let location = storage::open(root)?;
    ctx.register_object_store(&location.url, Arc::clone(&location.store));
    let listing = location
        .store
        .list_with_delimiter(Some(&location.prefix))
        .await
        .map_err(EngineError::storage(format!("listing {root}")))?;
    let mut names = Vec::new();
    for dir in listing.common_prefixes {
        let Some(name) = dir.filename().map(str::to_string) else {
            continue;
        };
        if name.starts_with('_')
            || name.starts_with('.')
            || !has_files(&*location.store, &dir).await?
        {
            continue;
        }
        let url = format!(
            "{}{}/",
            location.url.as_str().trim_end_matches('/'),
            absolute(&dir)
        );
        register_table(ctx, &name, &url).await?;
        names.push(name);
    }
    Ok(names)
}

/// Where table `name_or_location` lives: a bare name is a directory under
/// the history `root`; anything with a `/` (a path or `s3://…` URL) is used
/// as it is.
pub fn table_location(root: &str, name_or_location: &str) -> String {
    if name_or_location.contains('/') {
        name_or_location.to_string()
    } else {
        format!("{}/{name_or_location}", root.trim_end_matches('/'))
    }
}

/// Registers the Parquet files under `location` (a directory or `s3://…`)
/// as table `name` in `ctx`; `false` (and nothing registered) while there
/// are no files there yet.
pub async fn register_location(ctx: &SessionContext, name: &str, location: &str) -> Result<bool> {
    let opened = storage::open(location)?;
    ctx.register_object_store(&opened.url, Arc::clone(&opened.store));
    if !has_files(&*opened.store, &opened.prefix).await? {
        return Ok(false);
    }
    let url = format!(
        "{}{}/",
        opened.url.as_str().trim_end_matches('/'),
        absolute(&opened.prefix)
    );
    register_table(ctx, name, &url).await?;
    Ok(true)
}

fn absolute(path: &object_store::path::Path) -> String {
    format!("/{}", path.as_ref())
}

async fn has_files(store: &dyn ObjectStore, dir: &object_store::path::Path) -> Result<bool> {
    let mut files = store.list(Some(dir));
    let first = files
        .try_next()
        .await
        .map_err(EngineError::storage(format!("listing {dir}")))?;
    Ok(first.is_some())
}

async fn register_table(ctx: &SessionContext, name: &str, url: &str) -> Result<()> {
    let context = || format!("registering history table {name} at {url}");
    let table_url = ListingTableUrl::parse(url).map_err(EngineError::datafusion(context()))?;
    let state = ctx.state();
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let partitions = options
        .infer_partitions(&state, &table_url)
        .await
        .map_err(EngineError::datafusion(context()))?;
    options = options.with_table_partition_cols(
        partitions
            .into_iter()
            .map(|p| (p, arrow::datatypes::DataType::Utf8))
            .collect(),
    );
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .infer_schema(&state)
        .await
        .map_err(EngineError::datafusion(context()))?;
    let table = ListingTable::try_new(config).map_err(EngineError::datafusion(context()))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(EngineError::datafusion(context()))?;
    Ok(())
}
