#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::trained::store::ModelStore;

fn names() -> Vec<String> {
    ["temperature", "vibration", "power"]
        .map(String::from)
        .to_vec()
}

/// 500 normal rows: Gaussian, power follows temperature.
fn data() -> Matrix {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let mut normal = move || {
        let (u, v): (f64, f64) = (rng.random(), rng.random());
        (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let rows: Vec<Vec<f64>> = (0..500)
        .map(|_| {
            let temperature = 60.0 + 3.0 * normal();
            let vibration = 1.0 + 0.2 * normal();
            let power = 10.0 + 0.5 * (temperature - 60.0) + 0.2 * normal();
            vec![temperature, vibration, power]
        })
        .collect();
    Matrix::from_rows(&rows).unwrap()
}

fn fits() -> [Fit; 3] {
    [
        Fit::Iforest(IforestParams::default()),
        Fit::T2 {
            probability: 0.999_999,
        },
        Fit::Pca(PcaParams::default()),
    ]
}

#[test]
fn every_kind_flags_an_outlier_and_passes_a_normal_row() {
    for fit in fits() {
        let file = train("m", &names(), &data(), &fit, None).unwrap();
        let model = file.compile().unwrap();
        let normal = model.verdict(&[Some(60.5), Some(1.05), Some(10.25)]);
        assert_eq!(normal.flag, Some(false), "{fit:?}: {normal:?}");
        let outlier = model.verdict(&[Some(60.5), Some(1.05), Some(14.0)]);
        assert_eq!(outlier.flag, Some(true), "{fit:?}: {outlier:?}");
        let reason = outlier.reason.unwrap();
        assert!(reason.starts_with("m v1: score "), "{reason}");
        if !matches!(fit, Fit::Iforest(_)) {
            assert!(reason.contains("power"), "{fit:?}: {reason}");
        }
        assert_eq!(file.profiles.len(), 3);
        assert_eq!(file.training.rows, 500);
    }
}

#[test]
fn contamination_flags_that_share_of_the_training_rows() {
    for fit in fits() {
        let file = train("m", &names(), &data(), &fit, Some(0.05)).unwrap();
        let f = file.metrics.flagged_fraction;
        assert!((0.04..=0.05).contains(&f), "{fit:?}: {f}");
    }
    assert!(train("m", &names(), &data(), &fits()[0], Some(0.7)).is_err());
}

#[test]
fn missing_and_non_finite_features_are_reported_not_scored() {
    let model = train("m", &names(), &data(), &fits()[0], None)
        .unwrap()
        .compile()
        .unwrap();
    let v = model.verdict(&[Some(60.0), None, Some(10.0)]);
    assert_eq!((v.score, v.flag), (None, None));
    assert_eq!(v.reason.as_deref(), Some("missing feature vibration"));
    let v = model.verdict(&[Some(f64::INFINITY), Some(1.0), Some(10.0)]);
    assert_eq!(
        v.reason.as_deref(),
        Some("feature temperature is not finite (inf)")
    );
}

#[test]
fn a_saved_model_loads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    for fit in fits() {
        let file = train("m", &names(), &data(), &fit, Some(0.01)).unwrap();
        let path = dir.path().join("m.json");
        file.save(&path).unwrap();
        let loaded = ModelFile::load(&path).unwrap();
        // serde_json parses floats to within an ulp (its exact parser is a
        // feature that would rebuild half the workspace): equal scores and
        // metadata, not bit-equal bodies.
        let (a, b) = (&loaded.file, &file);
        assert_eq!(
            (
                &a.name,
                a.version,
                &a.features,
                &a.training,
                a.contamination
            ),
            (
                &b.name,
                b.version,
                &b.features,
                &b.training,
                b.contamination
            )
        );
        assert!((a.threshold - b.threshold).abs() <= 1e-12 * b.threshold.abs());
        let original = file.compile().unwrap();
        let d = data();
        for i in 0..d.rows() {
            let (x, y) = (loaded.score(d.row(i)), original.score(d.row(i)));
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
        }
    }
}

#[test]
fn model_files_of_the_wrong_shape_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let mut file = train("m", &names(), &data(), &fits()[1], None).unwrap();
    file.features.pop();
    file.save(&path).unwrap();
    let e = ModelFile::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("model m: mean has 3 values for 2 features"),
        "{e}"
    );
    std::fs::write(&path, "{\"format\": \"spindle-model/1\", \"name\": 3}").unwrap();
    let e = ModelFile::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with("model file ") && e.contains("invalid type"),
        "{e}"
    );
    let mut other = train("m", &names(), &data(), &fits()[0], None).unwrap();
    other.format = "spindle-model/9".into();
    std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
    let e = ModelFile::load(&path).unwrap_err().to_string();
    assert!(e.contains("this version reads \"spindle-model/1\""), "{e}");
    // JSON has no NaN: such a model is not written at all.
    let mut nan = train("m", &names(), &data(), &fits()[1], None).unwrap();
    nan.threshold = f64::NAN;
    let e = nan.save(&path).unwrap_err().to_string();
    assert!(e.contains("not saved, it would not load back"), "{e}");
}

