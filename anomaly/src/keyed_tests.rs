#![allow(clippy::unwrap_used)]

use arrow::array::Float64Array;

use super::*;
use crate::udwf::Model;

fn ewma_states(answered: &Arc<AtomicI64>) -> DetectorStates {
    DetectorStates {
        function: "ewma_anomaly(v)".into(),
        recipe: Recipe {
            parameters: "ewma".into(),
            fresh: Box::new(|| {
                Ok(Box::new(Model::Ewma.detector(&[
                    Some(2.0),
                    None,
                    Some(3.0),
                ])?))
            }),
            restore: Box::new(|state| Ok(Box::new(Model::Ewma.restore(state)?))),
        },
        answered: Arc::clone(answered),
        detectors: Mutex::new(HashMap::new()),
    }
}

/// Times with repeats (two rows at 2, at 4 and at 6) and values with a jump.
const TIMES: [i64; 12] = [0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8];

fn values() -> Vec<ArrayRef> {
    let v: Vec<f64> = (0..TIMES.len())
        .map(|i| 10.0 + (i % 3) as f64 + if i > 8 { 9.0 } else { 0.0 })
        .collect();
    vec![Arc::new(Float64Array::from(v))]
}

fn observe(states: &DetectorStates, key: &str, rows: std::ops::Range<usize>) -> Vec<Verdict> {
    let detector = states.detector(vec![ScalarValue::from(key)]).unwrap();
    let answered = states.answered.load(Ordering::Relaxed);
    let values = values();
    rows.map(|row| {
        lock(&detector)
            .observe(TIMES[row], &values, row, answered)
            .unwrap()
    })
    .collect()
}

/// Rows 0-6 learned, 0-4 answered (answered time 3 keeps the verdicts of
/// rows 4-6). A restore replays rows 3-11 (context 3-4, in flight 5-11):
/// the restored detector answers rows 5 and 6 as before, learns nothing
/// twice, and gives rows 7-11 the uninterrupted run's verdicts.
#[test]
fn a_restored_detector_skips_what_it_saw_and_answers_it_as_before() {
    let answered = Arc::new(AtomicI64::new(i64::MIN));
    let running = ewma_states(&answered);
    let first = observe(&running, "m1", 0..7);
    answered.store(TIMES[4], Ordering::Relaxed);
    let saved = running.save().unwrap();
    assert_eq!(saved.len(), 1);
    let rest = observe(&running, "m1", 7..12);

    let restored = ewma_states(&Arc::new(AtomicI64::new(i64::MIN)));
    restored.restore(&saved[0]).unwrap();
    let replayed = observe(&restored, "m1", 3..12);
    assert_eq!(
        replayed[2..4],
        first[5..7],
        "in flight, seen: answered as before"
    );
    assert_eq!(
        replayed[4..],
        rest[..],
        "unseen: the uninterrupted run's verdicts"
    );
    assert!(
        rest.iter().any(|v| v.flag == Some(true)),
        "the jump is flagged"
    );
}

#[test]
fn verdicts_before_the_answered_time_are_dropped() {
    let answered = Arc::new(AtomicI64::new(i64::MIN));
    let states = ewma_states(&answered);
    observe(&states, "m1", 0..5);
    answered.store(TIMES[4], Ordering::Relaxed);
    observe(&states, "m1", 5..6);
    let detector = states.detector(vec![ScalarValue::from("m1")]).unwrap();
    let times: Vec<i64> = lock(&detector).recent.iter().map(|(p, _)| p.time).collect();
    assert_eq!(times, [3, 4]);
}

#[test]
fn a_state_of_another_model_is_refused_naming_the_call_and_key() {
    let states = ewma_states(&Arc::new(AtomicI64::new(i64::MIN)));
    let cusum = Model::Cusum.detector(&[]).unwrap().save_state().unwrap();
    let saved = SavedDetector {
        key: vec![ScalarValue::from("m7")],
        state: state::encode(&Saved {
            position: None,
            recent: Vec::new(),
            detector: cusum,
        })
        .unwrap(),
    };
    let error = states.restore(&saved).unwrap_err().to_string();
    assert!(error.contains("ewma_anomaly(v) for key m7"), "{error}");
}
