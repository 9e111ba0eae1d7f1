//! The checkpoint reader on arbitrary bytes, and on the same bytes with the
//! preamble's lengths and checksum repaired: random bytes almost never carry
//! a matching CRC-32, and the JSON header and the Arrow IPC state behind it
//! are what a torn or hostile object store could hand the reader.

use spindle_engine::checkpoint::format::{FORMAT_VERSION, decode, encode};

/// `"SPNDLCKP" | version u32 | header length u32 | body length u64 | CRC u32`
/// (engine/src/checkpoint/format.rs).
const PREAMBLE: usize = 8 + 4 + 4 + 8 + 4;

/// Reads `data` as a checkpoint, then again with its preamble repaired. A
/// checkpoint that reads back must survive a round trip: written again, it
/// reads as the same checkpoint.
pub fn read(data: &[u8]) {
    crate::let_arrow_panics_unwind();
    read_one(data);
    if let Some(repaired) = repair(data) {
        read_one(&repaired);
    }
}

fn read_one(bytes: &[u8]) {
    let Ok(checkpoint) = decode(bytes) else {
        return;
    };
    let written =
        encode(&checkpoint).unwrap_or_else(|e| panic!("re-encoding a read checkpoint: {e}"));
    let again = decode(&written).unwrap_or_else(|e| panic!("reading a re-encoded checkpoint: {e}"));
    assert_eq!(checkpoint, again, "round trip changed the checkpoint");
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
