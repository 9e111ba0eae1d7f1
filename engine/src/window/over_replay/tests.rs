use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_expr::expressions::Column;

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
    ]))
}

fn rows(machines: &[&str], times: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(machines.to_vec())),
            Arc::new(Int64Array::from(times.to_vec())),
        ],
    )
    .unwrap()
}

fn log(rows: usize, span: i64) -> ReplayLog {
    let needs = ReplayNeeds {
        keys: vec![Arc::new(Column::new("machine_id", 0))],
        rows,
        span,
        not_carried: Vec::new(),
    };
    ReplayLog::new(needs, schema(), 1)
}

fn times(batch: &RecordBatch) -> Vec<i64> {
    event_times(batch, 1).unwrap().values().to_vec()
}

#[test]
fn answers_move_rows_from_in_flight_to_context_in_order() {
    let mut log = log(10, 0);
    log.sent(&rows(&["a", "b", "a"], &[1, 2, 3]));
    log.sent(&rows(&["b"], &[4]));
    // An answer that stops inside the first sent batch.
    let out = log.answered(rows(&["a", "b"], &[1, 2])).unwrap().unwrap();
    assert_eq!(out.num_rows(), 2);
    let [context, in_flight] = log.snapshot().unwrap();
    assert_eq!(times(&context), [1, 2]);
    assert_eq!(times(&in_flight), [3, 4]);
}

#[test]
fn pruning_keeps_the_last_rows_and_the_span_of_each_key() {
    let mut log = log(2, 10);
    let n = 10_000;
    let machines: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    let stamps: Vec<i64> = (0..n as i64).map(|i| i * 3).collect();
    let batch = rows(&machines, &stamps);
    log.sent(&batch);
    log.answered(batch).unwrap();
    let [context, _] = log.snapshot().unwrap();
    // Each key's rows are 6 apart; its newest is 29_994 (a) / 29_997 (b):
    // within 10 of it are two rows, which are also its last 2 rows.
    assert_eq!(times(&context), [29_988, 29_991, 29_994, 29_997]);
}

#[test]
fn a_restore_replays_context_then_in_flight_and_drops_the_contexts_answers() {
    let mut log = log(5, 0);
    let context = rows(&["a", "a"], &[1, 2]);
    let in_flight = rows(&["a"], &[3]);
    let replayed = log.restore(&context, &in_flight).unwrap();
    assert_eq!(times(&replayed), [1, 2, 3]);
    log.sent(&replayed);
    let first = log.answered(rows(&["a"], &[1])).unwrap();
    assert!(first.is_none(), "the context's answers were emitted before");
    let rest = log.answered(rows(&["a", "a"], &[2, 3])).unwrap().unwrap();
    assert_eq!(times(&rest), [3]);
}
