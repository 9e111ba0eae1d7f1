//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod eval;
pub(crate) mod query;
pub(crate) mod run;
pub(crate) mod simulate;

/// The tokio runtime for subcommands that run jobs or queries.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
