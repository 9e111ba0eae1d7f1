//! `anomaly_model('name', f1, f2, …)`: scores each row with a trained model
//! from the model directory; returns `{score, flag, threshold, reason}` like
//! the online detectors. The model is stateless, so this is an ordinary
//! scalar function (no `OVER`). The name must be a constant; the values are
//! the model's features in its order (`spindle train` prints them).
//!
//! ```sql
//! SELECT machine_id, ts, anomaly_model('press_iforest', temperature, vibration, power) AS m
//! FROM sensors
//! ```

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::Matrix;
use super::model::LoadedModel;
use super::store::ModelStore;
use crate::udwf::{verdict_fields, verdicts_to_array};
use crate::verdict::Verdict;

const NAME: &str = "anomaly_model";

/// The SQL function over one model directory.
#[derive(Debug)]
pub struct AnomalyModel {
    store: Arc<ModelStore>,
    signature: Signature,
}

impl PartialEq for AnomalyModel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for AnomalyModel {}

impl Hash for AnomalyModel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.store.directory().hash(state);
    }
}

impl AnomalyModel {
    /// Over `store`.
    pub fn new(store: Arc<ModelStore>) -> Self {
        Self {
            store,
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }

    fn model(&self, name: &str, values: usize) -> Result<Arc<LoadedModel>> {
        let model = self
            .store
            .get(name)
            .map_err(|e| DataFusionError::Execution(format!("{NAME}: {e}")))?;
        let features = &model.file.features;
        if features.len() != values {
            return Err(DataFusionError::Plan(format!(
                "{NAME}('{name}'): the model takes {} features ({}), got {values} values",
                features.len(),
                features.join(", ")
            )));
        }
        Ok(model)
    }
}

fn model_name(value: Option<&ScalarValue>) -> Result<String> {
    match value {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s))) => Ok(s.clone()),
        _ => Err(DataFusionError::Plan(format!(
            "{NAME}: the model name (first argument) must be a constant string"
        ))),
    }
}

impl ScalarUDFImpl for AnomalyModel {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return Err(DataFusionError::Plan(format!(
                "{NAME}('model', feature, …) takes a model name and its features, got {} arguments",
                arg_types.len()
            )));
        }
        let mut types = vec![DataType::Utf8];
        for t in &arg_types[1..] {
            if !(t.is_numeric() || *t == DataType::Null) {
                return Err(DataFusionError::Plan(format!(
                    "{NAME}: features must be numbers, got {t}"
                )));
            }
            types.push(DataType::Float64);
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(verdict_fields()))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // Checked when the query is planned: unknown models and wrong
        // feature counts are errors at submission, not at the first row.
        let name = model_name(args.scalar_arguments.first().copied().flatten())?;
        self.model(&name, args.arg_fields.len().saturating_sub(1))?;
        Ok(Arc::new(Field::new(
            NAME,
            DataType::Struct(verdict_fields()),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let name = match args.args.first() {
            Some(ColumnarValue::Scalar(s)) => model_name(Some(s))?,
            _ => model_name(None)?,
        };
        let model = self.model(&name, args.args.len() - 1)?;
        let columns = args.args[1..]
            .iter()
            .map(|c| {
                let array = c.to_array(rows)?;
                array
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .cloned()
                    .ok_or_else(|| {
                        DataFusionError::Internal(format!(
                            "{NAME}: feature of {}",
                            array.data_type()
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        // Rows with every feature finite are scored together (the forest's
        // block scorer); the others get a verdict naming the bad feature.
        let mut values = vec![None; columns.len()];
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(rows);
        let mut finite = Vec::with_capacity(rows * columns.len());
        for i in 0..rows {
            for (v, c) in values.iter_mut().zip(&columns) {
                *v = c.is_valid(i).then(|| c.value(i));
            }
            match model.finite(&values) {
                Ok(x) => {
                    finite.extend(x);
                    verdicts.push(None);
                }
                Err(v) => verdicts.push(Some(v)),
            }
        }
        let matrix = Matrix::new(finite.len() / columns.len(), columns.len(), finite)
            .map_err(|e| DataFusionError::Internal(format!("{NAME}: {e}")))?;
        let scores = model.score_all(&matrix);
        let mut next = 0;
        let verdicts = verdicts.into_iter().map(|v| {
            v.unwrap_or_else(|| {
                let verdict = model.scored(matrix.row(next), scores[next]);
                next += 1;
                verdict
            })
        });
        let array: ArrayRef = Arc::new(verdicts_to_array(verdicts, rows));
        Ok(ColumnarValue::Array(array))
    }
}

/// Registers `anomaly_model` over `store` in `ctx` (replacing an earlier one).
pub fn register(ctx: &SessionContext, store: Arc<ModelStore>) {
    ctx.register_udf(ScalarUDF::new_from_impl(AnomalyModel::new(store)));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use arrow::array::{RecordBatch, StructArray};
    use arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::collect;

    use super::*;
    use crate::trained::model::{Fit, train};

    fn thresholds(batches: &[RecordBatch]) -> Vec<f64> {
        let verdicts = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let t = verdicts
            .column_by_name("threshold")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        t.values().to_vec()
    }

    /// A job compiles its plan once and runs it per micro-batch: the same
    /// physical plan must score with a model retrained in between.
    #[tokio::test]
    async fn a_compiled_plan_picks_up_a_new_model_version() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = vec!["a".into(), "b".into()];
        let rows: Vec<Vec<f64>> = (0..50)
            .map(|i| vec![i as f64, (i * 7 % 11) as f64])
            .collect();
        let data = Matrix::from_rows(&rows).unwrap();
        let fit = Fit::T2 { probability: 0.99 };
        let mut model = train("m", &names, &data, &fit, None).unwrap();
        model.save(&dir.path().join("m.json")).unwrap();
        let store = ModelStore::new(dir.path()).with_reload_interval(Duration::ZERO);
        let ctx = SessionContext::new();
        register(&ctx, Arc::new(store));
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
                Arc::new(Float64Array::from(vec![3.0, 4.0])),
            ],
        )
        .unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let plan = ctx
            .sql("SELECT anomaly_model('m', a, b) FROM t")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let first = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        assert_eq!(thresholds(&first), vec![model.threshold; 2]);
        model.version = 2;
        model.threshold = 42.0;
        model.save(&dir.path().join("m.json")).unwrap();
        let second = collect(plan, ctx.task_ctx()).await.unwrap();
        assert_eq!(thresholds(&second), vec![42.0, 42.0]);
    }
}
