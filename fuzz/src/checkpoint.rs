//! The checkpoint reader on arbitrary bytes, and on the same bytes with the
//! preamble's lengths and checksum repaired: random bytes almost never carry
//! a matching CRC-32, and the JSON header and the Arrow IPC state behind it
//! are what a torn or hostile object store could hand the reader.

use spindle_engine::checkpoint::PartitionCheckpoint;
use spindle_engine::checkpoint::format::{FORMAT_VERSION, decode, encode};

/// `"SPNDLCKP" | version u32 | header length u32 | body length u64 | CRC u32`
/// (engine/src/checkpoint/format.rs).
const PREAMBLE: usize = 8 + 4 + 4 + 8 + 4;

/// Reads `data` as a checkpoint, then again with its preamble repaired. A
/// checkpoint that reads back must survive round trips: written again, it
/// reads as the same checkpoint, apart from what Arrow's IPC format cannot
/// say (see `read_one`).
pub fn read(data: &[u8]) {
    crate::let_arrow_panics_unwind();
    read_one(data);
    if let Some(repaired) = repair(data) {
        read_one(&repaired);
    }
}

/// Arrow's IPC writer leaves an empty timezone out (`Timestamp(_, Some(""))`
/// reads back as `Timestamp(_, None)`, arrow-ipc's convert.rs), and the
/// first round trip may so normalise a schema that only a hand-made file
/// holds (found by fuzzing). The engine never writes such a schema. So the
/// first round must keep the header and every row, and the second must
/// change nothing at all.
fn read_one(bytes: &[u8]) {
    let Ok(checkpoint) = decode(bytes) else {
        return;
    };
    let once = round_trip(&checkpoint);
    assert!(
        same_rows(&checkpoint, &once),
        "round trip changed the checkpoint:\n{checkpoint:?}\n{once:?}"
    );
    assert_eq!(
        once,
        round_trip(&once),
        "a second round trip changed the checkpoint"
    );
}

fn round_trip(checkpoint: &PartitionCheckpoint) -> PartitionCheckpoint {
    let written =
        encode(checkpoint).unwrap_or_else(|e| panic!("re-encoding a read checkpoint: {e}"));
    decode(&written).unwrap_or_else(|e| panic!("reading a re-encoded checkpoint: {e}"))
}

/// Whether `after` holds `before`'s header, sinks and rows (its columns'
/// data under `before`'s types: a cast to `Timestamp(_, Some(""))` fails).
fn same_rows(before: &PartitionCheckpoint, after: &PartitionCheckpoint) -> bool {
    let header = |c: &PartitionCheckpoint| PartitionCheckpoint {
        pipelines: Vec::new(),
        ..c.clone()
    };
    header(before) == header(after)
        && before.pipelines.len() == after.pipelines.len()
        && before.pipelines.iter().zip(&after.pipelines).all(|(b, a)| {
            b.sink == a.sink
                && b.batches.len() == a.batches.len()
                && b.batches.iter().zip(&a.batches).all(|(b, a)| {
                    b.num_columns() == a.num_columns()
                        && b.columns().iter().zip(a.columns()).all(|(b, a)| {
                            a.to_data()
                                .into_builder()
                                .data_type(b.data_type().clone())
                                .build()
                                .is_ok_and(|a| a == b.to_data())
                        })
                })
        })
}

/// `data` with the current version, a body length that fits and the CRC of
/// what follows the preamble; `None` if it is too short or not a checkpoint at all.
fn repair(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < PREAMBLE || !data.starts_with(b"SPNDLCKP") {
        return None;
    }
    let mut bytes = data.to_vec();
    // The version this reader reads, so seeds stay useful across bumps (the
    // raw pass above still tests the version check).
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let available = bytes.len() - PREAMBLE;
    let announced = u32::from_le_bytes(bytes[12..16].try_into().ok()?) as usize;
    let header_len = announced.min(available);
    let body_len = (available - header_len) as u64;
    bytes[12..16].copy_from_slice(&(header_len as u32).to_le_bytes());
    bytes[16..24].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32fast::hash(&bytes[PREAMBLE..]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    Some(bytes)
}
