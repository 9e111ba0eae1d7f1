//! Descriptions of state read off real plans (the shipped jobs), their
//! round trip through JSON, and the wording of changes.

use super::*;

#[test]
fn durations_read_as_words() {
    assert_eq!(duration(Duration::from_secs(60)), "1 minute");
    assert_eq!(duration(Duration::from_secs(300)), "5 minutes");
    assert_eq!(duration(Duration::from_secs(90)), "90 seconds");
    assert_eq!(duration(Duration::from_millis(1500)), "1500 milliseconds");
    assert_eq!(duration(Duration::from_secs(7200)), "2 hours");
}

fn t(text: &str) -> Term {
    Term {
        shown: text.into(),
        exact: text.into(),
    }
}

#[test]
fn list_changes_pair_same_functions_and_name_the_rest() {
    let mut out = Vec::new();
    let old = [t("count(*)"), t("avg(temperature)"), t("max(noise)")];
    let new = [
        t("count(*)"),
        t("avg(temperature * 2)"),
        t("stddev(humidity)"),
    ];
    list_changes("aggregate", &old, &new, &mut out);
    assert_eq!(
        out,
        [
            "aggregate changed: avg(temperature) → avg(temperature * 2)",
            "aggregate added: stddev(humidity)",
            "aggregate removed: max(noise)",
        ]
    );
    out.clear();
    list_changes(
        "aggregate",
        &old,
        &[old[1].clone(), old[0].clone(), old[2].clone()],
        &mut out,
    );
    assert_eq!(
        out,
        [
            "aggregates reordered: [count(*), avg(temperature), max(noise)] → \
          [avg(temperature), count(*), max(noise)]"
        ]
    );
}

async fn shapes_of(text: &str) -> Vec<StateShape> {
    let job = spindle_sql::Job::parse_with_env(text, |_| None).unwrap();
    let ctx = spindle_sql::context::new_session();
    let plan = spindle_sql::plan_job(&job, &ctx).await.unwrap();
    plan.pipelines
        .iter()
        .map(|p| StateShape::of(p).unwrap())
        .collect()
}

/// A restart of the same SQL must find every stateful pipeline unchanged:
/// descriptions are the same when planned again in a new session and
/// after their round trip through the checkpoint's JSON.
#[tokio::test]
async fn the_shipped_jobs_describe_their_state_the_same_every_time() {
    let jobs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs");
    let mut stateful = Vec::new();
    for name in [
        "factory_features.sql",
        "machine_deltas.sql",
        "features_to_influxdb.sql",
        "anomaly_detection.sql",
    ] {
        let text = std::fs::read_to_string(jobs.join(name)).unwrap();
        let (first, second) = (shapes_of(&text).await, shapes_of(&text).await);
        assert_eq!(first, second, "{name}: planned twice");
        for shape in &first {
            let json = shape.to_json();
            let read: StateShape = serde_json::from_str(&json).unwrap();
            assert_eq!(&read, shape, "{name}: through JSON");
            assert!(
                read.changes(shape).is_empty(),
                "{name}: {:?}",
                read.changes(shape)
            );
            if shape.kind != StateKind::Stateless {
                stateful.push(format!("{name}: {:?}", shape.kind));
            }
        }
    }
    assert!(
        stateful.iter().any(|s| s.ends_with("Window"))
            && stateful.iter().any(|s| s.ends_with("Over")),
        "windowed and OVER pipelines among the shipped jobs: {stateful:?}"
    );
}
