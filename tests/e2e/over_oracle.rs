//! Per-row OVER features (`lag` deltas, rolling RANGE/ROWS frames) and the
//! online anomaly detectors on the real broker, with out-of-order and late
//! readings, checked against the same SQL in batch mode over the readings
//! minus the late output: streaming equals batch.

use spindle_tests::services::repo_root;

use crate::engine_oracle::{run_job_file, run_shipped_job, summary_value};
use crate::oracle::{assert_same, parquet_rows, query_rows, session};

#[tokio::test(flavor = "multi_thread")]
async fn machine_deltas_equal_the_batch_oracle() {
    let run = run_shipped_job("machine_deltas");
    let (dir, log, late) = (&run.dir, &run.log, run.late);
    let total = 200_000;
    assert_eq!(summary_value(log, "rows_out"), total as u64 - late);

    let streamed = parquet_rows(
        &dir.path().join("history/deltas"),
        "machine_id, ts, seconds_since_last, temperature_delta, vibration_delta, power_delta, \
         rpm_delta, temperature_avg_5m, vibration_avg_5m, vibration_stddev_5m, power_avg_5m, readings_5m",
    )
    .await;
    let ctx = session(&run.readings, &run.late_file).await;
    let oracle = query_rows(
        &ctx,
        "SELECT machine_id, ts,
           CAST(CAST(ts AS BIGINT) - CAST(lag(ts) OVER previous AS BIGINT) AS DOUBLE) / 1000.0,
           temperature - lag(temperature) OVER previous,
           vibration - lag(vibration) OVER previous,
           power - lag(power) OVER previous,
           rpm - lag(rpm) OVER previous,
           avg(temperature) OVER last_5m, avg(vibration) OVER last_5m,
           stddev(vibration) OVER last_5m, avg(power) OVER last_5m, count(*) OVER last_5m
         FROM readings r
         WHERE NOT EXISTS (SELECT 1 FROM late l WHERE l.pipeline = 'deltas' AND l.machine_id = r.machine_id AND l.seq = r.seq)
         WINDOW previous AS (PARTITION BY machine_id ORDER BY ts),
                last_5m AS (PARTITION BY machine_id ORDER BY ts
                            RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW)",
    )
    .await;
    assert_eq!(oracle.len(), total - late as usize);
    assert_same("over", &streamed, &oracle);
}

#[tokio::test(flavor = "multi_thread")]
async fn anomaly_detectors_on_a_stream_equal_the_batch_oracle() {
    let job = repo_root().join("tests/e2e/jobs/detectors.sql");
    let run = run_job_file(&job, "detectors", &["--fault-rate", "20"]);
    let total = 200_000u64;
    assert_eq!(summary_value(&run.log, "rows_out"), total - run.late);
    let streamed = parquet_rows(
        &run.dir.path().join("scores"),
        "machine_id, ts, gaussian, gaussian_flag, ewma, ew_variance, cusum, flatline, likelihood, inter_arrival",
    )
    .await;
    let ctx = session(&run.readings, &run.late_file).await;
    spindle_anomaly::register(&ctx);
    // The oracle is the job's own SELECT, in batch, over the readings the
    // stream did not call late.
    let kept = "SELECT * FROM readings r WHERE NOT EXISTS (SELECT 1 FROM late l \
                WHERE l.pipeline = 'scores' AND l.machine_id = r.machine_id AND l.seq = r.seq)";
    ctx.register_table("sensors", ctx.sql(kept).await.unwrap().into_view())
        .unwrap();
    let text = std::fs::read_to_string(&job).unwrap();
    let select = text
        .split("INSERT INTO scores")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(';');
    let oracle = query_rows(&ctx, select).await;
    assert_same("detectors", &streamed, &oracle);
    let flagged = streamed.values().filter(|v| v[1] == Some(1.0)).count();
    assert!(
        flagged > 10,
        "the faults must trip the detector, got {flagged} flags"
    );
}
