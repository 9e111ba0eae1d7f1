use std::path::Path;

use super::*;
use crate::profiles::{DEFAULT_PROFILE, built_in};

fn default_spec() -> FactorySpec {
    built_in(DEFAULT_PROFILE).unwrap().unwrap()
}

fn options(seed: u64, fault_rate: Option<f64>) -> FactoryOptions {
    FactoryOptions {
        seed,
        start_ms: 1_767_225_600_000,
        machines: None,
        interval_ms: None,
        fault_rate,
    }
}

fn generate(factory: &mut Factory, n: usize) -> Vec<Reading> {
    let mut out = Reading::with_fields(factory.layout().fields.len());
    (0..n)
        .map(|_| {
            factory.next_into(&mut out);
            out.clone()
        })
        .collect()
}

/// Per sensor: mean, std and mean lag-1 autocorrelation within machines.
fn statistics(readings: &[Reading], sensors: usize, machines: usize) -> Vec<(f64, f64, f64)> {
    (0..sensors)
        .map(|s| {
            let values: Vec<f64> = readings.iter().map(|r| r.values[s]).collect();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let mut series = vec![Vec::new(); machines];
            for r in readings {
                series[r.machine as usize].push(r.values[s]);
            }
            let lag1 = series
                .iter()
                .map(|x| lag1_autocorrelation(x, mean, var))
                .sum::<f64>()
                / machines as f64;
            (mean, var.sqrt(), lag1)
        })
        .collect()
}

fn lag1_autocorrelation(x: &[f64], mean: f64, var: f64) -> f64 {
    let pairs = x.windows(2).map(|w| (w[0] - mean) * (w[1] - mean));
    pairs.sum::<f64>() / ((x.len() - 1) as f64 * var)
}

#[test]
fn long_run_statistics_match_the_profile() {
    let spec = default_spec();
    let mut factory = Factory::new(&spec, &options(7, Some(0.0))).unwrap();
    let readings = generate(&mut factory, 1_000_000);
    let stats = statistics(&readings, spec.sensors.len(), 100);
    for (sensor, (mean, std, lag1)) in spec.sensor_specs().zip(stats) {
        let name = &sensor.name;
        let mean_error = (mean - sensor.mean).abs() / sensor.mean;
        assert!(mean_error < 0.02, "{name}: mean {mean} vs {}", sensor.mean);
        let std_error = (std - sensor.std).abs() / sensor.std;
        assert!(std_error < 0.15, "{name}: std {std} vs {}", sensor.std);
        // Independent samples give |lag-1| ≈ 1/sqrt(10^4) = 0.01 per machine.
        assert!(
            lag1 > 0.3,
            "{name}: lag-1 autocorrelation {lag1} looks independent"
        );
    }
    for r in &readings {
        for (sensor, v) in spec.sensor_specs().zip(&r.values) {
            assert!(
                (sensor.min..=sensor.max).contains(v),
                "{} = {v} out of bounds",
                sensor.name
            );
        }
        assert!(r.fault.is_none());
    }
}

#[test]
fn recalibration_one_gives_independent_readings() {
    // The control for the autocorrelation assertion above.
    let text = include_str!("../../profiles/packing_line.toml")
        .replace("recalibration = 0.05", "recalibration = 1.0");
    let spec = FactorySpec::from_toml(&text, Path::new("iid.toml")).unwrap();
    let mut factory = Factory::new(&spec, &options(7, Some(0.0))).unwrap();
    let readings = generate(&mut factory, 200_000);
    let (_, std, lag1) = statistics(&readings, 1, 100)[0];
    assert!(lag1.abs() < 0.05, "temperature lag-1 {lag1}");
    assert!((std - 3.0).abs() / 3.0 < 0.05, "temperature std {std}");
}

#[test]
fn sequence_numbers_count_each_machine_without_gaps() {
    let mut factory = Factory::new(&default_spec(), &options(3, None)).unwrap();
    let readings = generate(&mut factory, 50_000);
    let mut last = vec![0u64; 100];
    for r in &readings {
        let m = r.machine as usize;
        assert_eq!(r.seq, last[m] + 1, "machine {m}");
        last[m] = r.seq;
    }
}

