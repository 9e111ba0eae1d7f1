//! JSON records with arrow-json's streaming decoder, straight into the
//! table's schema (unknown keys are ignored).
//!
//! The whole micro-batch is decoded in one pass. arrow-json rejects a batch
//! as a whole, so when that happens the records are bisected: halves that
//! decode are kept, and a single record that fails is a bad record with the
//! decoder's message. Clean batches cost one pass; k bad records cost about
//! k·log₂(n) extra small decodes.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow_json::ReaderBuilder;

use super::{BadRecord, Decoded, Decoder, RawBatch};

/// Decodes JSON objects into `schema`.
#[derive(Debug)]
pub struct JsonDecoder {
    schema: SchemaRef,
}

impl JsonDecoder {
    /// A decoder for `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema }
    }

    /// Decodes records `range` of `raw` as one batch, or says why not.
    ///
    /// The records go into one decoder one by one, each checked to add
    /// exactly one whole object: decoded as one run of bytes, a record with
    /// two objects followed by two records holding halves of one (`{"a":` and
    /// `1}`) gave three rows for three records, so the halves passed and the
    /// rows landed on the wrong offsets (found by fuzzing, docs/fuzzing.md).
    fn try_decode(&self, raw: &RawBatch, range: Range<usize>) -> Result<RecordBatch, String> {
        let count = range.len();
        let mut decoder = ReaderBuilder::new(self.schema.clone())
            .with_batch_size(count.max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for (done, i) in range.enumerate() {
            let bytes = raw.payload(i);
            let consumed = decoder.decode(bytes).map_err(|e| e.to_string())?;
            if decoder.has_partial_record() {
                return Err("record ends inside a JSON value".into());
            }
            let rest_blank = bytes[consumed..].iter().all(u8::is_ascii_whitespace);
            if !rest_blank || decoder.len() > done + 1 {
                return Err("record holds more than one JSON value".into());
            }
            if decoder.len() < done + 1 {
                return Err("record holds no JSON object".into());
            }
        }
        let batch = decoder
            .flush()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        if batch.num_rows() != count {
            return Err(format!(
                "expected one JSON object per record, found {} in {count}",
                batch.num_rows()
            ));
        }
        Ok(batch)
    }

    fn decode_range(&self, raw: &RawBatch, range: Range<usize>, out: &mut Parts) {
        if range.is_empty() {
            return;
        }
        // arrow-json's number parsing can panic on hostile input (an i16
        // exponent overflow in its decimal parser, found by fuzzing with
        // overflow checks on, as in dev builds): that makes the record bad
        // instead of killing the worker.
        let attempt = catch_unwind(AssertUnwindSafe(|| self.try_decode(raw, range.clone())))
            .unwrap_or_else(|_| Err("the JSON decoder panicked on this record".into()));
        match attempt {
            Ok(batch) => {
                // One row per record (checked by `try_decode`).
                out.row_records.extend(range.map(|i| i as u32));
                out.good.push(batch);
            }
            Err(error) if range.len() == 1 => out.bad.push(raw.bad(range.start, error)),
            Err(_) => {
                let middle = range.start + range.len() / 2;
                self.decode_range(raw, range.start..middle, out);
                self.decode_range(raw, middle..range.end, out);
            }
        }
    }
}

/// What a decode has found so far.
#[derive(Default)]
struct Parts {
    good: Vec<RecordBatch>,
    bad: Vec<BadRecord>,
    row_records: Vec<u32>,
}

