//! `spindle train NAME --kind iforest|t2|pca`: fits a model on rows of the
//! Parquet history and writes `<models dir>/NAME.json` (one version more
//! than the file it replaces), which `anomaly_model('NAME', …)` scores and
//! running jobs pick up within seconds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use clap::{Args, ValueEnum};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use spindle_anomaly::trained::Matrix;
use spindle_anomaly::trained::iforest::IforestParams;
use spindle_anomaly::trained::model::{Fit, ModelFile, train};
use spindle_anomaly::trained::pca::PcaParams;
use spindle_anomaly::trained::store::{ModelStore, default_directory};
use spindle_engine::history::register_history;

use super::query::HistoryArg;

/// Model kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Isolation Forest.
    Iforest,
    /// Hotelling T².
    T2,
    /// PCA T² and Q.
    Pca,
}

/// Where the rows come from (shared with `spindle drift`).
#[derive(Debug, Clone, Args)]
pub(crate) struct RowsArgs {
    #[command(flatten)]
    pub(crate) history: HistoryArg,
    /// The history table: a directory under the history root.
    #[arg(long, value_name = "NAME", default_value = "features")]
    pub(crate) table: String,
    /// Read this file (JSON lines, CSV or Parquet, by extension) instead of
    /// the history, e.g. `spindle simulate --output` readings.
    #[arg(long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Only rows matching this SQL condition (e.g. "machine_id = 'm-001'").
    #[arg(long = "where", value_name = "SQL")]
    pub(crate) filter: Option<String>,
    /// The event-time column for the training range (default: the first
    /// timestamp column).
    #[arg(long, value_name = "C")]
    pub(crate) time_column: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The model's name: anomaly_model('NAME', …) in SQL.
    name: String,
    /// The kind of model.
    #[arg(long, value_enum)]
    kind: Kind,
    #[command(flatten)]
    rows: RowsArgs,
    /// Feature columns, in the order SQL passes them (default: every
    /// floating-point column).
    #[arg(long, value_delimiter = ',', value_name = "A,B,…")]
    features: Vec<String>,
    /// Write here instead of <models dir>/NAME.json.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Share of training rows the threshold flags; default: iforest 0.5 on
    /// the score (scikit-learn's "auto"), t2 and pca their control limits.
    #[arg(long, value_name = "C")]
    contamination: Option<f64>,
    /// Isolation Forest: trees.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// Isolation Forest: rows per tree (default min(256, rows)).
    #[arg(long, value_name = "N")]
    max_samples: Option<usize>,
    /// Isolation Forest: random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// T² and PCA: probability inside the control limits.
    #[arg(long, default_value_t = 0.999_999)]
    probability: f64,
    /// PCA: components kept (default: enough for --variance).
    #[arg(long, value_name = "K")]
    components: Option<usize>,
    /// PCA: share of variance the kept components explain.
    #[arg(long, default_value_t = 0.9)]
    variance: f64,
}

/// Rows read from the history.
pub(crate) struct Rows {
    /// The feature columns.
    pub(crate) features: Vec<String>,
    /// Per feature, every row's value (None: NULL).
    pub(crate) columns: Vec<Vec<Option<f64>>>,
    /// Earliest and latest event time.
    pub(crate) range: (Option<String>, Option<String>),
}

impl Rows {
    /// The rows whose features are all finite, and how many were not.
    pub(crate) fn finite_matrix(&self) -> Result<(Matrix, usize)> {
        let n = self.columns.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(n * self.columns.len());
        let mut kept = 0;
        for i in 0..n {
            let row: Option<Vec<f64>> = self
                .columns
                .iter()
                .map(|c| c[i].filter(|v| v.is_finite()))
                .collect();
            if let Some(row) = row {
                data.extend(row);
                kept += 1;
            }
        }
        Ok((Matrix::new(kept, self.columns.len(), data)?, n - kept))
    }
}

pub(crate) fn execute(args: TrainArgs) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    let rows = runtime.block_on(read_rows(&args.rows, &args.features))?;
    let (data, skipped) = rows.finite_matrix()?;
    if data.rows() == 0 {
        bail!("no rows with every feature finite in {}", args.rows.table);
    }
    let fit = match args.kind {
        Kind::Iforest => Fit::Iforest(IforestParams {
            n_estimators: args.trees,
            max_samples: args.max_samples,
            seed: args.seed,
        }),
        Kind::T2 => Fit::T2 {
            probability: args.probability,
        },
        Kind::Pca => Fit::Pca(PcaParams {
            components: args.components,
            variance: args.variance,
            probability: args.probability,
        }),
    };
    let mut model = train(&args.name, &rows.features, &data, &fit, args.contamination)
        .with_context(|| format!("training {}", args.name))?;
    let store = ModelStore::new(default_directory());
    let path = match &args.output {
        Some(p) => p.clone(),
        None => store.path_of(&args.name)?,
    };
    model.version = previous_version(&path) + 1;
    model.trained_at = Some(chrono::Utc::now().to_rfc3339());
    model.training.source = match &args.rows.input {
        Some(file) => file.display().to_string(),
        None => format!("{}/{}", args.rows.history.root, args.rows.table),
    };
    model.training.filter = args.rows.filter.clone();
    model.training.skipped = skipped;
    (model.training.from, model.training.to) = rows.range.clone();
    model.save(&path)?;
    print_summary(&model, &path);
    Ok(ExitCode::SUCCESS)
}

fn previous_version(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| ModelFile::parse(&text).ok())
        .map_or(0, |m| m.version)
}

