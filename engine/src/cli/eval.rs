//! `spindle eval`: runs anomaly detectors over labelled readings and reports
//! precision, recall, F1, false alarms per machine-day and detection delay,
//! overall and per fault kind (definitions in `spindle_anomaly::quality`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use clap::{Args, ValueEnum};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, SessionContext};
use spindle_anomaly::catalogue::{CATALOGUE, CatalogueEntry, checks, find, scoring_sql};
use spindle_anomaly::quality::{Matching, Quality, Scored, evaluate};
use spindle_anomaly::trained::store::{ModelStore, default_directory};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EvalFormat {
    /// An aligned table.
    Table,
    /// One JSON object per detector.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Labelled readings: simulator JSON lines (`spindle simulate --labels`) or CSV.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The event-time column.
    #[arg(long, value_name = "C", default_value = "ts")]
    time_column: String,
    /// The ground-truth column (true inside a fault).
    #[arg(long, value_name = "C", default_value = "fault")]
    label_column: String,
    /// The source column (default: machine_id if present, else one source).
    #[arg(long, value_name = "C")]
    key_column: Option<String>,
    /// The fault-kind column, if present.
    #[arg(long, value_name = "C", default_value = "fault_kind")]
    kind_column: String,
    /// Detectors to run (repeatable; default all).
    #[arg(long = "detector", value_name = "NAME")]
    detectors: Vec<String>,
    /// Trained models to measure too (repeatable): anomaly_model('NAME', …)
    /// over the input's columns named as the model's features. Alone (no
    /// --detector), only the models run.
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,
    /// Write per-row scores as CSV: time, key, detector, score, flag.
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
}

pub(crate) fn execute(args: EvalArgs) -> Result<ExitCode> {
    let entries = if args.detectors.is_empty() && !args.models.is_empty() {
        Vec::new()
    } else {
        selected(&args.detectors)?
    };
    let runtime = super::runtime()?;
    let reports = runtime.block_on(run(&args, &entries))?;
    print_reports(&reports, args.format)?;
    Ok(ExitCode::SUCCESS)
}

