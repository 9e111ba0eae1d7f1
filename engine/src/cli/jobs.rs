//! `spindle jobs list|show|stop|restart|delete`: manage the jobs of a
//! running `spindle server`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use super::client::{Client, ServerArgs, text};

#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Every job: id, name, state, counters.
    List {
        /// The server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One job as JSON, with its SQL.
    Show {
        /// The job's id.
        id: String,
    },
    /// Stop a job (it stays stopped across server restarts).
    Stop {
        /// The job's id.
        id: String,
    },
    /// Stop a job if it runs, plan it afresh and start it.
    Restart {
        /// The job's id.
        id: String,
    },
    /// Stop and forget a job.
    Delete {
        /// The job's id.
        id: String,
    },
}

pub(crate) fn execute(args: JobsArgs) -> Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let runtime = super::runtime()?;
    let call =
        |method: Method, path: String| runtime.block_on(client.json(method, &path, None, "job"));
    match args.action {
        Action::List { json } => {
            let jobs = call(Method::GET, "/api/jobs".into())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                print_table(&jobs);
            }
        }
        Action::Show { id } => {
            let job = call(Method::GET, format!("/api/jobs/{id}"))?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Action::Stop { id } => print_state(&call(Method::POST, format!("/api/jobs/{id}/stop"))?),
        Action::Restart { id } => {
            print_state(&call(Method::POST, format!("/api/jobs/{id}/restart"))?)
        }
        Action::Delete { id } => {
            call(Method::DELETE, format!("/api/jobs/{id}"))?;
            println!("id={id} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_state(job: &Value) {
    println!(
        "id={} name={} state={}",
        text(&job["id"]),
        text(&job["name"]),
        text(&job["state"])
    );
}

fn print_table(jobs: &Value) {
    println!(
        "{:<16}  {:<24}  {:<8}  {:>12}  {:>12}  LAST ERROR",
        "ID", "NAME", "STATE", "RECORDS IN", "ROWS OUT"
    );
    for job in jobs.as_array().into_iter().flatten() {
        println!(
            "{:<16}  {:<24}  {:<8}  {:>12}  {:>12}  {}",
            text(&job["id"]),
            text(&job["name"]),
            text(&job["state"]),
            job["counters"]["records_in"],
            job["counters"]["rows_out"],
            job["last_error"].as_str().unwrap_or("")
        );
    }
}