impl Decoder for JsonDecoder {
    fn decode(&mut self, raw: &RawBatch) -> Decoded {
        let mut parts = Parts::default();
        // Empty payloads (tombstones) would decode to nothing and vanish:
        // reject them explicitly, and decode the runs between them.
        let mut run_start = 0;
        for i in 0..raw.len() {
            if raw.payload(i).iter().all(u8::is_ascii_whitespace) {
                self.decode_range(raw, run_start..i, &mut parts);
                parts.bad.push(raw.bad(i, "empty record"));
                run_start = i + 1;
            }
        }
        self.decode_range(raw, run_start..raw.len(), &mut parts);
        let Parts {
            good,
            bad,
            row_records,
        } = parts;
        let batch = concat_batches(&self.schema, &good)
            .unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone()));
        Decoded {
            batch,
            bad,
            row_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Float64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("machine_id", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("temperature", DataType::Float64, true),
        ]))
    }

    fn raw(records: &[&str]) -> RawBatch {
        let mut raw = RawBatch::new(3);
        for (i, r) in records.iter().enumerate() {
            raw.push(100 + i as i64, r.as_bytes());
        }
        raw
    }

    #[test]
    fn good_records_decode_in_one_pass_with_extra_keys_ignored() {
        let decoded = JsonDecoder::new(schema()).decode(&raw(&[
            r#"{"machine_id":"m-1","ts":"2026-01-01T00:00:00.123Z","temperature":65.5,"extra":1}"#,
            r#"{"machine_id":"m-2","ts":"2026-01-01T00:00:01Z","temperature":null}"#,
        ]));
        assert!(decoded.bad.is_empty());
        let b = decoded.batch;
        assert_eq!(b.num_rows(), 2);
        let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(ids.value(1), "m-2");
        let ts = b
            .column(1)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1_767_225_600_123);
        let t = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(t.is_null(1));
    }

    #[test]
    fn a_value_never_straddles_two_records() {
        // One record with two objects, then an object split over two
        // records: three objects in three records as one byte run.
        let decoded = JsonDecoder::new(schema()).decode(&raw(&[
            r#"{"machine_id":"a","ts":"2026-01-01T00:00:00Z"} {"machine_id":"b","ts":"2026-01-01T00:00:01Z"}"#,
            r#"{"machine_id":"c","#,
            r#""ts":"2026-01-01T00:00:02Z"}"#,
            r#"{"machine_id":"d","ts":"2026-01-01T00:00:03Z"}"#,
        ]));
        let ids = decoded
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), vec![Some("d")]);
        let mut bad: Vec<(i64, &str)> = decoded
            .bad
            .iter()
            .map(|b| (b.offset, b.error.as_str()))
            .collect();
        bad.sort_unstable();
        assert_eq!(bad[0], (100, "record holds more than one JSON value"));
        assert_eq!(bad[1], (101, "record ends inside a JSON value"));
        assert_eq!(bad[2].0, 102);
        assert_eq!(bad.len(), 3);
    }

    /// Found by fuzzing: arrow-cast's decimal parser overflows an i16 on a
    /// long exponent, which panics where overflow checks are on.
    #[test]
    fn a_decimal_with_a_huge_exponent_is_a_bad_record_not_a_panic() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "dec",
            DataType::Decimal128(10, 2),
            true,
        )]));
        let decoded =
            JsonDecoder::new(schema).decode(&raw(&[r#"{"dec":1.5}"#, r#"{"dec":1e99999}"#]));
        assert_eq!(decoded.batch.num_rows(), 1);
        assert_eq!(decoded.bad.len(), 1);
        assert_eq!(decoded.bad[0].offset, 101);
    }

    #[test]
    fn bad_records_are_split_out_with_offsets_and_reasons() {
        let good = r#"{"machine_id":"m","ts":"2026-01-01T00:00:00Z","temperature":1}"#;
        let records = [
            good,
            r#"{"machine_id":"m","ts":"2026-01-01T00:00:00Z","temperature":"hot"}"#,
            good,
            r#"{"machine_id":"m","ts":"#,
            "",
            r#"{"ts":"2026-01-01T00:00:00Z"}"#,
            good,
            "[1,2]",
        ];
        let decoded = JsonDecoder::new(schema()).decode(&raw(&records));
        assert_eq!(decoded.batch.num_rows(), 3);
        let offsets: Vec<i64> = decoded.bad.iter().map(|b| b.offset).collect();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![101, 103, 104, 105, 107]);
        let hot = decoded.bad.iter().find(|b| b.offset == 101).unwrap();
        assert!(
            hot.error.contains("temperature") || hot.error.to_lowercase().contains("parse"),
            "{}",
            hot.error
        );
        assert_eq!(hot.partition, 3);
        assert!(
            decoded
                .bad
                .iter()
                .any(|b| b.offset == 104 && b.error == "empty record")
        );
    }
}
