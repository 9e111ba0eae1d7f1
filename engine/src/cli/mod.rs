//! One module per subcommand.

mod client;
pub(crate) mod demo;
pub(crate) mod drift;
pub(crate) mod eval;
pub(crate) mod jobs;
pub(crate) mod query;
pub(crate) mod run;
pub(crate) mod server;
pub(crate) mod simulate;
pub(crate) mod submit;
pub(crate) mod train;

/// The tokio runtime for subcommands that run jobs or queries.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
