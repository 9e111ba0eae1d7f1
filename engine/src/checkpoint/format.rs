//! The checkpoint file format: one object per source partition and epoch.
//!
//! ```text
//! "SPNDLCKP" | version: u32 LE | header length: u32 LE | body length: u64 LE
//!            | CRC-32 of header and body: u32 LE | header (JSON) | body
//! ```
//!
//! The header holds the partition's position (next offset, watermark,
//! epoch), the staged output files and, per pipeline, where its state
//! sits in the body; each pipeline's state is one Arrow IPC stream per run
//! of batches with one schema (an `OVER` pipeline's rows, then each
//! detector call's states keyed by its own key types). A file
//! that is short, has another magic or version, or whose checksum does not
//! match is rejected as a whole, so a torn write is never half-restored.

use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};

use super::{PartitionCheckpoint, PipelineState};

const MAGIC: &[u8; 8] = b"SPNDLCKP";
/// Bumped whenever the header or the state layout changes incompatibly.
// 2: OVER pipelines keep frame context and in-flight rows besides their
// unreleased rows.
// 3: a pipeline's state may change schema (one IPC stream per schema, their
// lengths in `streams`): OVER pipelines add their detectors' states.
pub const FORMAT_VERSION: u32 = 3;
const PREAMBLE: usize = 8 + 4 + 4 + 8 + 4;

/// The JSON header.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    job: String,
    source: String,
    partition: i32,
    epoch: u64,
    next_offset: i64,
    watermark: Option<i64>,
    closed_through: i64,
    created_ms: i64,
    staged: Vec<super::StagedFile>,
    pipelines: Vec<Section>,
}

/// Where one pipeline's state is in the body (`length` 0: no state): IPC
/// streams of `streams` bytes each, one after the other from `offset`.
#[derive(Debug, Serialize, Deserialize)]
struct Section {
    sink: String,
    offset: u64,
    length: u64,
    streams: Vec<u64>,
}

/// Serialises a checkpoint.
pub fn encode(checkpoint: &PartitionCheckpoint) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut sections = Vec::with_capacity(checkpoint.pipelines.len());
    for pipeline in &checkpoint.pipelines {
        let offset = body.len() as u64;
        let mut streams = Vec::new();
        for run in pipeline
            .batches
            .chunk_by(|a, b| a.schema_ref() == b.schema_ref())
        {
            let start = body.len();
            write_ipc(&mut body, run).map_err(|e| format!("state of {}: {e}", pipeline.sink))?;
            streams.push((body.len() - start) as u64);
        }
        sections.push(Section {
            sink: pipeline.sink.clone(),
            offset,
            length: body.len() as u64 - offset,
            streams,
        });
    }
    let header = Header {
        job: checkpoint.job.clone(),
        source: checkpoint.source.clone(),
        partition: checkpoint.partition,
        epoch: checkpoint.epoch,
        next_offset: checkpoint.next_offset,
        watermark: checkpoint.watermark,
        closed_through: checkpoint.closed_through,
        created_ms: checkpoint.created_ms,
        staged: checkpoint.staged.clone(),
        pipelines: sections,
    };
    let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(&body);
    let mut out = Vec::with_capacity(PREAMBLE + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads a checkpoint, checking magic, version, lengths and checksum.
pub fn decode(bytes: &[u8]) -> Result<PartitionCheckpoint, String> {
    if bytes.len() < PREAMBLE || &bytes[..8] != MAGIC {
        return Err("not a Spindle checkpoint (bad magic or too short)".into());
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}; this Spindle reads version {FORMAT_VERSION}"
        ));
    }
    let header_len = word(12) as usize;
    let mut body_len = [0u8; 8];
    body_len.copy_from_slice(&bytes[16..24]);
    let body_len = u64::from_le_bytes(body_len) as usize;
    let expected_crc = word(24);
    let total = PREAMBLE
        .checked_add(header_len)
        .and_then(|n| n.checked_add(body_len));
    if total != Some(bytes.len()) {
        return Err(format!(
            "truncated or padded: {} bytes, the preamble announces {}",
            bytes.len(),
            total.map_or_else(|| "an impossible length".to_string(), |t| t.to_string())
        ));
    }
    let header = &bytes[PREAMBLE..PREAMBLE + header_len];
    let body = &bytes[PREAMBLE + header_len..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    crc.update(body);
    if crc.finalize() != expected_crc {
        return Err("checksum mismatch (corrupt)".into());
    }
    let header: Header = serde_json::from_slice(header).map_err(|e| format!("header: {e}"))?;
    let pipelines = header
        .pipelines
        .iter()
        .map(|s| read_section(body, s))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(PartitionCheckpoint {
        job: header.job,
        source: header.source,
        partition: header.partition,
        epoch: header.epoch,
        next_offset: header.next_offset,
        watermark: header.watermark,
        closed_through: header.closed_through,
        created_ms: header.created_ms,
        staged: header.staged,
        pipelines,
    })
}