#[test]
fn nominal_times_never_go_backwards_outside_bursts() {
    let mut factory = Factory::new(&default_spec(), &options(3, Some(0.0))).unwrap();
    let readings = generate(&mut factory, 20_000);
    assert!(
        readings
            .windows(2)
            .all(|w| w[0].nominal_ms <= w[1].nominal_ms)
    );
    // Machine m reports exactly once per interval.
    let first = &readings[0];
    let next = readings
        .iter()
        .skip(1)
        .find(|r| r.machine == first.machine)
        .unwrap();
    assert_eq!(next.nominal_ms - first.nominal_ms, 1000);
}

#[test]
fn labels_match_the_injected_faults_exactly() {
    let spec = default_spec();
    let mut factory = Factory::new(&spec, &options(11, Some(6.0))).unwrap();
    let readings = generate(&mut factory, 360_000); // one hour of 100 machines
    let log = factory.fault_log().to_vec();
    assert!(log.len() > 100, "only {} faults", log.len());
    let kinds = &factory.layout().fault_kinds;
    for r in &readings {
        let truth = log.iter().find(|e| {
            e.machine == r.machine && e.start_ms <= r.nominal_ms && r.nominal_ms < e.end_ms
        });
        let label = r.fault.map(|k| kinds[k as usize].as_str());
        assert_eq!(label, truth.map(|e| e.kind.as_str()), "reading {r:?}");
    }
    // A stalled machine sends nothing while stalled.
    for e in log.iter().filter(|e| e.kind == "stalled_reporting") {
        let inside = readings
            .iter()
            .filter(|r| r.machine == e.machine && (e.start_ms..e.end_ms).contains(&r.nominal_ms));
        assert_eq!(inside.count(), 0, "{e:?}");
    }
}

#[test]
fn faulty_sensors_differ_measurably() {
    let spec = default_spec();
    let mut factory = Factory::new(&spec, &options(5, Some(6.0))).unwrap();
    let readings = generate(&mut factory, 360_000);
    let kinds = factory.layout().fault_kinds.clone();
    let kind = |name: &str| kinds.iter().position(|k| k == name).unwrap() as u16;
    let (temperature, vibration, power) = (0, 1, 2);
    let values = |k: Option<u16>, s: usize| -> Vec<f64> {
        readings
            .iter()
            .filter(|r| r.fault == k)
            .map(|r| r.values[s])
            .collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let std = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let healthy_vibration = values(None, vibration);
    let burst = values(Some(kind("vibration_burst")), vibration);
    assert!(mean(&burst) > mean(&healthy_vibration) + 3.0 * 0.4);
    assert!(std(&burst) > 2.0 * std(&healthy_vibration));
    let hot = values(Some(kind("overheating")), temperature);
    assert!(mean(&hot) > mean(&values(None, temperature)) + 3.0);
    let spiky = values(Some(kind("power_spikes")), power);
    assert!(std(&spiky) > 2.0 * std(&values(None, power)));
    // A stuck sensor repeats one value for the whole fault of one machine.
    let event = factory
        .fault_log()
        .iter()
        .find(|e| e.kind == "stuck_sensor")
        .unwrap();
    let frozen: Vec<f64> = readings
        .iter()
        .filter(|r| {
            r.machine == event.machine && (event.start_ms..event.end_ms).contains(&r.nominal_ms)
        })
        .map(|r| r.values[temperature])
        .collect();
    assert!(frozen.len() > 10 && frozen.iter().all(|v| *v == frozen[0]));
}

#[test]
fn bursty_machines_report_more_often() {
    let mut factory = Factory::new(&default_spec(), &options(5, Some(6.0))).unwrap();
    let readings = generate(&mut factory, 200_000);
    let bursty = factory
        .layout()
        .fault_kinds
        .iter()
        .position(|k| k == "bursty_reporting");
    let event = factory
        .fault_log()
        .iter()
        .find(|e| e.kind == "bursty_reporting")
        .unwrap();
    let inside = readings
        .iter()
        .filter(|r| r.machine == event.machine && r.fault.map(usize::from) == bursty)
        .count() as i64;
    let seconds = (event.end_ms - event.start_ms) / 1000;
    assert!(
        inside >= 4 * seconds,
        "{inside} readings in {seconds} s of burst"
    );
}
