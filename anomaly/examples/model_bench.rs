//! Scoring throughput of the anomaly models, rows per second on one core:
//! Gaussian limits (per value), Isolation Forest (100 trees, 256 samples,
//! 5 features; the scorer alone and through SQL's `anomaly_model`) and the
//! Random Cut Forest (50 trees, 256 samples, 3 values, score then update).
//! Run by `scripts/model_bench.sh`; results in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use rand::{RngExt, SeedableRng};
use spindle_anomaly::Detector;
use spindle_anomaly::gaussian::{GaussianLimits, GaussianParams};
use spindle_anomaly::rcf::{Rcf, RcfParams};
use spindle_anomaly::trained::Matrix;
use spindle_anomaly::trained::iforest::IforestParams;
use spindle_anomaly::trained::model::{Fit, train};
use spindle_anomaly::trained::store::ModelStore;

fn normal(rng: &mut rand_xoshiro::Xoshiro256PlusPlus) -> f64 {
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn report(name: &str, rows: usize, seconds: f64) {
    println!(
        "{name:<44} {rows:>10} rows {seconds:>8.3} s {:>14.0} rows/s",
        rows as f64 / seconds
    );
}

fn best_of<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    (best, last.expect("at least one round"))
}

fn main() {
    let scale: usize = std::env::args()
        .nth(1)
        .map_or(1, |s| s.parse().expect("scale"));
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);

    // Gaussian limits: one detector over a stream of values.
    let n = 20_000_000 * scale;
    let values: Vec<f64> = (0..n).map(|_| 50.0 + 3.0 * normal(&mut rng)).collect();
    let (s, flags) = best_of(3, || {
        let mut d = GaussianLimits::new(GaussianParams::default()).unwrap();
        values
            .iter()
            .filter(|&&v| d.observe(Some(v)).flag == Some(true))
            .count()
    });
    report("gaussian_anomaly (Detector::observe)", n, s);
    println!("  ({flags} flagged)");

    // Isolation Forest: 5 features, fitted on 10,000 rows.
    let p = 5;
    let rows = |count: usize, rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
        let data: Vec<f64> = (0..count * p).map(|_| normal(rng)).collect();
        Matrix::new(count, p, data).unwrap()
    };
    let training = rows(10_000, &mut rng);
    let features: Vec<String> = (0..p).map(|i| format!("f{i}")).collect();
    let fit = Fit::Iforest(IforestParams::default());
    let (s, model) = best_of(1, || {
        train("bench", &features, &training, &fit, Some(0.01)).unwrap()
    });
    report("iforest fit (100 trees, 10k rows)", 10_000, s);
    let scorer = model.compile().unwrap();
    let n = 1_000_000 * scale;
    let test = rows(n, &mut rng);
    let (s, scores) = best_of(3, || scorer.score_all(&test));
    report("iforest score (100 trees, block scorer)", n, s);
    let (s, _) = best_of(3, || (0..n).map(|i| scorer.score(test.row(i))).sum::<f64>());
    report("iforest score (100 trees, row by row)", n, s);
    println!(
        "  (mean score {:.4})",
        scores.iter().sum::<f64>() / n as f64
    );

    // The same through SQL: anomaly_model over a 5-column table.
    let dir = tempfile::tempdir().unwrap();
    model.save(&dir.path().join("bench.json")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(8192),
    );
    spindle_anomaly::trained::udf::register(&ctx, Arc::new(ModelStore::new(dir.path())));
    let schema = Arc::new(Schema::new(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let batches: Vec<RecordBatch> = (0..n)
        .step_by(8192)
        .map(|start| {
            let len = 8192.min(n - start);
            let columns = (0..p)
                .map(|j| {
                    Arc::new(Float64Array::from_iter_values(
                        (start..start + len).map(|i| test.row(i)[j]),
                    )) as _
                })
                .collect();
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        })
        .collect();
    let table = MemTable::try_new(schema, vec![batches]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let (s, flagged) = best_of(3, || {
        runtime.block_on(async {
            let out = ctx
                .sql("SELECT count(*) FROM t WHERE anomaly_model('bench', f0, f1, f2, f3, f4)['flag']")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string()
        })
    });
    report("iforest via SQL anomaly_model (100 trees)", n, s);
    println!(
        "  (flagged: {})",
        flagged.lines().nth(3).unwrap_or("?").trim()
    );

    // Random Cut Forest: 3 values, 50 trees of 256, score then update.
    let n = 200_000 * scale;
    let stream: Vec<Vec<Option<f64>>> = (0..n)
        .map(|_| (0..3).map(|_| Some(60.0 + normal(&mut rng))).collect())
        .collect();
    let (s, flags) = best_of(1, || {
        let mut rcf = Rcf::new(RcfParams::default()).unwrap();
        stream
            .iter()
            .filter(|v| rcf.observe(v).flag == Some(true))
            .count()
    });
    report("rcf_anomaly (50 trees, 256 samples, 3 values)", n, s);
    println!("  ({flags} flagged)");
}
