//! Object storage for history and checkpoints: a local path or an `s3://`
//! URL (configured from the standard AWS environment: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`).

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use url::Url;

use crate::error::{EngineError, Result};

/// A store and the prefix inside it that a path or URL names.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix within it.
    pub prefix: StorePath,
    /// The URL DataFusion registers the store under (`s3://bucket`, `file://`).
    pub url: Url,
}

/// Opens `path_or_url`: `s3://bucket/prefix` or a local directory (created).
pub fn open(path_or_url: &str) -> Result<Location> {
    if let Some(rest) = path_or_url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(EngineError::storage(format!(
                "configuring S3 for {path_or_url}"
            )))?;
        let url = Url::parse(&format!("s3://{bucket}"))
            .map_err(|e| EngineError::Internal(format!("bad S3 URL {path_or_url}: {e}")))?;
        return Ok(Location {
            store: Arc::new(store),
            prefix: StorePath::from(prefix),
            url,
        });
    }
    let local = path_or_url.strip_prefix("file://").unwrap_or(path_or_url);
    std::fs::create_dir_all(local).map_err(EngineError::io(format!("creating {local}")))?;
    let absolute =
        std::fs::canonicalize(local).map_err(EngineError::io(format!("resolving {local}")))?;
    let prefix = StorePath::from_filesystem_path(&absolute)
        .map_err(|e| EngineError::Internal(format!("using {}: {e}", absolute.display())))?;
    let url = Url::parse("file:///").map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        prefix,
        url,
    })
}

impl Location {
    /// `path` in this store as people name it, for messages: an absolute
    /// file path for a local directory, `s3://bucket/key` on S3. (An
    /// object-store path has no leading slash: `tmp/x/…` in an error
    /// reads as relative to the working directory.)
    pub fn display(&self, path: &StorePath) -> String {
        match self.url.scheme() {
            "file" => format!("/{path}"),
            _ => format!("{}/{path}", self.url.as_str().trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_messages_are_absolute_files_or_urls() {
        let dir = tempfile::tempdir().unwrap();
        let local = open(dir.path().to_str().unwrap()).unwrap();
        let file = local.prefix.clone().join("part.parquet");
        let shown = local.display(&file);
        assert!(shown.starts_with('/'), "{shown}");
        assert_eq!(
            std::path::Path::new(&shown),
            std::fs::canonicalize(dir.path())
                .unwrap()
                .join("part.parquet")
        );
        let s3 = Location {
            store: Arc::new(LocalFileSystem::new()),
            prefix: StorePath::from("history"),
            url: Url::parse("s3://bucket").unwrap(),
        };
        assert_eq!(
            s3.display(&StorePath::from("history/a.parquet")),
            "s3://bucket/history/a.parquet"
        );
    }
}