/// Batches of one schema as an IPC stream.
fn write_ipc(out: &mut Vec<u8>, batches: &[RecordBatch]) -> Result<(), String> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let mut writer = StreamWriter::try_new(out, &first.schema()).map_err(|e| e.to_string())?;
    for batch in batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())
}

fn read_section(body: &[u8], section: &Section) -> Result<PipelineState, String> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    let outside = || format!("state of {} lies outside the file", section.sink);
    let mut start = usize::try_from(section.offset).map_err(|_| outside())?;
    let total: u64 = section
        .streams
        .iter()
        .try_fold(0u64, |sum, n| sum.checked_add(*n))
        .ok_or_else(outside)?;
    if total != section.length {
        return Err(format!(
            "state of {}: its streams add up to {total} bytes, not {}",
            section.sink, section.length
        ));
    }
    for length in &section.streams {
        let end = usize::try_from(*length)
            .ok()
            .and_then(|n| start.checked_add(n))
            .ok_or_else(outside)?;
        let bytes = body.get(start..end).ok_or_else(outside)?;
        batches.extend(read_ipc(bytes).map_err(|e| format!("state of {}: {e}", section.sink))?);
        start = end;
    }
    Ok(PipelineState {
        sink: section.sink.clone(),
        batches,
    })
}

