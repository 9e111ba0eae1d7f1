//! Range joins in the history session answer exactly as in DataFusion's
//! default session (the oracle), and the bounded ones read fewer rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::history::query_session;

const START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const WINDOWS: i64 = 1_000;
const ROW_GROUP: usize = 100;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn ts(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
}

fn write(path: &std::path::Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).expect("create");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

/// Features: 1,000 one-minute windows of two machines in time order (ten
/// row groups), one window with NULL bounds. Alerts: a few inside windows
/// 300–330, one with a NULL time, one of a machine without features.
fn history(alerts: Vec<(Option<&str>, Option<i64>)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let minute = 60_000;
    let starts: Vec<Option<i64>> = (0..WINDOWS)
        .map(|k| (k != 500).then_some(START_MS + k * minute / 2))
        .collect();
    let ends: Vec<Option<i64>> = starts.iter().map(|s| s.map(|s| s + minute)).collect();
    let machines: Vec<&str> = (0..WINDOWS)
        .map(|k| if k % 2 == 0 { "m-1" } else { "m-2" })
        .collect();
    let values: Vec<f64> = (0..WINDOWS).map(|k| k as f64 * 0.5).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("window_start", ts_type(), true),
        Field::new("window_end", ts_type(), true),
        Field::new("vibration_max", DataType::Float64, false),
    ]));
    let features = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(machines)),
            ts(starts),
            ts(ends),
            Arc::new(Float64Array::from(values)),
        ],
    )
    .expect("features");
    std::fs::create_dir_all(dir.path().join("features")).expect("dir");
    write(&dir.path().join("features/part-0.parquet"), &features);
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, true),
        Field::new("ts", ts_type(), true),
        Field::new("model", DataType::Utf8, false),
    ]));
    let models: Vec<&str> = alerts.iter().map(|_| "zscore").collect();
    let (machine, time): (Vec<_>, Vec<_>) = alerts.into_iter().unzip();
    let alerts = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(machine)),
            ts(time),
            Arc::new(StringArray::from(models)),
        ],
    )
    .expect("alerts");
    std::fs::create_dir_all(dir.path().join("alerts")).expect("dir");
    write(&dir.path().join("alerts/part-0.parquet"), &alerts);
    dir
}

fn some_alerts() -> Vec<(Option<&'static str>, Option<i64>)> {
    let at = |k: i64| Some(START_MS + k * 30_000 + 12_345);
    vec![
        (Some("m-1"), at(300)),
        (Some("m-2"), at(301)),
        (Some("m-1"), at(330)),
        (Some("m-2"), None),
        (None, at(310)),
        (Some("m-9"), at(320)),
        (Some("m-2"), at(329)),
    ]
}

async fn register(ctx: &SessionContext, dir: &std::path::Path) {
    for table in ["features", "alerts"] {
        let path = dir.join(table).display().to_string();
        ctx.register_parquet(table, &path, ParquetReadOptions::default())
            .await
            .expect("register");
    }
}

/// The answer text and the physical plan after running it.
async fn run(ctx: &SessionContext, sql: &str) -> (String, Arc<dyn ExecutionPlan>) {
    let frame = ctx.sql(sql).await.expect("plan");
    let plan = frame.create_physical_plan().await.expect("physical plan");
    let batches = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .expect("run");
    let text = pretty_format_batches(&batches).expect("format").to_string();
    (text, plan)
}

/// Rows the features scan produced (the probe side's DataSourceExec).
fn scanned_feature_rows(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut rows = 0;
    let mut stack = vec![Arc::clone(plan)];
    while let Some(node) = stack.pop() {
        let text = displayable(node.as_ref()).one_line().to_string();
        if node.name() == "DataSourceExec" && text.contains("features") {
            rows += node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
        }
        stack.extend(node.children().into_iter().cloned());
    }
    rows
}

fn plan_text(plan: &Arc<dyn ExecutionPlan>) -> String {
    displayable(plan.as_ref()).indent(true).to_string()
}

