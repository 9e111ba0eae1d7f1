//! [`JoinBoundsExec`]: passes the build side of a hash join through
//! unchanged while taking the min and max of each bound's build expression;
//! when every one of its partitions has ended it sets the probe side's
//! dynamic filter (see the parent module).

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    RecordBatchStream, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::{Bound, predicate};

/// The build side of a bounded join (see the module comment).
#[derive(Debug)]
pub(crate) struct JoinBoundsExec {
    input: Arc<dyn ExecutionPlan>,
    bounds: Vec<Bound>,
    filter: Arc<DynamicFilterPhysicalExpr>,
    extremes: Arc<Mutex<Extremes>>,
}

/// The min and max per bound over every partition read so far.
#[derive(Debug)]
struct Extremes {
    min: Vec<MinAccumulator>,
    max: Vec<MaxAccumulator>,
    finished: usize,
}

impl Extremes {
    fn new(bounds: &[Bound], schema: &SchemaRef) -> Result<Self> {
        let mut min = Vec::new();
        let mut max = Vec::new();
        for bound in bounds {
            let t = bound.build.data_type(schema)?;
            min.push(MinAccumulator::try_new(&t)?);
            max.push(MaxAccumulator::try_new(&t)?);
        }
        Ok(Self {
            min,
            max,
            finished: 0,
        })
    }
}

impl JoinBoundsExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        bounds: Vec<Bound>,
        filter: Arc<DynamicFilterPhysicalExpr>,
    ) -> Result<Self> {
        let extremes = Extremes::new(&bounds, &input.schema())?;
        Ok(Self {
            input,
            bounds,
            filter,
            extremes: Arc::new(Mutex::new(extremes)),
        })
    }
}

impl DisplayAs for JoinBoundsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let bounds: Vec<String> = self
            .bounds
            .iter()
            .map(|b| {
                let (op, agg) = if b.at_most {
                    ("<=", "max")
                } else {
                    (">=", "min")
                };
                format!("{} {op} {agg}({})", b.probe, b.build)
            })
            .collect();
        write!(f, "JoinBoundsExec: probe {}", bounds.join(" AND "))
    }
}

impl ExecutionPlan for JoinBoundsExec {
    fn name(&self) -> &str {
        "JoinBoundsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for bound in &self.bounds {
            if f(&bound.build)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.pop().filter(|_| children.is_empty()) else {
            return Err(DataFusionError::Internal(
                "JoinBoundsExec has exactly one child".into(),
            ));
        };
        // The filter stays: the probe side holds it.
        Ok(Arc::new(Self::new(
            input,
            self.bounds.clone(),
            Arc::clone(&self.filter),
        )?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(BoundsStream {
            input,
            bounds: self.bounds.clone(),
            partitions: self.input.output_partitioning().partition_count(),
            filter: Arc::clone(&self.filter),
            extremes: Arc::clone(&self.extremes),
            done: false,
        }))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }
}

struct BoundsStream {
    input: SendableRecordBatchStream,
    bounds: Vec<Bound>,
    partitions: usize,
    filter: Arc<DynamicFilterPhysicalExpr>,
    extremes: Arc<Mutex<Extremes>>,
    done: bool,
}

impl BoundsStream {
    fn observe(&self, batch: &RecordBatch) -> Result<()> {
        let mut values = Vec::with_capacity(self.bounds.len());
        for bound in &self.bounds {
            values.push(bound.build.evaluate(batch)?.into_array(batch.num_rows())?);
        }
        let mut extremes = self.lock()?;
        for (i, array) in values.into_iter().enumerate() {
            let array = [array];
            extremes.min[i].update_batch(&array)?;
            extremes.max[i].update_batch(&array)?;
        }
        Ok(())
    }

    /// This partition has ended; after the last one, the filter is set.
    fn finish(&self) -> Result<()> {
        let mut extremes = self.lock()?;
        extremes.finished += 1;
        if extremes.finished < self.partitions {
            return Ok(());
        }
        let mut pairs: Vec<(ScalarValue, ScalarValue)> = Vec::new();
        for i in 0..self.bounds.len() {
            pairs.push((extremes.min[i].evaluate()?, extremes.max[i].evaluate()?));
        }
        self.filter.update(predicate(&self.bounds, &pairs))?;
        self.filter.mark_complete();
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Extremes>> {
        self.extremes
            .lock()
            .map_err(|_| DataFusionError::Internal("JoinBoundsExec lock poisoned".into()))
    }
}

impl Stream for BoundsStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = self.input.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(batch))) => {
                if let Err(e) = self.observe(batch) {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            Poll::Ready(None) => {
                self.done = true;
                if let Err(e) = self.finish() {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            _ => {}
        }
        next
    }
}

impl RecordBatchStream for BoundsStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
