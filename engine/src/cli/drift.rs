//! `spindle drift MODEL`: compares recent history with the distributions a
//! model was trained on, per feature (PSI and Kolmogorov–Smirnov; see
//! `spindle_anomaly::trained::drift`). Exits with status 3 when a feature's
//! PSI is above `--threshold`, so a scheduled script can retrain.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use spindle_anomaly::trained::drift::{Drift, compare};
use spindle_anomaly::trained::store::{ModelStore, default_directory};

use super::eval::EvalFormat;
use super::train::{RowsArgs, read_rows};

#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// The model (a file <models dir>/MODEL.json).
    model: String,
    #[command(flatten)]
    rows: RowsArgs,
    /// PSI above which a feature counts as drifted (exit status 3).
    #[arg(long, default_value_t = 0.25)]
    threshold: f64,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
}

pub(crate) fn execute(args: DriftArgs) -> Result<ExitCode> {
    let store = ModelStore::new(default_directory());
    let model = store.get(&args.model)?;
    let runtime = super::runtime()?;
    let rows = runtime.block_on(read_rows(&args.rows, &model.file.features))?;
    let mut report = Vec::new();
    for (feature, column) in model.file.features.iter().zip(&rows.columns) {
        let profile = model
            .file
            .profiles
            .iter()
            .find(|p| &p.feature == feature)
            .with_context(|| {
                format!("model {} has no training profile of {feature}", args.model)
            })?;
        let values: Vec<f64> = column.iter().flatten().copied().collect();
        report.push(compare(profile, &values));
    }
    print(&args, &model.file.name, model.file.version, &report)?;
    let drifted = report.iter().any(|d| d.psi > args.threshold);
    Ok(if drifted {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print(args: &DriftArgs, name: &str, version: u64, report: &[Drift]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match args.format {
        super::eval::EvalFormat::Json => {
            for d in report {
                let mut v = serde_json::to_value(d)?;
                v["model"] = serde_json::json!(name);
                v["version"] = serde_json::json!(version);
                v["over_threshold"] = serde_json::json!(d.psi > args.threshold);
                writeln!(out, "{v}")?;
            }
        }
        super::eval::EvalFormat::Table => {
            writeln!(
                out,
                "model {name} v{version}: recent rows of {}/{}{}",
                args.rows.history.root,
                args.rows.table,
                args.rows
                    .filter
                    .as_ref()
                    .map_or(String::new(), |f| format!(" where {f}"))
            )?;
            writeln!(
                out,
                "{:<24} {:>9} {:>12} {:>8} {:>8} {:>8}  verdict",
                "feature", "rows", "mean", "psi", "ks", "ks_5%"
            )?;
            for d in report {
                writeln!(
                    out,
                    "{:<24} {:>9} {:>12.4} {:>8.4} {:>8.4} {:>8.4}  {}",
                    d.feature, d.rows, d.mean, d.psi, d.ks, d.ks_critical, d.verdict
                )?;
            }
        }
    }
    Ok(())
}
