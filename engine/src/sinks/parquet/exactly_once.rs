//! Exactly-once Parquet output for checkpointed jobs.
//!
//! Rows from a checkpointed source partition go to files of their own,
//! written under a staging folder with a `.pending` extension no reader
//! picks up (`<table>/_staging/<job>/<source>-p<partition>/`). At the
//! partition's checkpoint the files are completed and listed in the
//! checkpoint; once the checkpoint is written they are moved to their final
//! names, `<table>/<date=…/hour=…>/part-<job>-<source>-p<partition>-e<epoch>-<n>.parquet`.
//! After a crash the restored checkpoint's files are moved again (a no-op
//! for those already moved) and everything else left in the partition's
//! staging folder — a crashed attempt's output, which the replay writes
//! again — is deleted. So committed history is rewritten, never duplicated.

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::checkpoint::StagedFile;
use crate::error::{EngineError, Result};
use crate::sinks::Origin;

/// The staging folder of one origin.
pub(super) fn staging_dir(prefix: &StorePath, job: &str, origin: &Origin) -> StorePath {
    prefix
        .clone()
        .join("_staging")
        .join(job)
        .join(format!("{}-p{}", origin.source, origin.partition))
}

/// Where file number `seq` of `origin`'s epoch is written, and where it goes.
pub(super) fn paths(
    prefix: &StorePath,
    job: &str,
    origin: &Origin,
    seq: u64,
    partition_dir: &StorePath,
) -> (StorePath, StorePath) {
    let staged = staging_dir(prefix, job, origin)
        .join(format!("e{}-{seq:04}.parquet.pending", origin.epoch).as_str());
    let target = partition_dir.clone().join(
        format!(
            "part-{job}-{}-p{}-e{}-{seq:04}.parquet",
            origin.source, origin.partition, origin.epoch
        )
        .as_str(),
    );
    (staged, target)
}

/// Moves staged files to their final names; a file already moved is
/// skipped, so this may run again after a crash.
pub(super) async fn publish(store: &dyn ObjectStore, files: &[StagedFile]) -> Result<()> {
    for file in files {
        let staged = StorePath::from(file.staged.as_str());
        let target = StorePath::from(file.target.as_str());
        match store.rename(&staged, &target).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => {
                if store.head(&target).await.is_err() {
                    return Err(EngineError::Checkpoint {
                        path: file.staged.clone(),
                        message: format!(
                            "a checkpointed output file is gone: neither {} nor {} exists",
                            file.staged, file.target
                        ),
                    });
                }
            }
            Err(e) => {
                return Err(EngineError::storage(format!(
                    "publishing {} as {}",
                    file.staged, file.target
                ))(e));
            }
        }
    }
    Ok(())
}

/// Deletes everything in `dir` (what a crashed attempt staged).
pub(super) async fn discard(store: &dyn ObjectStore, dir: &StorePath) -> Result<usize> {
    let leftovers: Vec<_> = store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(EngineError::storage(format!("listing {dir}")))?;
    for object in &leftovers {
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(EngineError::storage(format!(
                    "deleting {}",
                    object.location
                ))(e));
            }
        }
    }
    Ok(leftovers.len())
}
