use std::path::Path;

use super::*;
use crate::error::SimError;
use crate::profiles::{DEFAULT_PROFILE, built_in};

const DEFAULT_TEXT: &str = include_str!("../../profiles/packing_line.toml");

fn parse(text: &str) -> Result<FactorySpec> {
    FactorySpec::from_toml(text, Path::new("bad.toml"))
}

/// The line and message of a profile error.
fn profile_error(text: &str) -> (usize, String) {
    match parse(text) {
        Err(SimError::Profile { line, message, .. }) => (line, message),
        other => panic!("expected a profile error, got {other:?}"),
    }
}

/// Line number (1-based) of the first line containing `needle`.
fn line_containing(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn default_profile_has_the_seven_sensors() {
    let spec = built_in(DEFAULT_PROFILE).unwrap().unwrap();
    let names: Vec<&str> = spec.sensor_specs().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "temperature",
            "vibration",
            "power",
            "load",
            "humidity",
            "noise_level",
            "rpm"
        ]
    );
    assert_eq!(spec.machines.count, 100);
    assert!(spec.faults.rate_per_machine_hour > 0.0);
}

#[test]
fn unknown_key_names_the_key_and_its_line() {
    let text = DEFAULT_TEXT.replace("walk_window = 5\n", "walk_windw = 5\n");
    let (line, message) = profile_error(&text);
    assert_eq!(line, line_containing(&text, "walk_windw"));
    assert!(message.contains("walk_windw"), "{message}");
}

#[test]
fn bad_value_names_sensor_field_and_table_line() {
    let text = DEFAULT_TEXT.replace("std = 0.4", "std = -0.4");
    let (line, message) = profile_error(&text);
    assert!(
        message.contains("sensor `vibration`") && message.contains("`std`"),
        "{message}"
    );
    // The span of a `[[sensors]]` entry starts at its first key.
    let vibration = line_containing(&text, "name = \"vibration\"");
    assert!(
        (vibration - 1..=vibration).contains(&line),
        "line {line} vs {vibration}"
    );
}

#[test]
fn mean_outside_bounds_is_refused() {
    let text = DEFAULT_TEXT.replace("mean = 1480.0", "mean = 4000.0");
    let (_, message) = profile_error(&text);
    assert!(
        message.contains("sensor `rpm`") && message.contains("`mean`"),
        "{message}"
    );
}

#[test]
fn effect_on_unknown_sensor_is_refused() {
    let text = DEFAULT_TEXT.replace("sensor = \"noise_level\"", "sensor = \"noise\"");
    let (line, message) = profile_error(&text);
    assert!(message.contains("unknown sensor `noise`"), "{message}");
    assert!(line > line_containing(&text, "[faults]"), "line {line}");
}

#[test]
fn wrong_type_is_refused_with_its_line() {
    let text = DEFAULT_TEXT.replace("count = 100", "count = \"many\"");
    let (line, _) = profile_error(&text);
    assert_eq!(line, line_containing(&text, "count = \"many\""));
}

#[test]
fn reserved_and_odd_sensor_names_are_refused() {
    for bad in ["seq", "Temp", "noise level", "1st"] {
        let text = DEFAULT_TEXT.replace("name = \"humidity\"", &format!("name = \"{bad}\""));
        let (_, message) = profile_error(&text);
        assert!(message.contains("`name`"), "{bad}: {message}");
    }
}

#[test]
fn duplicate_sensor_is_refused() {
    let text = DEFAULT_TEXT.replace("name = \"humidity\"", "name = \"load\"");
    assert!(profile_error(&text).1.contains("defined twice"));
}

#[test]
fn id_pattern_renders_padded_numbers() {
    assert_eq!(IdPattern::parse("m-{n:04}").unwrap().render(7), "m-0007");
    assert_eq!(
        IdPattern::parse("press{n}-a").unwrap().render(12),
        "press12-a"
    );
    assert!(IdPattern::parse("m-").is_err());
    assert!(IdPattern::parse("m-{n:x}").is_err());
}
