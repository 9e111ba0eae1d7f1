//! What the fuzz targets share: one function per target (so a crash found
//! by `cargo fuzz` can be replayed from a unit test or a debugger with the
//! same code), and an allocator that turns a huge allocation into a crash.

mod alloc_guard;
pub mod checkpoint;
pub mod decoders;

use std::sync::{Once, OnceLock};

use spindle_sql::{Job, SqlError};

/// One runtime for every input: `plan_job` is async but does no I/O.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// The environment jobs see: a few set variables, the rest unset (so
/// `${VAR:-default}` and the missing-variable error are both reachable).
fn env(name: &str) -> Option<String> {
    match name {
        "BROKERS" => Some("127.0.0.1:9092".into()),
        "TOPIC" => Some("factory.sensors".into()),
        "PATH_OUT" => Some("/tmp/out".into()),
        "EMPTY" => Some(String::new()),
        "QUOTE" => Some("'".into()),
        _ => None,
    }
}

/// Substitutes, parses and plans `text` as `spindle run` does before it
/// opens any connector. Errors are fine; they must point into the text.
pub fn job_sql(text: &str) {
    let job = match Job::parse_with_env(text, env) {
        Ok(job) => job,
        Err(error) => return check_error(text, &error),
    };
    let _ = job.text.masked();
    let ctx = spindle_sql::context::new_session();
    if let Err(error) = runtime().block_on(spindle_sql::plan_job(&job, &ctx)) {
        check_error(text, &error);
    }
}

/// An error names a place inside the user's text (line 1 column 1 at the
/// least) and has a message.
fn check_error(text: &str, error: &SqlError) {
    let location = error.location();
    let lines = text.split('\n').count();
    assert!(
        location.line >= 1 && location.line <= lines + 1,
        "error at line {} of a {lines}-line text: {error}",
        location.line
    );
    assert!(location.column >= 1, "column 0: {error}");
    assert!(!error.message().is_empty(), "empty message");
}

/// libFuzzer's panic hook aborts at once, before unwinding. Arrow's IPC
/// reader panics on some malformed schemas and buffers, and the checkpoint
/// reader and the JSON decoder contain those panics (`catch_unwind`): to test
/// that containment, panics raised inside Arrow's crates unwind instead. One
/// that escapes `decode` still reaches libfuzzer-sys's own `catch_unwind`,
/// which aborts: a crash, as it should be.
pub(crate) fn let_arrow_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_arrow = info
                .location()
                .is_some_and(|l| l.file().contains("/arrow-"));
            if !in_arrow {
                abort(info);
            }
        }));
    });
}