fn selected(names: &[String]) -> Result<Vec<CatalogueEntry>> {
    if names.is_empty() {
        return Ok(CATALOGUE.to_vec());
    }
    names
        .iter()
        .map(|n| {
            find(n).with_context(|| {
                let known: Vec<&str> = CATALOGUE.iter().map(|e| e.name).collect();
                format!("unknown detector {n:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

async fn run(args: &EvalArgs, entries: &[CatalogueEntry]) -> Result<Vec<(String, Quality)>> {
    let ctx = spindle_sql::context::new_session();
    let sensors = register_input(&ctx, args).await?;
    let mut scores_out = match &args.scores {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            writeln!(file, "time,key,detector,score,flag")?;
            Some(file)
        }
        None => None,
    };
    let mut reports = Vec::new();
    for entry in entries {
        let checks = checks(*entry, &sensors).map_err(anyhow::Error::msg)?;
        let sql = scoring_sql(&checks, "readings");
        let quality = measure(&ctx, entry.name, &sql, scores_out.as_mut()).await?;
        reports.push((entry.name.to_string(), quality));
    }
    let store = ModelStore::new(default_directory());
    for name in &args.models {
        let model = store.get(name)?;
        let features = &model.file.features;
        if let Some(f) = features.iter().find(|f| !sensors.contains(f)) {
            bail!(
                "model {name} needs a `{f}` column; the input's sensors are {}",
                sensors.join(", ")
            );
        }
        let label = format!("model:{name}");
        let sql = model_scoring_sql(name, features, "readings");
        let quality = measure(&ctx, &label, &sql, scores_out.as_mut()).await?;
        reports.push((label, quality));
    }
    if let Some(mut out) = scores_out {
        out.flush()?;
    }
    Ok(reports)
}

/// Runs one detector's scoring SQL and counts its quality.
async fn measure(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    scores_out: Option<&mut std::io::BufWriter<std::fs::File>>,
) -> Result<Quality> {
    let batches = ctx
        .sql(sql)
        .await
        .with_context(|| format!("planning detector {name}"))?
        .collect()
        .await
        .with_context(|| format!("running detector {name}"))?;
    let rows = scored_rows(&batches)?;
    if let Some(out) = scores_out {
        write_scores(out, name, &batches)?;
    }
    Ok(evaluate(&rows, Matching::default()))
}

/// SQL scoring `table` with trained model `name` over `features`.
fn model_scoring_sql(name: &str, features: &[String], table: &str) -> String {
    let args: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "SELECT key, time, label, kind, coalesce(m['flag'], false) AS flag, m['score'] AS score \
         FROM (SELECT key, time, label, kind, anomaly_model('{name}', {}) AS m FROM {table})",
        args.join(", ")
    )
}

/// Registers the input as `raw` and the normalised view `readings`; returns
/// the sensor columns.
async fn register_input(ctx: &SessionContext, args: &EvalArgs) -> Result<Vec<String>> {
    let path = args.input.to_str().context("input path is not UTF-8")?;
    let extension = extension_of(&args.input);
    // Labels are rare: infer types from every row, or a column null for the
    // first thousands of rows (fault_kind) would be typed Null.
    if extension == ".csv" {
        ctx.register_csv(
            "raw",
            path,
            CsvReadOptions::new()
                .file_extension(&extension)
                .schema_infer_max_records(usize::MAX),
        )
        .await
    } else {
        ctx.register_json(
            "raw",
            path,
            JsonReadOptions::default()
                .file_extension(&extension)
                .schema_infer_max_records(usize::MAX),
        )
        .await
    }
    .with_context(|| format!("reading {}", args.input.display()))?;
    let schema = ctx.table("raw").await?.schema().as_arrow().clone();
    let has = |c: &str| schema.index_of(c).is_ok();
    for (what, column) in [("time", &args.time_column), ("label", &args.label_column)] {
        if !has(column) {
            bail!("{}: no {what} column {column:?}", args.input.display());
        }
    }
    let key = match &args.key_column {
        Some(k) if !has(k) => bail!("{}: no key column {k:?}", args.input.display()),
        Some(k) => format!("CAST(\"{k}\" AS VARCHAR)"),
        None if has("machine_id") => "CAST(machine_id AS VARCHAR)".to_string(),
        None => "'all'".to_string(),
    };
    let kind = if has(&args.kind_column) {
        format!("CAST(\"{}\" AS VARCHAR)", args.kind_column)
    } else {
        "CAST(NULL AS VARCHAR)".to_string()
    };
    let skip = [
        args.time_column.as_str(),
        args.label_column.as_str(),
        args.kind_column.as_str(),
        args.key_column.as_deref().unwrap_or("machine_id"),
        "seq",
    ];
    let sensors: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| f.data_type().is_numeric() && !skip.contains(&f.name().as_str()))
        .map(|f| f.name().clone())
        .collect();
    if sensors.is_empty() {
        bail!("{}: no numeric sensor columns", args.input.display());
    }
    let columns: Vec<String> = sensors
        .iter()
        .map(|s| format!("CAST(\"{s}\" AS DOUBLE) AS \"{s}\""))
        .collect();
    let view = format!(
        "SELECT {key} AS key, CAST(\"{time}\" AS TIMESTAMP) AS time, CAST(\"{label}\" AS BOOLEAN) AS label, \
         {kind} AS kind, {columns} FROM raw",
        time = args.time_column,
        label = args.label_column,
        columns = columns.join(", ")
    );
    ctx.register_table("readings", ctx.sql(&view).await?.into_view())?;
    Ok(sensors)
}

fn extension_of(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map_or_else(|| ".jsonl".to_string(), |e| format!(".{e}"))
}

struct Columns {
    key: StringArray,
    time: Int64Array,
    label: BooleanArray,
    kind: StringArray,
    flag: BooleanArray,
    score: Float64Array,
}

fn columns(batch: &RecordBatch) -> Result<Columns> {
    let col = |name: &str, to: &DataType| -> Result<arrow::array::ArrayRef> {
        let array = batch
            .column_by_name(name)
            .with_context(|| format!("no {name} column"))?;
        Ok(cast(array, to)?)
    };
    let time = col("time", &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    let time = cast(&time, &DataType::Int64)?;
    Ok(Columns {
        key: downcast(&col("key", &DataType::Utf8)?)?,
        time: downcast(&time)?,
        label: downcast(&col("label", &DataType::Boolean)?)?,
        kind: downcast(&col("kind", &DataType::Utf8)?)?,
        flag: downcast(&col("flag", &DataType::Boolean)?)?,
        score: downcast(&col("score", &DataType::Float64)?)?,
    })
}

fn downcast<T: Array + Clone + 'static>(array: &arrow::array::ArrayRef) -> Result<T> {
    array
        .as_any()
        .downcast_ref::<T>()
        .cloned()
        .with_context(|| format!("unexpected column type {}", array.data_type()))
}

fn scored_rows(batches: &[RecordBatch]) -> Result<Vec<Scored>> {
    let mut rows = Vec::new();
    for batch in batches {
        let c = columns(batch)?;
        for i in 0..batch.num_rows() {
            if c.time.is_null(i) {
                continue;
            }
            rows.push(Scored {
                key: c.key.value(i).to_string(),
                time_ms: c.time.value(i),
                label: c.label.is_valid(i) && c.label.value(i),
                kind: c.kind.is_valid(i).then(|| c.kind.value(i).to_string()),
                flag: c.flag.is_valid(i) && c.flag.value(i),
            });
        }
    }
    Ok(rows)
}

fn write_scores(out: &mut impl Write, detector: &str, batches: &[RecordBatch]) -> Result<()> {
    for batch in batches {
        let c = columns(batch)?;
        for i in 0..batch.num_rows() {
            let score = if c.score.is_valid(i) {
                c.score.value(i).to_string()
            } else {
                String::new()
            };
            let flag = c.flag.is_valid(i) && c.flag.value(i);
            writeln!(
                out,
                "{},{},{detector},{score},{flag}",
                c.time.value(i),
                c.key.value(i)
            )?;
        }
    }
    Ok(())
}

fn print_reports(reports: &[(String, Quality)], format: EvalFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        EvalFormat::Json => {
            for (name, q) in reports {
                writeln!(out, "{}", report_json(name, q))?;
            }
        }
        EvalFormat::Table => {
            writeln!(
                out,
                "{:<24} {:>9} {:>9} {:>6} {:>10} {:>8} {:>10}",
                "detector", "precision", "recall", "f1", "fa/m-day", "episodes", "delay_s"
            )?;
            for (name, q) in reports {
                writeln!(
                    out,
                    "{:<24} {:>9.3} {:>9.3} {:>6.3} {:>10.2} {:>8} {:>10}",
                    name,
                    q.precision(),
                    q.recall(),
                    q.f1(),
                    q.false_alarms_per_machine_day(),
                    q.overall.episodes,
                    q.overall
                        .median_delay_s
                        .map_or("-".into(), |d| format!("{d:.1}"))
                )?;
                for (kind, k) in &q.by_kind {
                    writeln!(
                        out,
                        "  {:<22} {:>9} {:>9.3} {:>6} {:>10} {:>8} {:>10}",
                        kind,
                        "",
                        k.recall(),
                        "",
                        "",
                        k.episodes,
                        k.median_delay_s.map_or("-".into(), |d| format!("{d:.1}"))
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn report_json(name: &str, q: &Quality) -> serde_json::Value {
    let kinds: serde_json::Map<String, serde_json::Value> = q
        .by_kind
        .iter()
        .map(|(kind, k)| {
            let v = serde_json::json!({
                "episodes": k.episodes, "detected": k.detected, "recall": k.recall(),
                "median_delay_s": k.median_delay_s,
            });
            (kind.clone(), v)
        })
        .collect();
    serde_json::json!({
        "detector": name,
        "precision": q.precision(),
        "recall": q.recall(),
        "f1": q.f1(),
        "false_alarms_per_machine_day": q.false_alarms_per_machine_day(),
        "median_delay_s": q.overall.median_delay_s,
        "episodes": q.overall.episodes,
        "detected": q.overall.detected,
        "alarms": q.alarms,
        "true_alarms": q.true_alarms,
        "machine_days": q.machine_days,
        "by_kind": kinds,
    })
}
