//! Arbitrary bytes (and the same bytes with a repaired preamble) through the
//! checkpoint reader: an error or a checkpoint that round-trips, never a
//! panic, an abort or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spindle_fuzz::checkpoint::read(data));
