//! Bad input at scale, on the real broker: 10^6 records of which 1 % are
//! bad in every way a plant's producers manage (malformed JSON, empty and
//! non-UTF-8 payloads, oversized records, missing required fields, wrong
//! types, NaN and infinite readings, event times 25 years in the past and
//! 74 years in the future), and 1 % of the valid ones carry fields the table
//! does not know (ignored: they are valid). Every valid reading must be in
//! exactly one window of the history or the late output, the history must
//! equal the batch oracle, and every bad record must be in the dead-letter
//! output, at its partition and offset, with a reason naming its problem.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use spindle_tests::kafka::{partition_for, produce};
use spindle_tests::services::kafka;
use spindle_tests::spindle::{command, side_output, stderr};

use crate::engine_oracle::summary_value;
use crate::recovery::Deployment;

const RECORDS: usize = 1_000_000;
const PARTITIONS: i32 = 4;

/// A kind of bad record: how to make one from a valid reading, and what its
/// dead-letter reason must say.
struct Kind {
    name: &'static str,
    make: fn(&Value) -> Vec<u8>,
    reason: &'static str,
}

fn with(reading: &Value, key: &str, value: Value) -> Vec<u8> {
    let mut bad = reading.clone();
    bad[key] = value;
    serde_json::to_vec(&bad).unwrap()
}

fn without(reading: &Value, key: &str) -> Vec<u8> {
    let mut bad = reading.clone();
    bad.as_object_mut().unwrap().remove(key);
    serde_json::to_vec(&bad).unwrap()
}

const KINDS: [Kind; 11] = [
    Kind {
        name: "truncated JSON",
        make: |r| {
            let text = serde_json::to_vec(r).unwrap();
            text[..text.len() / 2].to_vec()
        },
        reason: "",
    },
    Kind {
        name: "empty record",
        make: |_| Vec::new(),
        reason: "empty record",
    },
    Kind {
        name: "not UTF-8",
        make: |_| vec![0xff, 0xfe, b'{', 0x80],
        reason: "",
    },
    Kind {
        name: "oversized",
        make: |r| with(r, "note", Value::String("x".repeat(20_000))),
        reason: "exceeds record.max-bytes (16384)",
    },
    Kind {
        name: "missing machine_id",
        make: |r| without(r, "machine_id"),
        reason: "machine_id",
    },
    Kind {
        name: "missing ts",
        make: |r| without(r, "ts"),
        reason: "ts",
    },
    Kind {
        name: "wrong type",
        make: |r| with(r, "temperature", Value::String("hot".into())),
        reason: "",
    },
    Kind {
        name: "NaN",
        make: |r| with(r, "vibration", Value::String("NaN".into())),
        reason: "vibration is NaN",
    },
    Kind {
        name: "infinite",
        make: |r| {
            let text = String::from_utf8(with(r, "power", Value::from(1))).unwrap();
            text.replace("\"power\":1", "\"power\":1e999").into_bytes()
        },
        reason: "power is inf",
    },
    Kind {
        name: "far past",
        make: |r| with(r, "ts", Value::String("2001-09-09T01:46:40Z".into())),
        reason: "is behind the clock",
    },
    Kind {
        name: "far future",
        make: |r| with(r, "ts", Value::String("2100-01-01T00:00:00Z".into())),
        reason: "is ahead of the clock",
    },
];

/// The records to produce, the valid readings (JSON lines) and where each
/// bad record lands: (partition, offset) → its kind.
struct Input {
    records: Vec<(String, Vec<u8>)>,
    valid: String,
    valid_count: usize,
    bad: BTreeMap<(i32, i64), usize>,
}

