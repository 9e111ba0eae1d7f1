use std::collections::HashMap;

use super::*;
use crate::factory::FactoryOptions;
use crate::profiles::{DEFAULT_PROFILE, built_in};

fn factory_stream(limits: Limits, disorder: Option<Disorder>) -> ReadingStream {
    let spec = built_in(DEFAULT_PROFILE).unwrap().unwrap();
    let options = FactoryOptions {
        seed: 9,
        start_ms: 0,
        machines: Some(50),
        interval_ms: None,
        fault_rate: Some(0.0),
    };
    let factory = Factory::new(&spec, &options).unwrap();
    ReadingStream::new(Source::Factory(Box::new(factory)), limits, disorder)
}

fn drain(stream: &mut ReadingStream) -> Vec<Reading> {
    let mut out = Reading::with_fields(stream.layout().fields.len());
    std::iter::from_fn(|| stream.next_into(&mut out).then(|| out.clone())).collect()
}

#[test]
fn count_limit_is_exact_even_with_late_readings() {
    let disorder = Disorder {
        fraction: 0.2,
        max_delay_ms: 10_000,
        seed: 1,
    };
    let limits = Limits {
        count: Some(10_007),
        until_ms: None,
    };
    let mut stream = factory_stream(limits, Some(disorder));
    let readings = drain(&mut stream);
    assert_eq!(readings.len(), 10_007);
    let delayed = stream.delayed() as f64 / 10_007.0;
    assert!(
        (0.17..0.23).contains(&delayed),
        "delayed fraction {delayed}"
    );
    // Every (machine, seq) exactly once.
    let mut seen = HashMap::new();
    for r in &readings {
        assert!(
            seen.insert((r.machine, r.seq), ()).is_none(),
            "duplicate {r:?}"
        );
    }
}

#[test]
fn late_readings_arrive_after_later_ones_but_within_max_delay() {
    let disorder = Disorder {
        fraction: 0.1,
        max_delay_ms: 5_000,
        seed: 2,
    };
    let limits = Limits {
        count: Some(20_000),
        until_ms: None,
    };
    let readings = drain(&mut factory_stream(limits, Some(disorder)));
    let mut newest = i64::MIN;
    let mut out_of_order = 0;
    for r in &readings {
        if r.nominal_ms < newest {
            out_of_order += 1;
            assert!(
                newest - r.nominal_ms <= 5_000 + 1_000,
                "{r:?} behind {newest}"
            );
        }
        newest = newest.max(r.nominal_ms);
    }
    assert!(out_of_order > 1_000, "{out_of_order} out of order");
}

#[test]
fn duration_limit_stops_before_the_end_time() {
    let limits = Limits {
        count: None,
        until_ms: Some(60_000),
    };
    let readings = drain(&mut factory_stream(limits, None));
    assert!(readings.iter().all(|r| r.nominal_ms < 60_000));
    assert_eq!(readings.len(), 50 * 60, "50 machines × 60 one-second ticks");
}