const RANGE_JOIN: &str = "SELECT a.machine_id, a.ts, f.window_start, f.vibration_max \
    FROM alerts a JOIN features f ON f.machine_id = a.machine_id \
    AND a.ts >= f.window_start AND a.ts < f.window_end ORDER BY 1, 2, 3";

async fn same_as_datafusion(
    alerts: Vec<(Option<&str>, Option<i64>)>,
    sql: &str,
) -> (String, Arc<dyn ExecutionPlan>) {
    let dir = history(alerts);
    let ours = query_session(None);
    register(&ours, dir.path()).await;
    let oracle = SessionContext::new();
    register(&oracle, dir.path()).await;
    let (got, plan) = run(&ours, sql).await;
    let (want, _) = run(&oracle, sql).await;
    assert_eq!(got, want, "{sql}\n{}", plan_text(&plan));
    (got, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_join_reads_only_the_row_groups_in_the_build_sides_range() {
    let (answer, plan) = same_as_datafusion(some_alerts(), RANGE_JOIN).await;
    assert!(answer.lines().count() > 4 + 2, "some rows match:\n{answer}");
    assert!(
        plan_text(&plan).contains("JoinBoundsExec"),
        "{}",
        plan_text(&plan)
    );
    // Alerts span windows 300..=331 (30 s apart, 60 s long): row groups 3 and
    // perhaps a neighbour's edge, instead of all ten.
    let scanned = scanned_feature_rows(&plan);
    assert!(scanned <= 2 * ROW_GROUP, "scanned {scanned} feature rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_and_strict_comparisons_give_the_same_rows() {
    let sql = "SELECT a.machine_id, a.ts, f.window_start FROM features f JOIN alerts a \
        ON a.machine_id = f.machine_id AND f.window_start < a.ts AND f.window_end >= a.ts \
        ORDER BY 1, 2, 3";
    let (_, plan) = same_as_datafusion(some_alerts(), sql).await;
    assert!(scanned_feature_rows(&plan) <= 2 * ROW_GROUP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outer_joins_are_left_alone() {
    let sql = "SELECT a.machine_id, a.ts, f.window_start FROM alerts a LEFT JOIN features f \
        ON f.machine_id = a.machine_id AND a.ts >= f.window_start AND a.ts < f.window_end \
        ORDER BY 1, 2, 3";
    let (_, plan) = same_as_datafusion(some_alerts(), sql).await;
    assert!(
        !plan_text(&plan).contains("JoinBoundsExec"),
        "{}",
        plan_text(&plan)
    );
    let sql = "SELECT f.window_start, a.ts FROM features f LEFT JOIN alerts a \
        ON f.machine_id = a.machine_id AND a.ts >= f.window_start AND a.ts < f.window_end \
        ORDER BY 1, 2";
    same_as_datafusion(some_alerts(), sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_sides_without_times_match_nothing() {
    let (answer, plan) = same_as_datafusion(vec![(Some("m-1"), None)], RANGE_JOIN).await;
    assert!(!answer.contains("m-1"), "no rows:\n{answer}");
    assert_eq!(scanned_feature_rows(&plan), 0);
    let (answer, _) = same_as_datafusion(vec![], RANGE_JOIN).await;
    assert!(!answer.contains("m-1"), "no rows:\n{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_over_the_range_join_equals_datafusions() {
    let sql = "SELECT a.model, count(*) AS alerts, avg(f.vibration_max) AS v FROM alerts a \
        JOIN features f ON f.machine_id = a.machine_id AND a.ts >= f.window_start \
        AND a.ts < f.window_end GROUP BY a.model ORDER BY a.model";
    let (answer, _) = same_as_datafusion(some_alerts(), sql).await;
    assert!(answer.contains("zscore"), "{answer}");
    // The whole range of the features: nothing to skip, same answer.
    let wide: Vec<(Option<&str>, Option<i64>)> = (0..WINDOWS)
        .step_by(7)
        .map(|k| {
            (
                Some(if k % 2 == 0 { "m-1" } else { "m-2" }),
                Some(START_MS + k * 30_000),
            )
        })
        .collect();
    same_as_datafusion(wide, sql).await;
}
