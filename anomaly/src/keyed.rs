//! Detector state that outlives DataFusion's evaluators, for checkpoints.
//!
//! DataFusion's window operator makes one [`PartitionEvaluator`] per
//! `PARTITION BY` key, keeps it to itself and never tells it the key. A
//! stream that must survive a restart needs each key's detector out of it
//! and, after a restore, back in. So the engine plans each detector call
//! again with [`stateful`]: the same function, now bound to a
//! [`DetectorStates`] (one per call and source partition) and given two
//! hidden trailing arguments, the `PARTITION BY` keys and the `ORDER BY`
//! time. Its evaluator reads its key on its first row and takes that key's
//! detector from the store (a restored one, or a fresh one it leaves
//! there), so the store can save every key's state at a checkpoint.
//!
//! Exactness across a restore. The engine replays the rows its window
//! stream had not answered and some answered ones as frame context
//! (`engine/src/window/over_replay.rs`); a restored detector must neither
//! learn from them twice nor answer them differently. Each key's detector
//! therefore keeps its position — the time of the last row it learned
//! from and how many of the key's rows it learned at that time — and skips
//! replayed rows up to it. Rows it had learned from but whose answers had
//! not left the stream yet (DataFusion holds answers back until every
//! function of the row has one) are answered from a log of recent
//! verdicts, which keeps what is at or after the stream's answered time
//! (`answered`, set by the engine): older rows have been answered.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, WindowUDF, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use serde::{Deserialize, Serialize};

use crate::rcf_udwf::RcfFunction;
use crate::udwf::{DetectorFunction, Evaluator, RowVerdicts};
use crate::verdict::Verdict;
use crate::{AnomalyError, state};

/// One key's detector as a detector function uses it: scores row `row` of
/// the function's evaluated arguments, then learns from it.
pub(crate) trait Scorer: Send + std::fmt::Debug {
    /// Scores the row and learns from it.
    fn score(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict>;
    /// The detector's state ([`crate::state`] JSON).
    fn save(&self) -> crate::Result<String>;
}

type Make = dyn Fn() -> crate::Result<Box<dyn Scorer>> + Send + Sync;
type Load = dyn Fn(&str) -> crate::Result<Box<dyn Scorer>> + Send + Sync;

/// How one detector call makes its per-key detectors, fresh or from a
/// saved state.
pub(crate) struct Recipe {
    /// A fresh detector, printed: its model and every parameter with the
    /// defaults filled in. A checkpoint is restored only into a call with
    /// the same description.
    pub(crate) parameters: String,
    pub(crate) fresh: Box<Make>,
    pub(crate) restore: Box<Load>,
}

impl std::fmt::Debug for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.parameters)
    }
}

/// The recipe of a detector function called with `args`, `None` for any
/// other function.
fn recipe_of(fun: &WindowUDF, args: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Recipe>> {
    let inner = fun.inner();
    if let Some(detector) = inner.downcast_ref::<DetectorFunction>() {
        return detector.recipe(args).map(Some);
    }
    if let Some(rcf) = inner.downcast_ref::<RcfFunction>() {
        return rcf.recipe(args).map(Some);
    }
    Ok(None)
}

/// Whether `fun` is a detector whose per-key state [`stateful`] carries.
pub fn keeps_state(fun: &WindowUDF) -> bool {
    let inner = fun.inner();
    inner.is::<DetectorFunction>() || inner.is::<RcfFunction>()
}

/// Where a key's detector is in its rows (in event-time order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Event time of the last row learned from.
    time: i64,
    /// Rows of the key at that time learned from.
    rows_at_time: u64,
}

impl Position {
    /// The position of the next row, at `time`.
    fn next(this: Option<Self>, time: i64) -> Self {
        match this {
            Some(p) if p.time == time => Self {
                time,
                rows_at_time: p.rows_at_time + 1,
            },
            _ => Self {
                time,
                rows_at_time: 1,
            },
        }
    }
}

/// One key's detector, its position and its recent verdicts.
#[derive(Debug)]
struct KeyedDetector {
    scorer: Box<dyn Scorer>,
    position: Option<Position>,
    /// Verdicts of rows at or after the answered time, oldest first.
    recent: VecDeque<(Position, Verdict)>,
    /// After a restore: replayed rows up to the saved position are skipped,
    /// `replayed` is the position of the last one seen.
    replay_through: Option<Position>,
    replayed: Option<Position>,
}

