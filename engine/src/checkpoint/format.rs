//! The checkpoint file format: one object per source partition and epoch.
//!
//! ```text
//! "SPNDLCKP" | version: u32 LE | header length: u32 LE | body length: u64 LE
//!            | CRC-32 of header and body: u32 LE | header (JSON) | body
//! ```
//!
//! The header holds the partition's position (next offset, watermark,
//! epoch), the staged output files and, per pipeline, where its state
//! sits in the body; each pipeline's state is an Arrow IPC stream. A file
//! that is short, has another magic or version, or whose checksum does not
//! match is rejected as a whole, so a torn write is never half-restored.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};

use super::{PartitionCheckpoint, PipelineState};

const MAGIC: &[u8; 8] = b"SPNDLCKP";
/// Bumped whenever the header or the state layout changes incompatibly.
// 2: OVER pipelines keep frame context and in-flight rows besides their
// unreleased rows.
pub const FORMAT_VERSION: u32 = 2;
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

/// Where one pipeline's IPC stream is in the body (`length` 0: no state).
#[derive(Debug, Serialize, Deserialize)]
struct Section {
    sink: String,
    offset: u64,
    length: u64,
}

/// Serialises a checkpoint.
pub fn encode(checkpoint: &PartitionCheckpoint) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut sections = Vec::with_capacity(checkpoint.pipelines.len());
    for pipeline in &checkpoint.pipelines {
        let offset = body.len() as u64;
        if let Some(first) = pipeline.batches.first() {
            let mut writer = StreamWriter::try_new(&mut body, &first.schema())
                .map_err(|e| format!("state of {}: {e}", pipeline.sink))?;
            for batch in &pipeline.batches {
                writer
                    .write(batch)
                    .map_err(|e| format!("state of {}: {e}", pipeline.sink))?;
            }
            writer
                .finish()
                .map_err(|e| format!("state of {}: {e}", pipeline.sink))?;
        }
        sections.push(Section {
            sink: pipeline.sink.clone(),
            offset,
            length: body.len() as u64 - offset,
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

fn read_section(body: &[u8], section: &Section) -> Result<PipelineState, String> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    if section.length > 0 {
        let start = section.offset as usize;
        let end = start.saturating_add(section.length as usize);
        let bytes = body
            .get(start..end)
            .ok_or_else(|| format!("state of {} lies outside the file", section.sink))?;
        let reader = StreamReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| format!("state of {}: {e}", section.sink))?;
        for batch in reader {
            batches.push(batch.map_err(|e| format!("state of {}: {e}", section.sink))?);
        }
    }
    Ok(PipelineState {
        sink: section.sink.clone(),
        batches,
    })
}
