//! The detectors as DataFusion window functions, one state per partition
//! (source) fed rows in `ORDER BY` (event-time) order:
//!
//! ```sql
//! gaussian_anomaly(temperature [, p [, warmup]]) OVER (PARTITION BY machine_id ORDER BY ts)
//! ```
//!
//! Each returns `{score, flag, threshold, reason}`; `inter_arrival(ts)`
//! returns seconds since the source's previous reading. On a stream the
//! engine runs them in DataFusion's bounded window operator, so state carries
//! across micro-batches; in batch SQL they give the same values over the
//! same rows in the same order.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Array, Float64Builder, StringBuilder, StructArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion::prelude::SessionContext;

use crate::cusum::{Cusum, CusumParams};
use crate::ewma::{EwmaChart, EwmaParams, Statistic};
use crate::flatline::Flatline;
use crate::gaussian::{GaussianLimits, GaussianParams};
use crate::keyed::{Recipe, Scorer};
use crate::likelihood::{AnomalyLikelihood, LikelihoodParams};
use crate::verdict::{Detector, Verdict};

/// The detector functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// `gaussian_anomaly(value [, probability [, warmup]])`
    Gaussian,
    /// `ewma_anomaly(value [, half_life [, limit [, warmup]]])`
    Ewma,
    /// `ew_variance_anomaly(value [, half_life [, limit [, warmup]]])`
    EwVariance,
    /// `cusum_anomaly(value [, slack [, threshold [, warmup]]])`
    Cusum,
    /// `anomaly_likelihood(score [, short_window [, long_window [, threshold]]])`
    Likelihood,
    /// `flatline_anomaly(value [, repeats])`
    Flatline,
}

impl Model {
    /// Every model.
    pub const ALL: [Model; 6] = [
        Self::Flatline,
        Self::Gaussian,
        Self::Ewma,
        Self::EwVariance,
        Self::Cusum,
        Self::Likelihood,
    ];

    /// The SQL name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Gaussian => "gaussian_anomaly",
            Self::Ewma => "ewma_anomaly",
            Self::EwVariance => "ew_variance_anomaly",
            Self::Cusum => "cusum_anomaly",
            Self::Likelihood => "anomaly_likelihood",
            Self::Flatline => "flatline_anomaly",
        }
    }

    /// Names of the parameters after the value, for messages.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::Gaussian => &["probability", "warmup"],
            Self::Ewma | Self::EwVariance => &["half_life", "limit", "warmup"],
            Self::Cusum => &["slack", "threshold", "warmup"],
            Self::Likelihood => &["short_window", "long_window", "threshold"],
            Self::Flatline => &["repeats"],
        }
    }

    /// A fresh detector from the constant parameters (`None`: default).
    pub fn detector(self, p: &[Option<f64>]) -> crate::Result<Box<dyn Detector>> {
        let at = |i: usize| p.get(i).copied().flatten();
        let count = |i: usize, d: u64| at(i).map_or(d, |v| v.max(0.0) as u64);
        Ok(match self {
            Self::Gaussian => {
                let d = GaussianParams::default();
                Box::new(GaussianLimits::new(GaussianParams {
                    probability: at(0).unwrap_or(d.probability),
                    warmup: count(1, d.warmup),
                })?)
            }
            Self::Ewma | Self::EwVariance => {
                let d = EwmaParams::default();
                let params = EwmaParams {
                    half_life: at(0).unwrap_or(d.half_life),
                    limit: at(1).unwrap_or(d.limit),
                    warmup: count(2, d.warmup),
                };
                let statistic = if self == Self::Ewma {
                    Statistic::Mean
                } else {
                    Statistic::Variance
                };
                Box::new(EwmaChart::new(statistic, params)?)
            }
            Self::Cusum => {
                let d = CusumParams::default();
                Box::new(Cusum::new(CusumParams {
                    slack: at(0).unwrap_or(d.slack),
                    threshold: at(1).unwrap_or(d.threshold),
                    warmup: count(2, d.warmup),
                })?)
            }
            Self::Flatline => Box::new(Flatline::new(count(0, 10))?),
            Self::Likelihood => {
                let d = LikelihoodParams::default();
                Box::new(AnomalyLikelihood::new(LikelihoodParams {
                    short_window: count(0, d.short_window as u64) as usize,
                    long_window: count(1, d.long_window as u64) as usize,
                    threshold: at(2).unwrap_or(d.threshold),
                })?)
            }
        })
    }
}

impl Model {
    /// A detector of this model from [`Detector::save_state`]'s JSON.
    pub fn restore(self, state: &str) -> crate::Result<Box<dyn Detector>> {
        fn load<T: Detector + serde::de::DeserializeOwned + 'static>(
            state: &str,
        ) -> crate::Result<Box<dyn Detector>> {
            Ok(Box::new(crate::state::decode::<T>(state)?))
        }
        match self {
            Self::Gaussian => load::<GaussianLimits>(state),
            Self::Ewma | Self::EwVariance => load::<EwmaChart>(state),
            Self::Cusum => load::<Cusum>(state),
            Self::Likelihood => load::<AnomalyLikelihood>(state),
            Self::Flatline => load::<Flatline>(state),
        }
    }
}

