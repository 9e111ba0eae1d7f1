//! `rcf_anomaly(values [, trees [, sample_size [, shingle_size [, time_decay
//! [, threshold]]]]]) OVER (PARTITION BY key ORDER BY ts)`: a Random Cut
//! Forest per key ([`crate::rcf`]). `values` is one number or an array of
//! them (`[temperature, vibration, power]`); parameters are constants.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, GenericListArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::expressions::Literal;

use crate::rcf::{Rcf, RcfParams};
use crate::udwf::{verdict_fields, verdicts_to_array};

const NAME: &str = "rcf_anomaly";
const PARAMETERS: [&str; 5] = [
    "trees",
    "sample_size",
    "shingle_size",
    "time_decay",
    "threshold",
];

/// The window function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RcfFunction {
    signature: Signature,
}

/// `rcf_anomaly` for registration.
pub(crate) fn function() -> WindowUDF {
    WindowUDF::new_from_impl(RcfFunction {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

fn list_of_floats() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

impl WindowUDFImpl for RcfFunction {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.is_empty() || arg_types.len() > 1 + PARAMETERS.len() {
            return Err(DataFusionError::Plan(format!(
                "{NAME}(values, {}) takes 1 to {} arguments, got {}",
                PARAMETERS.join(", "),
                1 + PARAMETERS.len(),
                arg_types.len()
            )));
        }
        let first = match &arg_types[0] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if f.data_type().is_numeric() || f.data_type() == &DataType::Null =>
            {
                list_of_floats()
            }
            t if t.is_numeric() || t == &DataType::Null => DataType::Float64,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "{NAME}: values must be a number or an array of numbers, got {other}"
                )));
            }
        };
        let mut types = vec![first];
        types.extend(std::iter::repeat_n(DataType::Float64, arg_types.len() - 1));
        Ok(types)
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let p = constants(args.input_exprs())?;
        let d = RcfParams::default();
        let count = |i: usize, default: usize| p[i].map_or(default, |v| v.max(0.0) as usize);
        let params = RcfParams {
            trees: count(0, d.trees),
            sample_size: count(1, d.sample_size),
            shingle_size: count(2, d.shingle_size),
            time_decay: p[3].or(d.time_decay),
            threshold: p[4].unwrap_or(d.threshold),
            seed: d.seed,
        };
        let rcf = Rcf::new(params).map_err(|e| DataFusionError::Plan(format!("{NAME}: {e}")))?;
        Ok(Box::new(RcfEvaluator { rcf }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Struct(verdict_fields()),
            true,
        )))
    }
}

/// The parameters after the values: constants or left out.
fn constants(
    exprs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
) -> Result<[Option<f64>; 5]> {
    let mut out = [None; 5];
    for (i, (expr, name)) in exprs.iter().skip(1).zip(PARAMETERS).enumerate() {
        let literal = expr
            .downcast_ref::<Literal>()
            .ok_or_else(|| DataFusionError::Plan(format!("{NAME}: {name} must be a constant")))?;
        out[i] = match literal.value().cast_to(&DataType::Float64)? {
            ScalarValue::Float64(v) => v,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "{NAME}: {name} must be a number, got {other}"
                )));
            }
        };
    }
    Ok(out)
}

#[derive(Debug)]
struct RcfEvaluator {
    rcf: Rcf,
}

/// Row `row`'s values.
fn values_at(values: &[ArrayRef], row: usize) -> Result<Vec<Option<f64>>> {
    let array = values
        .first()
        .ok_or_else(|| DataFusionError::Internal(format!("{NAME} without input")))?;
    if let Some(floats) = array.as_any().downcast_ref::<Float64Array>() {
        return Ok(vec![floats.is_valid(row).then(|| floats.value(row))]);
    }
    let list = array
        .as_any()
        .downcast_ref::<GenericListArray<i32>>()
        .ok_or_else(|| DataFusionError::Internal(format!("{NAME} of {}", array.data_type())))?;
    if list.is_null(row) {
        return Ok(vec![None]);
    }
    let inner = list.value(row);
    let floats = inner
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| DataFusionError::Internal(format!("{NAME} of {}", inner.data_type())))?;
    Ok((0..floats.len())
        .map(|i| floats.is_valid(i).then(|| floats.value(i)))
        .collect())
}

impl PartitionEvaluator for RcfEvaluator {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let verdict = self.rcf.observe(&values_at(values, range.start)?);
        let array = verdicts_to_array(std::iter::once(verdict), 1);
        Ok(ScalarValue::Struct(Arc::new(array)))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let verdicts = (0..num_rows)
            .map(|row| values_at(values, row).map(|v| self.rcf.observe(&v)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(verdicts_to_array(verdicts.into_iter(), num_rows)))
    }
}
