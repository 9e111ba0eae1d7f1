//! Stateful stages keep one operator per source partition, like a Kafka
//! Streams task: a partition's windows (or buffered `OVER` rows) live apart
//! from the others', so its state can be checkpointed, dropped when Kafka
//! revokes the partition, and restored by whichever worker gets it next.
//! Keys do not span partitions (producers key readings by machine), so the
//! results equal one operator over everything.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::over::{self, OverParts};
use super::slot::Slot;
use crate::window::{WindowAssigner, WindowOperator};

/// Rows for a sink, with the source partition they came from.
pub type Tagged = (i32, RecordBatch);

/// A windowed aggregation, one operator per partition.
#[derive(Debug)]
pub(super) struct Windowed {
    pub(super) assigner: WindowAssigner,
    pub(super) pre: Arc<dyn ExecutionPlan>,
    /// An empty operator to copy for each new partition.
    pub(super) template: Box<dyn WindowOperator>,
    pub(super) operators: BTreeMap<i32, Box<dyn WindowOperator>>,
    pub(super) closed: Slot,
    pub(super) post: Arc<dyn ExecutionPlan>,
}

impl Windowed {
    pub(super) fn operator(&mut self, partition: i32) -> Result<&mut Box<dyn WindowOperator>> {
        if !self.operators.contains_key(&partition) {
            self.operators.insert(partition, self.template.empty()?);
        }
        self.operators
            .get_mut(&partition)
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("no operator".into()))
    }

    pub(super) async fn advance(
        &mut self,
        watermark: i64,
        task: &Arc<TaskContext>,
    ) -> Result<Vec<Tagged>> {
        let mut out = Vec::new();
        for (partition, operator) in &mut self.operators {
            let results = operator.close(watermark)?;
            finish(
                *partition,
                results,
                &self.closed,
                &self.post,
                task,
                &mut out,
            )
            .await?;
        }
        Ok(out)
    }
}

/// `OVER` windows, one running window stream per partition.
#[derive(Debug)]
pub(super) struct Over {
    pub(super) time_column: usize,
    pub(super) time_name: String,
    /// The whole pipeline's plan, split again for each new partition.
    pub(super) physical: Arc<dyn ExecutionPlan>,
    /// The first partition's parts (the plan to run rows through).
    pub(super) pre: Arc<dyn ExecutionPlan>,
    pub(super) parts: BTreeMap<i32, OverParts>,
    /// The watermark of the last release: older rows are late.
    pub(super) released: i64,
}

impl Over {
    pub(super) fn parts(
        &mut self,
        partition: i32,
        task: &Arc<TaskContext>,
    ) -> Result<&mut OverParts> {
        if !self.parts.contains_key(&partition) {
            let mut parts = over::split(
                Arc::clone(&self.physical),
                &self.time_name,
                Arc::clone(task),
            )?;
            parts.operator.start_at(self.released);
            self.parts.insert(partition, parts);
        }
        self.parts
            .get_mut(&partition)
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("no OVER parts".into()))
    }

    pub(super) async fn advance(
        &mut self,
        watermark: i64,
        task: &Arc<TaskContext>,
    ) -> Result<Vec<Tagged>> {
        self.released = self.released.max(watermark);
        let mut out = Vec::new();
        for (partition, parts) in &mut self.parts {
            let results = parts.operator.advance(watermark).await?;
            finish(
                *partition,
                results,
                &parts.results,
                &parts.post,
                task,
                &mut out,
            )
            .await?;
        }
        Ok(out)
    }
}

/// Runs a partition's emitted rows through the rest of the query.
async fn finish(
    partition: i32,
    results: Vec<RecordBatch>,
    slot: &Slot,
    post: &Arc<dyn ExecutionPlan>,
    task: &Arc<TaskContext>,
    out: &mut Vec<Tagged>,
) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    slot.fill(results);
    for batch in collect(Arc::clone(post), Arc::clone(task)).await? {
        out.push((partition, batch));
    }
    Ok(())
}