fn build_input(clean: &str) -> Input {
    let mut input = Input {
        records: Vec::with_capacity(RECORDS),
        valid: String::new(),
        valid_count: 0,
        bad: BTreeMap::new(),
    };
    let mut next_offset = [0i64; PARTITIONS as usize];
    let mut place = |key: &str| {
        let partition = partition_for(key.as_bytes(), PARTITIONS);
        let offset = next_offset[partition as usize];
        next_offset[partition as usize] += 1;
        (partition, offset)
    };
    let mut lines = clean.lines();
    while input.records.len() < RECORDS {
        let i = input.records.len();
        let line = lines.next().expect("enough clean readings");
        let reading: Value = serde_json::from_str(line).unwrap();
        let key = reading["machine_id"].as_str().unwrap().to_string();
        let spot = place(&key);
        if i % 100 == 37 {
            let kind = input.bad.len() % KINDS.len();
            input.records.push((key, (KINDS[kind].make)(&reading)));
            input.bad.insert(spot, kind);
            continue;
        }
        let payload = if i % 100 == 71 {
            // Unknown fields are ignored: the reading is valid.
            with(&reading, "firmware", Value::String("4.2.1".into()))
        } else {
            line.as_bytes().to_vec()
        };
        input.valid.push_str(std::str::from_utf8(&payload).unwrap());
        input.valid.push('\n');
        input.valid_count += 1;
        input.records.push((key, payload));
    }
    input
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_records_with_one_percent_bad_keep_every_valid_reading_once() {
    let deployment = Deployment::new("bad-at-scale");
    let clean = deployment.dir.path().join("clean.jsonl");
    let output = command([
        "simulate",
        "--count",
        &RECORDS.to_string(),
        "--machines",
        "1000",
        "--late-fraction",
        "0.01",
        "--max-delay",
        "20s",
        "--quiet",
        "--output",
    ])
    .arg(&clean)
    .output()
    .unwrap();
    assert!(output.status.success(), "simulate: {}", stderr(&output));
    let input = build_input(&std::fs::read_to_string(&clean).unwrap());
    assert_eq!(input.bad.len(), RECORDS / 100);
    let brokers = kafka().to_string();
    let topic = deployment.topic.clone();
    let records = input.records;
    // The producer's admin calls run their own runtime: keep it off ours.
    std::thread::spawn(move || produce(&brokers, &topic, PARTITIONS, &records))
        .join()
        .unwrap();

    let run = deployment
        .command("only")
        .env("MAX_RECORD_BYTES", "16KiB")
        .env("MAX_PAST", "3650d")
        .output()
        .unwrap();
    let log = stderr(&run);
    assert!(run.status.success(), "{log}");
    assert_eq!(summary_value(&log, "records_in"), RECORDS as u64, "{log}");
    assert_eq!(summary_value(&log, "bad"), input.bad.len() as u64, "{log}");

    check_dead_letters(&deployment, &input.bad);
    let readings = deployment.dir.path().join("valid.jsonl");
    std::fs::write(&readings, &input.valid).unwrap();
    deployment
        .reconcile_with(&readings, input.valid_count)
        .await;
}

/// Every bad record, and nothing else, is in the dead-letter output with a
/// reason that names its problem.
fn check_dead_letters(deployment: &Deployment, expected: &BTreeMap<(i32, i64), usize>) {
    let file = side_output(&deployment.dir.path().join("side/only"), "dead-letter");
    let text = std::fs::read_to_string(file).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let place = (
            entry["partition"].as_i64().unwrap() as i32,
            entry["offset"].as_i64().unwrap(),
        );
        let error = entry["error"].as_str().unwrap_or_default();
        let Some(kind) = expected.get(&place) else {
            panic!("a valid record in the dead-letter output at {place:?}: {error}");
        };
        let kind = &KINDS[*kind];
        assert!(
            !error.is_empty() && error.contains(kind.reason),
            "{} at {place:?}: the reason {error:?} should say {:?}",
            kind.name,
            kind.reason
        );
        assert!(seen.insert(place), "duplicated dead letter at {place:?}");
    }
    let lost: Vec<_> = expected.keys().filter(|p| !seen.contains(p)).collect();
    assert!(
        lost.is_empty(),
        "lost: {} bad records not in the dead-letter output, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