fn print_summary(m: &ModelFile, path: &std::path::Path) {
    println!(
        "model {} v{} ({}) → {}",
        m.name,
        m.version,
        m.kind(),
        path.display()
    );
    println!(
        "  trained on {} rows ({} skipped: a feature missing or not finite) of {}{}",
        m.training.rows,
        m.training.skipped,
        m.training.source,
        m.training
            .filter
            .as_ref()
            .map_or(String::new(), |f| format!(" where {f}"))
    );
    if let (Some(from), Some(to)) = (&m.training.from, &m.training.to) {
        println!("  event time {from} … {to}");
    }
    println!(
        "  threshold {:.6}: flags {:.3}% of the training rows (scores: mean {:.4}, median {:.4}, p99 {:.4}, max {:.4})",
        m.threshold,
        100.0 * m.metrics.flagged_fraction,
        m.metrics.score_mean,
        m.metrics.score_p50,
        m.metrics.score_p99,
        m.metrics.score_max
    );
    println!(
        "  SQL: anomaly_model('{}', {})",
        m.name,
        m.features.join(", ")
    );
}

/// Reads `features` (default: every floating-point column) of the table.
pub(crate) async fn read_rows(args: &RowsArgs, features: &[String]) -> Result<Rows> {
    let ctx = spindle_sql::context::new_session();
    let root = &args.history.root;
    let table = match &args.input {
        Some(file) => {
            register_file(&ctx, file).await?;
            "input".to_string()
        }
        None => args.table.clone(),
    };
    let tables = match &args.input {
        Some(_) => vec![table.clone()],
        None => register_history(&ctx, root).await?,
    };
    if !tables.contains(&table) {
        bail!(
            "no history table {:?} under {root} (tables: {})",
            table,
            if tables.is_empty() {
                "none".into()
            } else {
                tables.join(", ")
            }
        );
    }
    let schema = ctx.table(table.as_str()).await?.schema().as_arrow().clone();
    let features: Vec<String> = if features.is_empty() {
        schema
            .fields()
            .iter()
            .filter(|f| matches!(f.data_type(), DataType::Float32 | DataType::Float64))
            .map(|f| f.name().clone())
            .collect()
    } else {
        features.to_vec()
    };
    if features.is_empty() {
        bail!(
            "table {} has no floating-point columns; name the features with --features",
            table
        );
    }
    for f in &features {
        let field = schema
            .field_with_name(f)
            .map_err(|_| anyhow::anyhow!("table {} has no column {f:?}", table))?;
        if !field.data_type().is_numeric() {
            bail!("feature {f} is {}, not a number", field.data_type());
        }
    }
    let time = args.time_column.clone().or_else(|| {
        schema
            .fields()
            .iter()
            .find(|f| matches!(f.data_type(), DataType::Timestamp(_, _)))
            .map(|f| f.name().clone())
    });
    let filter = args
        .filter
        .as_ref()
        .map_or(String::new(), |f| format!(" WHERE {f}"));
    let select: Vec<String> = features
        .iter()
        .map(|f| format!("CAST(\"{f}\" AS DOUBLE) AS \"{f}\""))
        .collect();
    let sql = format!("SELECT {} FROM \"{}\"{filter}", select.join(", "), table);
    let batches = collect(&ctx, &sql).await?;
    let mut columns = vec![Vec::new(); features.len()];
    for batch in &batches {
        for (j, column) in columns.iter_mut().enumerate() {
            let array = batch
                .column(j)
                .as_any()
                .downcast_ref::<Float64Array>()
                .context("feature column is not DOUBLE")?;
            column.extend((0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i))));
        }
    }
    let range = match time {
        Some(t) => time_range(&ctx, &t, &table, &filter).await?,
        None => (None, None),
    };
    Ok(Rows {
        features,
        columns,
        range,
    })
}

/// Registers `file` as table `input`.
async fn register_file(ctx: &SessionContext, file: &std::path::Path) -> Result<()> {
    let path = file.to_str().context("input path is not UTF-8")?;
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("jsonl")
        .to_string();
    let dotted = format!(".{extension}");
    match extension.as_str() {
        "csv" => {
            let options = CsvReadOptions::new()
                .file_extension(&dotted)
                .schema_infer_max_records(usize::MAX);
            ctx.register_csv("input", path, options).await
        }
        "parquet" => {
            ctx.register_parquet("input", path, ParquetReadOptions::default())
                .await
        }
        _ => {
            let options = JsonReadOptions::default()
                .file_extension(&dotted)
                .schema_infer_max_records(usize::MAX);
            ctx.register_json("input", path, options).await
        }
    }
    .with_context(|| format!("reading {}", file.display()))
}

async fn time_range(
    ctx: &SessionContext,
    time: &str,
    table: &str,
    filter: &str,
) -> Result<(Option<String>, Option<String>)> {
    let sql = format!("SELECT min(\"{time}\"), max(\"{time}\") FROM \"{table}\"{filter}");
    let batches = collect(ctx, &sql).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok((None, None));
    };
    let text = |i: usize| -> Result<Option<String>> {
        let array = cast(batch.column(i), &DataType::Utf8)?;
        let strings = array
            .as_any()
            .downcast_ref::<StringArray>()
            .context("time as text")?;
        Ok(strings.is_valid(0).then(|| strings.value(0).to_string()))
    };
    Ok((text(0)?, text(1)?))
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql)
        .await
        .with_context(|| format!("planning {sql}"))?
        .collect()
        .await
        .with_context(|| format!("running {sql}"))
}