/// What a checkpoint keeps of one key's detector.
#[derive(Serialize, Deserialize)]
struct Saved {
    position: Option<Position>,
    recent: Vec<(Position, Verdict)>,
    detector: String,
}

impl KeyedDetector {
    fn new(scorer: Box<dyn Scorer>) -> Self {
        Self {
            scorer,
            position: None,
            recent: VecDeque::new(),
            replay_through: None,
            replayed: None,
        }
    }

    /// The verdict on the row at `time`: learned from now, or, for a row
    /// replayed after a restore, the one given before (or a placeholder for
    /// frame context, whose answers the engine drops).
    fn observe(
        &mut self,
        time: i64,
        values: &[ArrayRef],
        row: usize,
        answered: i64,
    ) -> Result<Verdict> {
        while self.recent.front().is_some_and(|(p, _)| p.time < answered) {
            self.recent.pop_front();
        }
        if let Some(through) = self.replay_through {
            let at = Position::next(self.replayed, time);
            if (at.time, at.rows_at_time) <= (through.time, through.rows_at_time) {
                self.replayed = Some(at);
                let given = self.recent.iter().find(|(p, _)| *p == at);
                return Ok(given.map(|(_, v)| v.clone()).unwrap_or_default());
            }
            self.replay_through = None;
        }
        let verdict = self.scorer.score(values, row)?;
        let at = Position::next(self.position, time);
        self.position = Some(at);
        self.recent.push_back((at, verdict.clone()));
        Ok(verdict)
    }

    /// The state, with the verdicts of rows before `answered` left out
    /// (they have been answered; the log is trimmed only as rows arrive).
    fn save(&self, answered: i64) -> crate::Result<String> {
        state::encode(&Saved {
            position: self.position,
            recent: self
                .recent
                .iter()
                .filter(|(p, _)| p.time >= answered)
                .cloned()
                .collect(),
            detector: self.scorer.save()?,
        })
    }
}

type Shared = Arc<Mutex<KeyedDetector>>;

fn lock(detector: &Shared) -> MutexGuard<'_, KeyedDetector> {
    // A panic while holding the lock leaves a detector no worse than the
    // panicking row found it; the job fails on that panic anyway.
    detector
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The detectors of one detector call in one window stream, by key.
#[derive(Debug)]
pub struct DetectorStates {
    function: String,
    recipe: Recipe,
    answered: Arc<AtomicI64>,
    detectors: Mutex<HashMap<Vec<ScalarValue>, Shared>>,
}

/// One key's saved detector.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedDetector {
    /// The `PARTITION BY` values.
    pub key: Vec<ScalarValue>,
    /// The detector, its position and its recent verdicts (JSON).
    pub state: String,
}

