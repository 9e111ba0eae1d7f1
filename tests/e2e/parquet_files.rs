//! What a Parquet sink left behind: every file per partition directory, each
//! checked to be a whole Parquet file (`PAR1` at both ends, a footer that
//! parses), and nothing else (no temporary or partial files).

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

/// Partition directory (relative to the table root) → file name → rows.
pub(crate) type Layout = BTreeMap<String, BTreeMap<String, i64>>;

/// The rows in `data`, after checking it is one complete Parquet file.
fn complete_parquet_rows(name: &str, data: Bytes) -> i64 {
    assert!(
        data.len() >= 12 && data.starts_with(b"PAR1") && data.ends_with(b"PAR1"),
        "{name} is not a complete Parquet file ({} bytes)",
        data.len()
    );
    let reader = SerializedFileReader::new(data).unwrap_or_else(|e| panic!("{name}: {e}"));
    reader.metadata().file_metadata().num_rows()
}

/// Adds the file at `relative` to `layout`; any name but `*.parquet` is a
/// leftover (a temporary, staging or partial file).
fn add(layout: &mut Layout, relative: &str, data: Bytes) {
    let (dir, name) = relative.rsplit_once('/').unwrap_or(("", relative));
    assert!(
        name.ends_with(".parquet") && !name.starts_with('.') && !name.contains('#'),
        "temporary or partial file left behind: {relative}"
    );
    let rows = complete_parquet_rows(relative, data);
    assert!(rows > 0, "{relative} holds no rows");
    layout
        .entry(dir.to_string())
        .or_default()
        .insert(name.to_string(), rows);
}

/// Every file under the local directory `root`, walked with `std::fs` (which,
/// unlike object_store's own listing, also shows its staging files `name#N`).
pub(crate) fn local_layout(root: &Path) -> Layout {
    let mut layout = Layout::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().to_string_lossy();
            let data = Bytes::from(std::fs::read(&path).unwrap());
            add(&mut layout, &relative, data);
        }
    }
    layout
}

/// Every object under `prefix` in `store`.
pub(crate) async fn store_layout(store: &dyn ObjectStore, prefix: &StorePath) -> Layout {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await.unwrap();
    let mut layout = Layout::new();
    for object in objects {
        let relative = object
            .location
            .as_ref()
            .strip_prefix(prefix.as_ref())
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        let data = store
            .get(&object.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        add(&mut layout, &relative, data);
    }
    layout
}

/// Rows over every file.
pub(crate) fn total_rows(layout: &Layout) -> i64 {
    layout.values().flat_map(|files| files.values()).sum()
}

/// Files per partition directory.
pub(crate) fn files_per_directory(layout: &Layout) -> BTreeMap<String, usize> {
    layout
        .iter()
        .map(|(dir, files)| (dir.clone(), files.len()))
        .collect()
}
