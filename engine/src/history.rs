//! Querying Parquet history with DataFusion: every directory directly under
//! the history root is a table (`data/history/features` → `features`), its
//! Hive partition directories (`date=…/hour=…`, `col=value`) become columns,
//! so `WHERE date = '2026-01-01'` reads only that day's files.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};

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
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let url = format!(
            "{}{}/",
            location.url.as_str().trim_end_matches('/'),
            absolute(&dir)
        );
        if register_table(ctx, &name, &url, &*location.store, &dir).await? {
            names.push(name);
        }
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
    let url = format!(
        "{}{}/",
        opened.url.as_str().trim_end_matches('/'),
        absolute(&opened.prefix)
    );
    register_table(ctx, name, &url, &*opened.store, &opened.prefix).await
}

fn absolute(path: &object_store::path::Path) -> String {
    format!("/{}", path.as_ref())
}

/// Registers the Parquet files under `dir` (at `url`) as table `name`;
/// `false` (and nothing registered) while there are no files there yet.
/// The partition columns and the schema come from [`table_layouts`] while
/// the table's files are the ones they were inferred from.
async fn register_table(
    ctx: &SessionContext,
    name: &str,
    url: &str,
    store: &dyn ObjectStore,
    dir: &object_store::path::Path,
) -> Result<bool> {
    let context = || format!("registering history table {name} at {url}");
    let files: Vec<ObjectMeta> = store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(EngineError::storage(format!("listing {dir}")))?;
    if files.is_empty() {
        return Ok(false);
    }
    let fingerprint = fingerprint(&files);
    let table_url = ListingTableUrl::parse(url).map_err(EngineError::datafusion(context()))?;
    let known = table_layouts()
        .lock()
        .ok()
        .and_then(|layouts| layouts.get(url).cloned())
        .filter(|layout| layout.fingerprint == fingerprint);
    let layout = match known {
        Some(layout) => layout,
        None => {
            let layout = infer_layout(ctx, &table_url, fingerprint)
                .await
                .map_err(EngineError::datafusion(context()))?;
            if let Ok(mut layouts) = table_layouts().lock() {
                layouts.insert(url.to_string(), layout.clone());
            }
            layout
        }
    };
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(listing_options(&layout.partitions))
        .with_schema(Arc::clone(&layout.schema));
    let table = ListingTable::try_new(config).map_err(EngineError::datafusion(context()))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(EngineError::datafusion(context()))?;
    Ok(true)
}

/// What a table's files say about it: its Hive partition columns and its
/// file schema, inferred from every file's footer.
#[derive(Debug, Clone)]
struct TableLayout {
    fingerprint: u64,
    partitions: Vec<String>,
    schema: SchemaRef,
}

/// The layouts inferred in this process, by table URL. Inferring one lists
/// the table twice and merges the schemas of all its files; the server does
/// that for every request, so a layout is kept while the table's files (names,
/// sizes, modification times) are unchanged. One listing per request checks
/// that; new files, a new partition folder or a rewritten file infer again.
fn table_layouts() -> &'static Mutex<HashMap<String, TableLayout>> {
    static LAYOUTS: OnceLock<Mutex<HashMap<String, TableLayout>>> = OnceLock::new();
    LAYOUTS.get_or_init(Mutex::default)
}

fn fingerprint(files: &[ObjectMeta]) -> u64 {
    let mut keys: Vec<(&str, u64, i64)> = files
        .iter()
        .map(|f| {
            (
                f.location.as_ref(),
                f.size,
                f.last_modified.timestamp_micros(),
            )
        })
        .collect();
    keys.sort_unstable();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    keys.hash(&mut hasher);
    hasher.finish()
}

fn listing_options(partitions: &[String]) -> ListingOptions {
    ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(
            partitions
                .iter()
                .map(|p| (p.clone(), arrow::datatypes::DataType::Utf8))
                .collect(),
        )
}

async fn infer_layout(
    ctx: &SessionContext,
    table_url: &ListingTableUrl,
    fingerprint: u64,
) -> datafusion::error::Result<TableLayout> {
    let state = ctx.state();
    let partitions = listing_options(&[])
        .infer_partitions(&state, table_url)
        .await?;
    let config = ListingTableConfig::new(table_url.clone())
        .with_listing_options(listing_options(&partitions))
        .infer_schema(&state)
        .await?;
    let schema = config.file_schema.ok_or_else(|| {
        datafusion::error::DataFusionError::Internal("schema inference gave no schema".into())
    })?;
    Ok(TableLayout {
        fingerprint,
        partitions,
        schema,
    })
}