/// The struct a detector function returns.
pub fn verdict_fields() -> Fields {
    Fields::from(vec![
        Field::new("score", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, true),
    ])
}

/// A detector as a window function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DetectorFunction {
    model: Model,
    signature: Signature,
}

impl DetectorFunction {
    /// How this call makes its detectors (`args`: the call's arguments).
    pub(crate) fn recipe(
        &self,
        args: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
    ) -> Result<Recipe> {
        let model = self.model;
        let params = constant_parameters(model, args)?;
        let fresh =
            move || -> crate::Result<Box<dyn Scorer>> { Ok(Box::new(model.detector(&params)?)) };
        let parameters = format!(
            "{:?}",
            fresh().map_err(|e| plan_error(model.sql_name(), e))?
        );
        Ok(Recipe {
            parameters,
            fresh: Box::new(fresh),
            restore: Box::new(move |state| Ok(Box::new(model.restore(state)?))),
        })
    }
}

/// An error of the parameters, named by the function.
pub(crate) fn plan_error(function: &str, e: crate::AnomalyError) -> DataFusionError {
    DataFusionError::Plan(format!("{function}: {e}"))
}

impl WindowUDFImpl for DetectorFunction {
    fn name(&self) -> &str {
        self.model.sql_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let most = 1 + self.model.parameters().len();
        if arg_types.is_empty() || arg_types.len() > most {
            return Err(DataFusionError::Plan(format!(
                "{}(value, {}) takes 1 to {most} arguments, got {}",
                self.name(),
                self.model.parameters().join(", "),
                arg_types.len()
            )));
        }
        Ok(vec![DataType::Float64; arg_types.len()])
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let params = constant_parameters(self.model, args.input_exprs())?;
        let detector = self
            .model
            .detector(&params)
            .map_err(|e| plan_error(self.name(), e))?;
        let scorer: Box<dyn Scorer> = Box::new(detector);
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

/// The parameters after the value, which must be constants.
fn constant_parameters(
    model: Model,
    exprs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
) -> Result<Vec<Option<f64>>> {
    exprs
        .iter()
        .skip(1)
        .zip(model.parameters())
        .map(|(expr, name)| {
            let literal = expr.downcast_ref::<Literal>().ok_or_else(|| {
                DataFusionError::Plan(format!("{}: {name} must be a constant", model.sql_name()))
            })?;
            let value = literal.value().cast_to(&DataType::Float64)?;
            match value {
                ScalarValue::Float64(v) => Ok(v),
                other => Err(DataFusionError::Plan(format!(
                    "{}: {name} must be a number, got {other}",
                    model.sql_name()
                ))),
            }
        })
        .collect()
}

impl Scorer for Box<dyn Detector> {
    fn score(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict> {
        Ok(self.observe(value_at(values, row)?))
    }

    fn save(&self) -> crate::Result<String> {
        self.save_state()
    }
}

fn value_at(values: &[ArrayRef], row: usize) -> Result<Option<f64>> {
    let array = values
        .first()
        .ok_or_else(|| DataFusionError::Internal("detector without input".into()))?;
    let floats = array
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| {
            DataFusionError::Internal(format!("detector input is {}", array.data_type()))
        })?;
    Ok(floats.is_valid(row).then(|| floats.value(row)))
}

/// What gives each row its verdict, in event-time order: a detector, or
/// a key's detector kept for checkpoints ([`crate::keyed`]).
pub(crate) trait RowVerdicts: Send + std::fmt::Debug {
    /// Row `row`'s verdict (the detector learns from the row).
    fn verdict(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict>;
}

impl RowVerdicts for Box<dyn Scorer> {
    fn verdict(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict> {
        self.score(values, row)
    }
}

/// DataFusion's evaluator over [`RowVerdicts`]: causal, row by row.
#[derive(Debug)]
pub(crate) struct Evaluator<T>(pub(crate) T);

impl<T: RowVerdicts + 'static> PartitionEvaluator for Evaluator<T> {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let verdict = self.0.verdict(values, range.start)?;
        let array = verdicts_to_array(std::iter::once(verdict), 1);
        Ok(ScalarValue::Struct(Arc::new(array)))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let verdicts = (0..num_rows)
            .map(|row| self.0.verdict(values, row))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(verdicts_to_array(verdicts.into_iter(), num_rows)))
    }
}

pub(crate) fn verdicts_to_array(
    verdicts: impl Iterator<Item = Verdict>,
    rows: usize,
) -> StructArray {
    let mut score = Float64Builder::with_capacity(rows);
    let mut flag = BooleanBuilder::with_capacity(rows);
    let mut threshold = Float64Builder::with_capacity(rows);
    let mut reason = StringBuilder::new();
    for v in verdicts {
        score.append_option(v.score);
        flag.append_option(v.flag);
        threshold.append_option(v.threshold);
        reason.append_option(v.reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(score.finish()),
        Arc::new(flag.finish()),
        Arc::new(threshold.finish()),
        Arc::new(reason.finish()),
    ];
    StructArray::new(verdict_fields(), columns, None)
}

/// `inter_arrival(ts)`: seconds since the source's previous reading (NULL
/// for its first), so stalled or bursting sensors can be scored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct InterArrival {
    signature: Signature,
}

impl WindowUDFImpl for InterArrival {
    fn name(&self) -> &str {
        "inter_arrival"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Timestamp(_, _)] => Ok(arg_types.to_vec()),
            other => Err(DataFusionError::Plan(format!(
                "inter_arrival(ts) takes one timestamp, got {other:?}"
            ))),
        }
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(InterArrivalEvaluator { previous: None }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug)]
struct InterArrivalEvaluator {
    previous: Option<f64>,
}

