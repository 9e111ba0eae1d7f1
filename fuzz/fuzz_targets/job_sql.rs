//! Job text → `${VAR}` substitution → statements → DataFusion plans.
//! Errors are expected; a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    spindle_fuzz::job_sql(text);
});
