//! `spindle submit JOB.sql`: hand a job to a running `spindle server`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, ServerArgs, text};

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The job file.
    job: PathBuf,
    /// The job's name (default: the file name without .sql).
    #[arg(long)]
    name: Option<String>,
    /// Stop once every source is caught up and idle.
    #[arg(long)]
    until_idle: bool,
    /// Only check that the job parses and plans; do not submit it.
    #[arg(long)]
    validate: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub(crate) fn execute(args: SubmitArgs) -> Result<ExitCode> {
    let sql = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let file = args.job.display().to_string();
    let client = Client::new(&args.server)?;
    let runtime = super::runtime()?;
    if args.validate {
        let body = json!({ "sql": sql });
        let answer = runtime.block_on(client.json(
            Method::POST,
            "/api/jobs/validate",
            Some(&body),
            &file,
        ))?;
        println!(
            "valid: sources {} sinks {} pipelines {}",
            answer["sources"], answer["sinks"], answer["pipelines"]
        );
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.unwrap_or_else(|| {
        args.job
            .file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned())
    });
    let body = json!({ "sql": sql, "name": name, "until_idle": args.until_idle });
    let job = runtime.block_on(client.json(Method::POST, "/api/jobs", Some(&body), &file))?;
    println!(
        "id={} name={} state={}",
        text(&job["id"]),
        text(&job["name"]),
        text(&job["state"])
    );
    Ok(ExitCode::SUCCESS)
}