impl InterArrivalEvaluator {
    fn next(&mut self, seconds: Option<f64>) -> Option<f64> {
        let gap = seconds.zip(self.previous).map(|(now, before)| now - before);
        if seconds.is_some() {
            self.previous = seconds;
        }
        gap
    }
}

/// One row's time in seconds (the streaming path calls this per row: no
/// array conversions), microsecond-exact like [`seconds`].
fn seconds_at(array: &ArrayRef, row: usize) -> Result<Option<f64>> {
    let micros = match ScalarValue::try_from_array(array, row)? {
        ScalarValue::TimestampSecond(v, _) => v.map(|s| s * 1_000_000),
        ScalarValue::TimestampMillisecond(v, _) => v.map(|ms| ms * 1_000),
        ScalarValue::TimestampMicrosecond(v, _) => v,
        ScalarValue::TimestampNanosecond(v, _) => v.map(|ns| ns / 1_000),
        other => {
            return Err(DataFusionError::Internal(format!(
                "inter_arrival of {}",
                other.data_type()
            )));
        }
    };
    Ok(micros.map(|us| us as f64 / 1e6))
}

fn seconds(values: &[ArrayRef]) -> Result<Float64Array> {
    let array = values
        .first()
        .ok_or_else(|| DataFusionError::Internal("inter_arrival without input".into()))?;
    let micros = cast(
        array,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
    )?;
    let ints = cast(&micros, &DataType::Int64)?;
    let floats = cast(&ints, &DataType::Float64)?;
    let floats = floats
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| DataFusionError::Internal("time as float".into()))?;
    Ok(floats.unary(|us| us / 1e6))
}

impl PartitionEvaluator for InterArrivalEvaluator {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let array = values
            .first()
            .ok_or_else(|| DataFusionError::Internal("inter_arrival without input".into()))?;
        Ok(ScalarValue::Float64(
            self.next(seconds_at(array, range.start)?),
        ))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let s = seconds(values)?;
        let out: Float64Array = (0..num_rows)
            .map(|i| self.next(s.is_valid(i).then(|| s.value(i))))
            .collect();
        Ok(Arc::new(out))
    }
}

/// Registers every model function in `ctx`; `anomaly_model` reads the
/// process's model directory ([`crate::trained::store::default_directory`]).
pub fn register(ctx: &SessionContext) {
    let store = crate::trained::store::ModelStore::new(crate::trained::store::default_directory());
    crate::trained::udf::register(ctx, Arc::new(store));
    for model in Model::ALL {
        ctx.register_udwf(WindowUDF::new_from_impl(DetectorFunction {
            model,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
    ctx.register_udwf(crate::rcf_udwf::function());
    ctx.register_udwf(WindowUDF::new_from_impl(InterArrival {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A checkpoint in the middle of a stream: every detector restored from
    /// its saved state continues exactly as the one that was not stopped.
    #[test]
    fn every_detector_restored_from_its_state_continues_identically() {
        let value = |i: usize| {
            let noise = ((i * 7919) % 101) as f64 / 50.0;
            let spike = if i.is_multiple_of(97) { 25.0 } else { 0.0 };
            Some(50.0 + noise + spike + if i > 700 { 5.0 } else { 0.0 })
        };
        for model in Model::ALL {
            let mut running = model.detector(&[]).unwrap();
            for i in 0..500 {
                running.observe(value(i));
            }
            let state = running.save_state().unwrap();
            let mut restored = model.restore(&state).unwrap();
            for i in 500..1000 {
                assert_eq!(
                    running.observe(value(i)),
                    restored.observe(value(i)),
                    "{model:?} at {i}"
                );
            }
            assert!(model.restore("{}").is_err());
        }
    }
}