impl DetectorStates {
    /// The call, as the query writes it (`ewma_anomaly(sensors.temperature)`).
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The model and its parameters, defaults filled in.
    pub fn parameters(&self) -> &str {
        &self.recipe.parameters
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Vec<ScalarValue>, Shared>> {
        self.detectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every key's detector, for a checkpoint.
    pub fn save(&self) -> crate::Result<Vec<SavedDetector>> {
        let answered = self.answered.load(Ordering::Relaxed);
        self.map()
            .iter()
            .map(|(key, detector)| {
                Ok(SavedDetector {
                    key: key.clone(),
                    state: lock(detector).save(answered)?,
                })
            })
            .collect()
    }

    /// Takes over a saved detector; an error names the call and the key.
    pub fn restore(&self, saved: &SavedDetector) -> crate::Result<()> {
        let refuse = |message: String| AnomalyError::Checkpoint {
            function: self.function.clone(),
            key: key_text(&saved.key),
            message,
        };
        let parsed: Saved = state::decode(&saved.state).map_err(|e| refuse(e.to_string()))?;
        let scorer = (self.recipe.restore)(&parsed.detector).map_err(|e| refuse(e.to_string()))?;
        let restored = KeyedDetector {
            scorer,
            position: parsed.position,
            recent: parsed.recent.into(),
            replay_through: parsed.position,
            replayed: None,
        };
        let mut map = self.map();
        match map.get(&saved.key) {
            Some(detector) => *lock(detector) = restored,
            None => {
                map.insert(saved.key.clone(), Arc::new(Mutex::new(restored)));
            }
        }
        Ok(())
    }

    /// The detector of `key`: the one already there, or a fresh one.
    fn detector(&self, key: Vec<ScalarValue>) -> Result<Shared> {
        let mut map = self.map();
        if let Some(detector) = map.get(&key) {
            return Ok(Arc::clone(detector));
        }
        let scorer = (self.recipe.fresh)()
            .map_err(|e| DataFusionError::Plan(format!("{}: {e}", self.function)))?;
        let detector = Arc::new(Mutex::new(KeyedDetector::new(scorer)));
        map.insert(key, Arc::clone(&detector));
        Ok(detector)
    }
}

/// A key for messages: `M-7` or `(line-2, M-7)`.
pub fn key_text(key: &[ScalarValue]) -> String {
    match key {
        [one] => one.to_string(),
        many => format!(
            "({})",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `fun` called with `args`, rebound to keep each key's detector in a new
/// [`DetectorStates`], or `None` if `fun` is not a detector. The rebound
/// function must be called with `args`, then the `keys` `PARTITION BY`
/// expressions, then the `ORDER BY` time; `function` names the call in
/// checkpoints and messages; `answered` is the event time before which
/// every row has left the window stream.
pub fn stateful(
    fun: &Arc<WindowUDF>,
    args: &[Arc<dyn PhysicalExpr>],
    keys: usize,
    function: &str,
    answered: &Arc<AtomicI64>,
) -> Result<Option<(WindowUDF, Arc<DetectorStates>)>> {
    let Some(recipe) = recipe_of(fun, args)? else {
        return Ok(None);
    };
    let states = Arc::new(DetectorStates {
        function: function.to_string(),
        recipe,
        answered: Arc::clone(answered),
        detectors: Mutex::new(HashMap::new()),
    });
    let keyed = KeyedFunction {
        original: Arc::clone(fun),
        arguments: args.len(),
        keys,
        states: Arc::clone(&states),
    };
    Ok(Some((WindowUDF::new_from_impl(keyed), states)))
}

/// A detector function bound to a [`DetectorStates`].
#[derive(Debug)]
struct KeyedFunction {
    original: Arc<WindowUDF>,
    /// The call's own arguments, before the hidden keys and time.
    arguments: usize,
    keys: usize,
    states: Arc<DetectorStates>,
}

impl PartialEq for KeyedFunction {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.states, &other.states)
    }
}

impl Eq for KeyedFunction {}

impl std::hash::Hash for KeyedFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.states).hash(state);
    }
}

impl WindowUDFImpl for KeyedFunction {
    fn name(&self) -> &str {
        self.original.name()
    }

    fn signature(&self) -> &Signature {
        self.original.signature()
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let expected = self.arguments + self.keys + 1;
        if args.input_exprs().len() != expected {
            return Err(DataFusionError::Internal(format!(
                "{}: {expected} arguments expected with keys and time, got {}",
                self.states.function,
                args.input_exprs().len()
            )));
        }
        Ok(Box::new(Evaluator(KeyedEvaluator {
            states: Arc::clone(&self.states),
            keys: self.arguments..self.arguments + self.keys,
            detector: None,
        })))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        self.original.inner().field(field_args)
    }
}

/// Evaluates one key's rows with the key's detector from the store.
#[derive(Debug)]
struct KeyedEvaluator {
    states: Arc<DetectorStates>,
    /// Where the key columns are among the arguments (the time follows).
    keys: Range<usize>,
    detector: Option<Shared>,
}

impl RowVerdicts for KeyedEvaluator {
    fn verdict(&mut self, values: &[ArrayRef], row: usize) -> Result<Verdict> {
        if self.detector.is_none() {
            let key = values[self.keys.clone()]
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>>>()?;
            self.detector = Some(self.states.detector(key)?);
        }
        let time = time_at(&values[self.keys.end], row)?;
        let answered = self.states.answered.load(Ordering::Relaxed);
        match &self.detector {
            Some(detector) => lock(detector).observe(time, values, row, answered),
            None => Err(DataFusionError::Internal(
                "a detector without its key".into(),
            )),
        }
    }
}

/// Row `row`'s event time in its column's unit.
fn time_at(column: &ArrayRef, row: usize) -> Result<i64> {
    let value = match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            column.as_primitive::<TimestampSecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            column.as_primitive::<TimestampMillisecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            column.as_primitive::<TimestampMicrosecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            column.as_primitive::<TimestampNanosecondType>().value(row)
        }
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row),
        other => {
            return Err(DataFusionError::Internal(format!(
                "a detector's event time is {other}"
            )));
        }
    };
    if column.is_null(row) {
        return Err(DataFusionError::Internal(
            "a detector row without event time".into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
#[path = "keyed_tests.rs"]
mod tests;