/// The record batches of one Arrow IPC stream held in memory.
///
/// `StreamDecoder`, not `StreamReader`: the reader allocates whatever a
/// message announces before reading it (up to 2 GiB of metadata, any `i64`
/// of body, so a corrupt length aborts the process), while the decoder only
/// ever holds bytes that are there. Arrow's IPC code also panics on some
/// malformed schemas and buffers (`unwrap`s in its flatbuffer conversion);
/// the checksum makes such a file unlikely, but a checkpoint that cannot be
/// read must be an error that falls back to the previous one, never a dead
/// worker, so a panic in there is turned into an error (found by fuzzing,
/// see docs/fuzzing.md).
fn read_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>, String> {
    let decode = || -> Result<Vec<RecordBatch>, String> {
        let mut buffer = Buffer::from(bytes);
        let mut decoder = StreamDecoder::new();
        let mut batches = Vec::new();
        while let Some(batch) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            batches.push(batch);
        }
        decoder.finish().map_err(|e| e.to_string())?;
        Ok(batches)
    };
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        Err(format!("malformed Arrow IPC data ({message})"))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A checkpoint whose one pipeline holds two Int64 columns of 37 rows:
    /// the record batch's body (two buffers of 296 bytes padded to 320) is a
    /// number no other field of its IPC message holds.
    fn checkpoint() -> PartitionCheckpoint {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let column = Arc::new(Int64Array::from_iter_values(0..37));
        let batch = RecordBatch::try_new(schema, vec![column.clone(), column]).unwrap();
        PartitionCheckpoint {
            job: "j".into(),
            source: "s".into(),
            partition: 0,
            epoch: 1,
            next_offset: 10,
            watermark: None,
            closed_through: i64::MIN,
            created_ms: 0,
            staged: Vec::new(),
            pipelines: vec![PipelineState {
                sink: "out".into(),
                batches: vec![batch],
            }],
        }
    }

    /// `bytes` (a whole file) with `patch` applied to its body, the IPC
    /// stream, and the checksum made right again.
    fn with_body_patched(bytes: &[u8], patch: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        patch(&mut bytes[PREAMBLE + header_len..]);
        let crc = crc32fast::hash(&bytes[PREAMBLE..]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn state_round_trips() {
        let original = checkpoint();
        assert_eq!(decode(&encode(&original).unwrap()).unwrap(), original);
    }

    /// An OVER pipeline's rows, then detector states of other schemas (one
    /// IPC stream each), then rows again: every batch comes back in order.
    #[test]
    fn state_whose_schema_changes_round_trips() {
        let mut original = checkpoint();
        let rows = original.pipelines[0].batches[0].clone();
        let other = Arc::new(Schema::new(vec![Field::new(
            "state",
            DataType::Utf8,
            false,
        )]));
        let states = RecordBatch::try_new(
            other,
            vec![Arc::new(arrow::array::StringArray::from(vec!["{}", "[]"]))],
        )
        .unwrap();
        original.pipelines[0].batches = vec![rows.clone(), states.clone(), states, rows];
        let bytes = encode(&original).unwrap();
        assert_eq!(decode(&bytes).unwrap(), original);
        // The streams must add up to the section.
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[PREAMBLE..PREAMBLE + header_len]).unwrap();
        let streams = header.split("\"streams\":[").nth(1).unwrap();
        assert_eq!(streams.split(']').next().unwrap().split(',').count(), 3);
    }

    /// The fuzz seeds that are whole checkpoints are in the current format
    /// (rewrite them when it changes, see docs/fuzzing.md): a seed stopped
    /// by the version check fuzzes nothing behind it.
    #[test]
    fn the_fuzz_seeds_read() {
        let seeds = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/checkpoint_reader"
        );
        for seed in [
            "window-state-3-machines.ckpt",
            "no-state-staged-file.ckpt",
            "detector-state-3-machines.ckpt",
        ] {
            let bytes = std::fs::read(format!("{seeds}/{seed}")).unwrap();
            let checkpoint = decode(&bytes).unwrap_or_else(|e| panic!("{seed}: {e}"));
            assert_eq!(decode(&encode(&checkpoint).unwrap()).unwrap(), checkpoint);
        }
    }

    /// Found by fuzzing: Arrow's `StreamReader` sized a buffer by the
    /// metadata length the stream announced (2 GiB, zero-filled) before
    /// finding the stream far shorter.
    #[test]
    fn an_announced_metadata_length_beyond_the_state_is_an_error() {
        let bytes = with_body_patched(&encode(&checkpoint()).unwrap(), |ipc| {
            assert_eq!(ipc[..4], [0xff; 4], "continuation marker");
            ipc[4..8].copy_from_slice(&0x7fff_fff0_i32.to_le_bytes());
        });
        let error = decode(&bytes).unwrap_err();
        assert!(error.starts_with("state of out: "), "{error}");
    }

    /// A body length of 2^50 bytes: the old reader asked the allocator for
    /// it and the process aborted (no error, no fallback to the previous
    /// checkpoint).
    #[test]
    fn an_announced_body_length_beyond_the_state_is_an_error() {
        let bytes = with_body_patched(&encode(&checkpoint()).unwrap(), |ipc| {
            // Second message (the record batch): find its bodyLength in the
            // metadata and make it 2^50.
            let schema_len = i32::from_le_bytes(ipc[4..8].try_into().unwrap()) as usize;
            let at = 8 + schema_len;
            let meta_len = i32::from_le_bytes(ipc[at + 4..at + 8].try_into().unwrap()) as usize;
            let meta = &mut ipc[at + 8..at + 8 + meta_len];
            let message = arrow::ipc::root_as_message(meta).unwrap();
            let needle = message.bodyLength().to_le_bytes();
            let found: Vec<usize> = (0..meta.len() - 8)
                .filter(|&i| meta[i..i + 8] == needle)
                .collect();
            assert_eq!(found.len(), 1, "bodyLength found once");
            meta[found[0]..found[0] + 8].copy_from_slice(&(1_i64 << 50).to_le_bytes());
        });
        let error = decode(&bytes).unwrap_err();
        assert!(error.starts_with("state of out: "), "{error}");
    }
}
