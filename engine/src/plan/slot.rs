//! A leaf operator fed by hand: the runtime puts a micro-batch into a
//! [`Slot`], then executes a physical plan whose leaf is a [`SlotExec`]
//! reading it. Planning happens once per job; each micro-batch only executes
//! the (stateless) plan again.

use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

/// The batches the next execution reads.
#[derive(Debug, Clone, Default)]
pub struct Slot(Arc<Mutex<Vec<RecordBatch>>>);

impl Slot {
    /// Replaces the slot's contents.
    pub fn fill(&self, batches: Vec<RecordBatch>) {
        if let Ok(mut guard) = self.0.lock() {
            *guard = batches;
        }
    }

    fn take(&self) -> Vec<RecordBatch> {
        self.0
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

/// A table whose scan is a [`SlotExec`] on a shared [`Slot`].
#[derive(Debug)]
pub struct SlotTable {
    schema: SchemaRef,
    slot: Slot,
}

impl SlotTable {
    /// A table of `schema` reading `slot`.
    pub fn new(schema: SchemaRef, slot: Slot) -> Self {
        Self { schema, slot }
    }
}

#[async_trait]
impl TableProvider for SlotTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SlotExec::new(
            Arc::clone(&self.schema),
            projection.cloned(),
            self.slot.clone(),
        )?))
    }
}

/// Yields the slot's batches (projected) once per execution.
#[derive(Debug)]
pub struct SlotExec {
    slot: Slot,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SlotExec {
    /// Reads `slot`, whose batches have `table_schema`, keeping `projection`.
    pub fn new(
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        slot: Slot,
    ) -> Result<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => table_schema,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            slot,
            projection,
            schema,
            properties,
        })
    }
}

impl DisplayAs for SlotExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotExec: projection={:?}", self.projection)
    }
}

impl ExecutionPlan for SlotExec {
    fn name(&self) -> &'static str {
        "SlotExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "SlotExec has one partition, not {partition}"
            )));
        }
        let batches = self
            .slot
            .take()
            .into_iter()
            .map(|b| match &self.projection {
                Some(p) => b.project(p).map_err(DataFusionError::from),
                None => Ok(b),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::pin(MemoryStream::try_new(
            batches,
            Arc::clone(&self.schema),
            None,
        )?))
    }
}
