//! `rcf_anomaly(values [, trees [, sample_size [, shingle_size [, time_decay
//! [, threshold]]]]]) OVER (PARTITION BY key ORDER BY ts)`: a Random Cut
//! Forest per key ([`crate::rcf`]). `values` is one number or an array of
//! them (`[temperature, vibration, power]`); parameters are constants.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, GenericListArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

use crate::keyed::{Recipe, Scorer};
use crate::rcf::{Rcf, RcfParams};
use crate::udwf::{Evaluator, plan_error, verdict_fields};
use crate::verdict::Verdict;

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
pub(crate) struct RcfFunction {
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
        let rcf = Rcf::new(params(args.input_exprs())?).map_err(|e| plan_error(NAME, e))?;
        let scorer: Box<dyn Scorer> = Box::new(rcf);
        Ok(Box::new(Evaluator(scorer)))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Struct(verdict_fields()),
            true,
        )))
    }
}

impl RcfFunction {
    /// How this call makes its forests (`args`: the call's arguments).
    pub(crate) fn recipe(&self, args: &[Arc<dyn PhysicalExpr>]) -> Result<Recipe> {
        let params = params(args)?;
        let fresh = move || -> crate::Result<Box<dyn Scorer>> { Ok(Box::new(Rcf::new(params)?)) };
        let parameters = format!("{:?}", fresh().map_err(|e| plan_error(NAME, e))?);
        Ok(Recipe {
            parameters,
            fresh: Box::new(fresh),
            restore: Box::new(|state| Ok(Box::new(Rcf::from_json(state)?))),
        })
    }
}

/// The forest's parameters from the call's arguments.
fn params(args: &[Arc<dyn PhysicalExpr>]) -> Result<RcfParams> {
    let p = constants(args)?;
    let d = RcfParams::default();
    let count = |i: usize, default: usize| p[i].map_or(default, |v| v.max(0.0) as usize);
    Ok(RcfParams {
        trees: count(0, d.trees),
        sample_size: count(1, d.sample_size),
        shingle_size: count(2, d.shingle_size),
        time_decay: p[3].or(d.time_decay),
        threshold: p[4].unwrap_or(d.threshold),
        seed: d.seed,
    })
}

/// The parameters after the values: constants or left out.
fn constants(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<[Option<f64>; 5]> {
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

impl Scorer for Rcf {
    fn score(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict> {
        Ok(self.observe(&values_at(values, row)?))
    }

    fn save(&self) -> crate::Result<String> {
        self.to_json()
    }
}
