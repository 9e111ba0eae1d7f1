//! One micro-batch of openmetrics records (separated by 0x1E) through the
//! engine's decoder; see `spindle_fuzz::decoders::decode` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spindle_engine::decode::Format;

fuzz_target!(|data: &[u8]| spindle_fuzz::decoders::decode(Format::OpenMetrics, data));