#[test]
fn the_store_names_unknown_models_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    train("known", &names(), &data(), &fits()[1], None)
        .unwrap()
        .save(&dir.path().join("known.json"))
        .unwrap();
    let store = ModelStore::new(dir.path());
    let e = store.get("nope").unwrap_err().to_string();
    assert!(
        e.starts_with("model nope: no file ") && e.ends_with("(models there: known)"),
        "{e}"
    );
    assert!(store.get("../etc/passwd").is_err());
    assert_eq!(store.get("known").unwrap().file.name, "known");
    // A file whose name and content disagree.
    std::fs::copy(dir.path().join("known.json"), dir.path().join("alias.json")).unwrap();
    let e = store.get("alias").unwrap_err().to_string();
    assert!(e.contains("holds model \"known\", not \"alias\""), "{e}");
}

#[test]
fn the_store_picks_up_a_new_version_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let v1 = train("m", &names(), &data(), &fits()[1], None).unwrap();
    v1.save(&path).unwrap();
    let store = Arc::new(ModelStore::new(dir.path()).with_reload_interval(Duration::ZERO));
    assert_eq!(store.get("m").unwrap().file.version, 1);
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.threshold = 123.0;
    v2.save(&path).unwrap();
    let now = store.get("m").unwrap();
    assert_eq!((now.file.version, now.file.threshold), (2, 123.0));
    // Broken, then other features: version 2 keeps scoring.
    std::fs::write(&path, "{ half a file").unwrap();
    assert_eq!(store.get("m").unwrap().file.version, 2);
    let mut v3 = train("m", &names()[..2], &first_two(&data()), &fits()[1], None).unwrap();
    v3.version = 3;
    v3.save(&path).unwrap();
    assert_eq!(store.get("m").unwrap().file.version, 2);
    // Removed: the loaded version stays.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(store.get("m").unwrap().file.version, 2);
}

#[test]
fn the_store_checks_files_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let v1 = train("m", &names(), &data(), &fits()[1], None).unwrap();
    v1.save(&path).unwrap();
    let store = ModelStore::new(dir.path()).with_reload_interval(Duration::from_secs(3600));
    assert_eq!(store.get("m").unwrap().file.version, 1);
    let mut v2 = v1;
    v2.version = 2;
    v2.save(&path).unwrap();
    assert_eq!(store.get("m").unwrap().file.version, 1);
}

fn first_two(m: &Matrix) -> Matrix {
    let rows: Vec<Vec<f64>> = (0..m.rows()).map(|i| m.row(i)[..2].to_vec()).collect();
    Matrix::from_rows(&rows).unwrap()
}
