//! Where checkpoints live: `<root>/<job>/<source>/p<partition>/<epoch>.ckpt`
//! on a local path or an `s3://` URL. Each object is written whole (a local
//! temporary file renamed into place, or one S3 PUT) and never overwritten;
//! reading takes the newest epoch that decodes, so a corrupt or partial
//! checkpoint falls back to the one before, with a warning naming it.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{PartitionCheckpoint, format};
use crate::error::{EngineError, Result};
use crate::storage::{self, Location};

/// What a partition's checkpoints hold.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    /// The newest complete checkpoint.
    pub checkpoint: Option<PartitionCheckpoint>,
    /// The newest epoch written (0: none).
    pub newest_epoch: u64,
}

/// Checkpoints of one job.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    location: Location,
    job: String,
    /// Complete checkpoints kept per partition.
    keep: usize,
}

impl CheckpointStore {
    /// Opens `root` (local path or `s3://…`) for `job`, keeping the newest
    /// `keep` checkpoints of each partition.
    pub fn open(root: &str, job: &str, keep: usize) -> Result<Self> {
        Ok(Self {
            location: storage::open(root)?,
            job: job.to_string(),
            keep: keep.max(1),
        })
    }

    /// `source` is the source's checkpoint key (`table/topic@group`).
    fn dir(&self, source: &str, partition: i32) -> StorePath {
        let mut dir = self.location.prefix.clone().join(self.job.as_str());
        for part in source.split('/').filter(|p| !p.is_empty()) {
            dir = dir.join(part);
        }
        dir.join(format!("p{partition}").as_str())
    }

    fn object(&self, source: &str, partition: i32, epoch: u64) -> StorePath {
        self.dir(source, partition)
            .join(format!("{epoch:020}.ckpt"))
    }

    /// Writes `checkpoint`; fails if its epoch exists (another worker wrote
    /// it: two owners of one partition).
    pub async fn write(&self, checkpoint: &PartitionCheckpoint) -> Result<()> {
        let path = self.object(&checkpoint.source, checkpoint.partition, checkpoint.epoch);
        let bytes = format::encode(checkpoint).map_err(|message| EngineError::Checkpoint {
            path: path.to_string(),
            message,
        })?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.location
            .store
            .put_opts(&path, PutPayload::from(Bytes::from(bytes)), options)
            .await
            .map_err(EngineError::storage(format!("writing checkpoint {path}")))?;
        Ok(())
    }

    /// Epochs of `partition`'s checkpoints, newest first.
    async fn epochs(&self, source: &str, partition: i32) -> Result<Vec<u64>> {
        let dir = self.dir(source, partition);
        let objects: Vec<_> = self
            .location
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(EngineError::storage(format!(
                "listing checkpoints in {dir}"
            )))?;
        let mut epochs: Vec<u64> = objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".ckpt")?.parse().ok())
            .collect();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(epochs)
    }

    /// The newest checkpoint of `partition` that reads back whole, if any,
    /// and the newest epoch present (readable or not: the next checkpoint
    /// must come after it).
    pub async fn latest(&self, source: &str, partition: i32) -> Result<Latest> {
        let epochs = self.epochs(source, partition).await?;
        let newest_epoch = epochs.first().copied().unwrap_or(0);
        let checkpoint = self.newest_readable(source, partition, &epochs).await?;
        Ok(Latest {
            checkpoint,
            newest_epoch,
        })
    }

    async fn newest_readable(
        &self,
        source: &str,
        partition: i32,
        epochs: &[u64],
    ) -> Result<Option<PartitionCheckpoint>> {
        for &epoch in epochs {
            let path = self.object(source, partition, epoch);
            let bytes = match self.location.store.get(&path).await {
                Ok(found) => found
                    .bytes()
                    .await
                    .map_err(EngineError::storage(format!("reading checkpoint {path}")))?,
                // Pruned by another worker between listing and reading.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => {
                    return Err(EngineError::storage(format!("reading checkpoint {path}"))(
                        e,
                    ));
                }
            };
            match format::decode(&bytes) {
                Ok(checkpoint)
                    if checkpoint.partition == partition && checkpoint.source == source =>
                {
                    return Ok(Some(checkpoint));
                }
                Ok(_) => tracing::warn!(%path, "checkpoint names another partition; skipped"),
                Err(reason) => tracing::warn!(
                    %path, %reason,
                    "checkpoint is unreadable; falling back to the previous one"
                ),
            }
        }
        Ok(None)
    }

    /// Deletes all but the newest `keep` checkpoints of `partition`.
    pub async fn prune(&self, source: &str, partition: i32) -> Result<()> {
        for epoch in self
            .epochs(source, partition)
            .await?
            .into_iter()
            .skip(self.keep)
        {
            let path = self.object(source, partition, epoch);
            match self.location.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(EngineError::storage(format!("pruning checkpoint {path}"))(
                        e,
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::checkpoint::{PipelineState, StagedFile};

    fn checkpoint(epoch: u64) -> PartitionCheckpoint {
        let schema = Arc::new(Schema::new(vec![Field::new("sum", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        PartitionCheckpoint {
            job: "job".into(),
            source: "sensors/readings.v1@plant-1".into(),
            partition: 2,
            epoch,
            next_offset: 100 * epoch as i64,
            watermark: Some(7),
            closed_through: 5,
            created_ms: 1,
            staged: vec![StagedFile {
                sink: "history".into(),
                staged: "a".into(),
                target: "b".into(),
            }],
            pipelines: vec![
                PipelineState {
                    sink: "history".into(),
                    batches: vec![batch.clone(), batch],
                },
                PipelineState {
                    sink: "empty".into(),
                    batches: vec![],
                },
            ],
        }
    }

    #[test]
    fn encoding_round_trips_and_every_flipped_byte_is_caught() {
        let original = checkpoint(3);
        let bytes = format::encode(&original).unwrap();
        assert_eq!(format::decode(&bytes).unwrap(), original);
        for at in [0, 9, 13, 20, 25, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(format::decode(&bad).is_err(), "flipped byte {at} accepted");
        }
        assert!(
            format::decode(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
    }

    #[tokio::test]
    async fn latest_skips_a_corrupt_newest_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let store = CheckpointStore::open(root, "job", 2).unwrap();
        for epoch in 1..=3 {
            store.write(&checkpoint(epoch)).await.unwrap();
        }
        assert!(
            store.write(&checkpoint(3)).await.is_err(),
            "an epoch is written once"
        );
        // A torn write of epoch 4.
        let torn = format::encode(&checkpoint(4)).unwrap();
        let path = dir
            .path()
            .join("job/sensors/readings.v1@plant-1/p2/00000000000000000004.ckpt");
        std::fs::write(&path, &torn[..torn.len() / 2]).unwrap();
        let latest = store
            .latest("sensors/readings.v1@plant-1", 2)
            .await
            .unwrap();
        assert_eq!(latest.checkpoint.unwrap().epoch, 3);
        assert_eq!(
            latest.newest_epoch, 4,
            "the next checkpoint comes after the torn one"
        );
        assert!(
            store
                .latest("sensors", 9)
                .await
                .unwrap()
                .checkpoint
                .is_none()
        );
        store.prune("sensors/readings.v1@plant-1", 2).await.unwrap();
        let mut left: Vec<_> =
            std::fs::read_dir(dir.path().join("job/sensors/readings.v1@plant-1/p2"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
        left.sort();
        assert_eq!(
            left,
            ["00000000000000000003.ckpt", "00000000000000000004.ckpt"]
        );
    }
}
