use influxdb_line_protocol::{FieldValue, parse_lines};

use super::*;
use crate::record::{FieldMeta, Layout, MachineMeta, Reading};

/// A layout with names that need escaping in every format.
fn awkward_layout() -> Layout {
    Layout {
        machines: vec![MachineMeta {
            id: "m \"1\",=\\x".into(),
            line: "line 1,a=b".into(),
            provider: "acme\nco".into(),
        }],
        fields: vec![
            FieldMeta {
                name: "temperature".into(),
                unit: "celsius".into(),
                precision: Some(2),
            },
            FieldMeta {
                name: "rpm".into(),
                unit: String::new(),
                precision: Some(0),
            },
        ],
        fault_kinds: vec!["over \"heat\"".into()],
    }
}

fn reading(fault: Option<u16>, rpm: f64) -> Reading {
    Reading {
        machine: 0,
        seq: 42,
        nominal_ms: 1_767_225_600_123,
        ts_ms: 1_767_225_600_123,
        values: vec![65.25, rpm],
        fault,
    }
}

fn encode(format: Format, labels: bool, r: &Reading) -> String {
    let mut layout = awkward_layout();
    if format == Format::InfluxLp {
        // Line protocol cannot carry a newline in a tag; profiles and
        // replays refuse control characters in names (see spec and replay).
        layout.machines[0].provider = "acme co".into();
    }
    let mut buf = Vec::new();
    encoder(format, &layout, labels).encode(r, &mut buf);
    String::from_utf8(buf).unwrap()
}

#[test]
fn json_round_trips_through_serde_json() {
    let text = encode(Format::Json, true, &reading(Some(0), 1480.0));
    assert!(text.ends_with("}\n"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["machine_id"], "m \"1\",=\\x");
    assert_eq!(v["line"], "line 1,a=b");
    assert_eq!(v["provider"], "acme\nco");
    assert_eq!(v["seq"], 42);
    assert_eq!(v["ts"], "2026-01-01T00:00:00.123Z");
    assert_eq!(v["temperature"], 65.25);
    assert_eq!(v["rpm"], 1480.0);
    assert_eq!(v["fault"], true);
    assert_eq!(v["fault_kind"], "over \"heat\"");
}

#[test]
fn json_without_labels_has_no_label_keys_and_missing_values_are_null() {
    let text = encode(Format::Json, false, &reading(None, f64::NAN));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("fault").is_none() && v.get("fault_kind").is_none());
    assert!(v["rpm"].is_null());
    let labelled = encode(Format::Json, true, &reading(None, 1.0));
    let v: serde_json::Value = serde_json::from_str(&labelled).unwrap();
    assert_eq!(v["fault"], false);
    assert!(v["fault_kind"].is_null());
}

#[test]
fn line_protocol_parses_back_with_escapes_and_nanoseconds() {
    let text = encode(Format::InfluxLp, true, &reading(Some(0), 1480.0));
    let lines: Vec<_> = parse_lines(&text).collect::<Result<_, _>>().unwrap();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.series.measurement.as_str(), MEASUREMENT);
    let tags = line.series.tag_set.as_ref().unwrap();
    let tag = |k: &str| {
        tags.iter()
            .find(|(key, _)| key.as_str() == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(tag("machine_id").as_deref(), Some("m \"1\",=\\x"));
    assert_eq!(tag("line").as_deref(), Some("line 1,a=b"));
    let field = |k: &str| {
        line.field_set
            .iter()
            .find(|(key, _)| key.as_str() == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("seq"), Some(FieldValue::I64(42)));
    assert_eq!(field("temperature"), Some(FieldValue::F64(65.25)));
    assert_eq!(field("rpm"), Some(FieldValue::F64(1480.0)));
    assert_eq!(field("fault"), Some(FieldValue::Boolean(true)));
    match field("fault_kind") {
        Some(FieldValue::String(kind)) => assert_eq!(kind.as_str(), "over \"heat\""),
        other => panic!("fault_kind is {other:?}"),
    }
    assert_eq!(line.timestamp, Some(1_767_225_600_123_000_000));
}

#[test]
fn line_protocol_skips_missing_values() {
    let text = encode(Format::InfluxLp, false, &reading(None, f64::NAN));
    let line = parse_lines(&text).next().unwrap().unwrap();
    assert!(line.field_set.iter().all(|(k, _)| k.as_str() != "rpm"));
    assert!(line.field_set.iter().all(|(k, _)| k.as_str() != "fault"));
}

#[test]
fn openmetrics_exposition_is_well_formed() {
    let text = encode(Format::Openmetrics, true, &reading(Some(0), 1480.0));
    assert!(text.ends_with("# EOF\n"));
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
    // temperature, rpm, seq, fault: each family declared once, one sample each.
    assert_eq!((samples.len(), types.len()), (4, 4));
    let labels = r#"{machine_id="m \"1\",=\\x",line="line 1,a=b",provider="acme\nco"#;
    assert_eq!(
        samples[0],
        format!("temperature{labels}\"}} 65.25 1767225600.123")
    );
    assert_eq!(samples[2], format!("seq{labels}\"}} 42 1767225600.123"));
    assert_eq!(
        samples[3],
        format!("fault{labels}\",fault_kind=\"over \\\"heat\\\"\"}} 1 1767225600.123")
    );
}

#[test]
fn timestamps_before_the_epoch_and_second_boundaries_format_correctly() {
    let mut ts = TimestampFormatter::default();
    let mut buf = Vec::new();
    for ms in [-1, 0, 999, 1000, 1_767_225_599_999] {
        ts.push(&mut buf, ms);
        buf.push(b' ');
    }
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "1969-12-31T23:59:59.999Z 1970-01-01T00:00:00.000Z 1970-01-01T00:00:00.999Z \
         1970-01-01T00:00:01.000Z 2025-12-31T23:59:59.999Z "
    );
}

#[test]
fn format_names_parse() {
    assert_eq!("influx-lp".parse::<Format>(), Ok(Format::InfluxLp));
    assert!(
        "xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("unknown format")
    );
}

#[test]
fn fixed_point_text_equals_ryu_for_rounded_values() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    for _ in 0..200_000 {
        let decimals = rng.random_range(0..=6u32);
        let scale = 10f64.powi(decimals as i32);
        let raw: f64 = rng.random_range(-5_000.0..5_000.0) * 10f64.powi(rng.random_range(-3..4));
        let value = crate::record::round_to(raw, scale);
        let (mut fixed, mut shortest) = (Vec::new(), Vec::new());
        push_fixed(&mut fixed, value, decimals);
        push_f64(&mut shortest, value);
        assert_eq!(
            String::from_utf8(fixed).unwrap(),
            String::from_utf8(shortest).unwrap(),
            "{value} at {decimals}"
        );
    }
}
