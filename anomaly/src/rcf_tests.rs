#![allow(clippy::unwrap_used)]
use super::*;

/// Three sensors: slow sinusoids plus deterministic noise.
fn reading(i: usize) -> Vec<Option<f64>> {
    (0..3)
        .map(|d| {
            let t = i as f64;
            let noise = ((i.wrapping_mul(2_654_435_761) >> (d + 3)) % 1000) as f64 / 500.0;
            Some(60.0 + 5.0 * (t * 0.01 * (d + 1) as f64).sin() + noise)
        })
        .collect()
}

fn small() -> RcfParams {
    RcfParams {
        trees: 20,
        sample_size: 64,
        ..RcfParams::default()
    }
}

#[test]
fn warms_up_then_scores_and_flags_a_spike_with_its_dimension() {
    let mut rcf = Rcf::new(small()).unwrap();
    let first = rcf.observe(&reading(0));
    assert_eq!(first.flag, Some(false));
    assert_eq!(
        first.reason.as_deref(),
        Some("unknown source (warming up: 0 of 18 readings)")
    );
    let mut flagged = 0;
    for i in 1..3000 {
        flagged += usize::from(rcf.observe(&reading(i)).flag == Some(true));
    }
    assert!(
        flagged < 30,
        "{flagged} false alarms in 3000 normal readings"
    );
    let mut spike = reading(3000);
    spike[1] = spike[1].map(|v| v + 40.0);
    let a = rcf.attribution(&spike.iter().map(|v| v.unwrap()).collect::<Vec<_>>());
    let a = a.unwrap();
    assert!(a[1] > a[0] + a[2], "{a:?}");
    let v = rcf.observe(&spike);
    assert_eq!(v.flag, Some(true), "{v:?}");
    let reason = v.reason.unwrap();
    assert!(reason.contains("mostly value 2"), "{reason}");
}

#[test]
fn a_restored_forest_continues_with_the_same_scores() {
    let mut a = Rcf::new(small()).unwrap();
    for i in 0..500 {
        a.observe(&reading(i));
    }
    let mut b = Rcf::from_json(&a.to_json().unwrap()).unwrap();
    for i in 500..1000 {
        assert_eq!(a.observe(&reading(i)), b.observe(&reading(i)));
    }
}

#[test]
fn deterministic_for_the_seed() {
    let mut a = Rcf::new(small()).unwrap();
    let mut b = Rcf::new(small()).unwrap();
    for i in 0..300 {
        assert_eq!(a.observe(&reading(i)), b.observe(&reading(i)));
    }
}

#[test]
fn bad_values_are_reported_and_not_learnt() {
    let mut rcf = Rcf::new(small()).unwrap();
    let v = rcf.observe(&[Some(1.0), None]);
    assert_eq!(v.reason.as_deref(), Some("missing value 2"));
    let v = rcf.observe(&[Some(f64::NAN)]);
    assert_eq!(v.reason.as_deref(), Some("value 1 is not finite (NaN)"));
    rcf.observe(&[Some(1.0), Some(2.0)]);
    let v = rcf.observe(&[Some(1.0)]);
    assert_eq!(
        v.reason.as_deref(),
        Some("bad parameter: 1 values, this key's forest has 2")
    );
    assert!(
        Rcf::new(RcfParams {
            trees: 0,
            ..small()
        })
        .is_err()
    );
}
