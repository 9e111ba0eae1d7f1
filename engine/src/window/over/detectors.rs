//! The anomaly detectors' per-key state of one `OVER` operator, in and out
//! of its checkpoints.
//!
//! Each detector call of the window stream keeps its keys' detectors in a
//! [`DetectorStates`] (see `spindle_anomaly::keyed`: how they are pulled out
//! of DataFusion's evaluators and how a restored detector neither learns
//! twice from replayed rows nor answers them differently). A checkpoint
//! holds one batch per call after the operator's rows:
//!
//! | column | |
//! |---|---|
//! | `function` | `"<n>: <call>"`, the call's place among the stream's detector calls and its text |
//! | `parameters` | the model with every parameter, defaults filled in |
//! | `key_0`, `key_1`, … | the `PARTITION BY` values, in their own types |
//! | `state` | the key's detector, position and recent verdicts (JSON, floats bit-exact) |
//!
//! A restore refuses a batch whose call, parameters or key types differ
//! from the query's, naming the call and the first key.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use spindle_anomaly::keyed::{DetectorStates, SavedDetector, key_text};

/// One detector call's states and the types of its keys.
#[derive(Debug, Clone)]
pub struct DetectorSlot {
    /// The call's detectors, by key.
    pub states: Arc<DetectorStates>,
    /// The `PARTITION BY` types.
    pub key_types: Vec<DataType>,
}

fn schema(key_types: &[DataType]) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("function", DataType::Utf8, false),
        Field::new("parameters", DataType::Utf8, false),
    ];
    for (i, t) in key_types.iter().enumerate() {
        fields.push(Field::new(format!("key_{i}"), t.clone(), true));
    }
    fields.push(Field::new("state", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

fn label(index: usize, slot: &DetectorSlot) -> String {
    format!("{index}: {}", slot.states.function())
}

/// Every call's detectors as batches (one per call, possibly empty).
pub fn snapshot(slots: &[DetectorSlot]) -> Result<Vec<RecordBatch>> {
    slots
        .iter()
        .enumerate()
        .map(|(index, slot)| {
            let saved = slot
                .states
                .save()
                .map_err(|e| DataFusionError::Execution(e.to_string()))?;
            let rows = saved.len();
            let repeat = |text: &str| -> ArrayRef { Arc::new(StringArray::from(vec![text; rows])) };
            let mut columns = vec![
                repeat(&label(index, slot)),
                repeat(slot.states.parameters()),
            ];
            for (k, key_type) in slot.key_types.iter().enumerate() {
                columns.push(if rows == 0 {
                    arrow::array::new_empty_array(key_type)
                } else {
                    ScalarValue::iter_to_array(saved.iter().map(|s| s.key[k].clone()))?
                });
            }
            columns.push(Arc::new(StringArray::from_iter_values(
                saved.iter().map(|s| s.state.as_str()),
            )));
            Ok(RecordBatch::try_new(schema(&slot.key_types), columns)?)
        })
        .collect()
}

/// Hands checkpointed detectors to the query's calls.
pub fn restore(slots: &[DetectorSlot], batches: &[RecordBatch]) -> Result<()> {
    if slots.is_empty() && batches.iter().any(|b| b.num_rows() > 0) {
        // A query without detector calls is refused before this by the
        // job-upgrade check; here the calls run without kept state.
        tracing::warn!(
            "the checkpoint holds detector state, but detector calls keep none in this run \
             (SPINDLE_DETECTOR_STATE=off): the detectors restart from the replayed rows"
        );
        return Ok(());
    }
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let strings = |name: &str| -> Result<StringArray> {
            let column = batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "a checkpointed detector state without its `{name}` column"
                ))
            })?;
            arrow::compute::cast(column, &DataType::Utf8)?
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| DataFusionError::Internal(format!("`{name}` as text")))
        };
        let (function, parameters, states) = (
            strings("function")?,
            strings("parameters")?,
            strings("state")?,
        );
        let keys = batch.num_columns().saturating_sub(3);
        let key_of = |row: usize| -> Result<Vec<ScalarValue>> {
            (0..keys)
                .map(|k| ScalarValue::try_from_array(batch.column(2 + k), row))
                .collect()
        };
        let saved_function = function.value(0);
        let slot =
            fitting_slot(slots, batch, saved_function, parameters.value(0)).map_err(|why| {
                let key = key_of(0).map(|k| key_text(&k)).unwrap_or_default();
                DataFusionError::Plan(format!(
                    "the checkpointed state of detector {saved_function} (key {key}) does not \
                     fit this query: {why}"
                ))
            })?;
        for row in 0..batch.num_rows() {
            let saved = SavedDetector {
                key: key_of(row)?,
                state: states.value(row).to_string(),
            };
            slot.states
                .restore(&saved)
                .map_err(|e| DataFusionError::Plan(e.to_string()))?;
        }
    }
    Ok(())
}

/// The query's call the batch's detectors belong to, or why none fits.
fn fitting_slot<'a>(
    slots: &'a [DetectorSlot],
    batch: &RecordBatch,
    function: &str,
    parameters: &str,
) -> std::result::Result<&'a DetectorSlot, String> {
    let index = function
        .split_once(": ")
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .ok_or_else(|| format!("`{function}` names no place among the detector calls"))?;
    let slot = slots.get(index).ok_or_else(|| {
        format!(
            "this query's stream computes {} detector call(s)",
            slots.len()
        )
    })?;
    let ours = label(index, slot);
    if ours != function {
        return Err(format!("this query computes {ours} in its place"));
    }
    if slot.states.parameters() != parameters {
        return Err(format!(
            "it was saved with {parameters}, this query runs {}",
            slot.states.parameters()
        ));
    }
    if batch.schema().fields() != schema(&slot.key_types).fields() {
        return Err(format!(
            "its keys are {:?}, this query's are {:?}",
            batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect::<Vec<_>>(),
            slot.key_types
        ));
    }
    Ok(slot)
}
